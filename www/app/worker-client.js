// The page's side of the worker protocol (www/shared/messages.js): numbered
// requests answered by promises, progress callbacks, and a restart that
// replaces a crashed worker (a wasm trap leaves it unusable).

export class WorkerClient {
  #worker;
  #pending = new Map();
  #nextId = 1;

  constructor() {
    this.#worker = this.#start();
  }

  #start() {
    const w = new Worker(new URL('../worker/worker.js', import.meta.url), { type: 'module' });
    w.onmessage = ({ data }) => {
      const p = this.#pending.get(data.id);
      if (!p) return;
      if (data.status) { p.onStatus?.(data.status, data.progress); return; }
      this.#pending.delete(data.id);
      if (data.error) p.reject(data.error); else p.resolve(data.result);
    };
    w.onerror = (e) => this.#failAll(e.message || 'the worker failed');
    return w;
  }

  #failAll(message) {
    for (const p of this.#pending.values()) p.reject({ kind: 'internal', message });
    this.#pending.clear();
  }

  /** Sends `{ type, ...payload }`; resolves with the result, rejects with { kind, message }. */
  request(type, payload, { transfer = [], onStatus } = {}) {
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject, onStatus });
      this.#worker.postMessage({ id, type, ...payload }, transfer);
    });
  }

  /** Replaces the worker with a fresh one; requests in flight fail. */
  restart() {
    this.#worker.terminate();
    this.#failAll('the worker was restarted');
    this.#worker = this.#start();
  }
}
