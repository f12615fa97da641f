// The page's side of the worker protocol (www/protocol/messages.js): numbered
// requests answered by promises, progress callbacks, and a restart that
// replaces the worker: after a crash (a wasm trap leaves it unusable, an
// uncaught error ends it), or to stop a request that is running (Cancel),
// since a synchronous wasm call cannot be interrupted any other way.

/** The backend the address asks for: `?backend=cpu|gpu|auto` (default auto: WebGPU, else the CPU). */
export function backendChoice(search = location.search) {
  const asked = new URLSearchParams(search).get('backend');
  return ['cpu', 'gpu', 'auto'].includes(asked) ? asked : 'auto';
}

let client = null;

/**
 * The page's one WorkerClient. app/boot.js calls this first, as soon as the
 * HTML is parsed, so the worker fetches and compiles the engine while the
 * page's other modules still load; main.js then gets the same client.
 */
export function pageClient() {
  client ??= new WorkerClient({ backend: backendChoice() });
  return client;
}

export class WorkerClient {
  #worker;
  #pending = new Map();
  #nextId = 1;

  #name;

  /** `backend`: the page's choice (auto, cpu or gpu); the worker loads the wasm build it needs. */
  constructor({ backend = 'auto' } = {}) {
    this.#name = `mriscreen backend=${backend}`;
    this.#worker = this.#start();
  }

  #start() {
    // The choice travels in the worker's name, not its URL, so the service worker's cached copy answers it offline.
    const w = new Worker(new URL('../worker/worker.js', import.meta.url), { type: 'module', name: this.#name });
    w.onmessage = ({ data }) => {
      const p = this.#pending.get(data.id);
      if (!p) return;
      if (data.status) { p.onStatus?.(data.status, data.progress); return; }
      this.#pending.delete(data.id);
      if (data.error) p.reject(data.error); else p.resolve(data.result);
    };
    // An error nothing in the worker caught: it may have stopped midway, so
    // nothing it still owes is coming. The callers restart it (with a model).
    w.onerror = (e) => {
      e.preventDefault?.();
      this.#failAll({ kind: 'internal', message: `the worker failed: ${e.message || 'unknown error'}` });
    };
    return w;
  }

  #failAll(error) {
    for (const p of this.#pending.values()) p.reject(error);
    this.#pending.clear();
  }

  /**
   * Sends `{ type, ...payload }`; resolves with the result, rejects with
   * { kind, message }. Aborting `signal` while the request is pending
   * restarts the worker (every request in flight fails) and rejects this one
   * with kind `cancelled`; the caller loads its model again.
   */
  request(type, payload, { transfer = [], onStatus, signal } = {}) {
    if (signal?.aborted) return Promise.reject({ kind: 'cancelled', message: 'cancelled before it started' });
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        if (!this.#pending.has(id)) return;
        this.#pending.delete(id);
        reject({ kind: 'cancelled', message: 'cancelled while running' });
        this.restart('cancelled');
      };
      const settle = (f) => (v) => { signal?.removeEventListener('abort', onAbort); f(v); };
      this.#pending.set(id, { resolve: settle(resolve), reject: settle(reject), onStatus });
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#worker.postMessage({ id, type, ...payload }, transfer);
    });
  }

  /** Replaces the worker with a fresh one (no model loaded); requests in flight fail with `why`. */
  restart(why = 'restarted') {
    this.#worker.terminate();
    this.#failAll({ kind: why === 'cancelled' ? 'cancelled' : 'internal', message: `the worker was ${why}` });
    this.#worker = this.#start();
  }
}
