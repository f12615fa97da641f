// Module Web Worker: owns the wasm module and the loaded model, so the page
// never blocks on decoding or inference. Requests are handled one at a time,
// in arrival order.
import init, { MriScreen } from '../pkg/mriscreen.js';
import { LOAD_MODEL, CLASSIFY } from '../shared/messages.js';

let ready = null;   // Promise of the initialised wasm module (lazy, once)
let screen = null;  // the loaded MriScreen
let queue = Promise.resolve();

function errorOf(e) {
  if (e && typeof e === 'object' && 'kind' in e) return { kind: e.kind, message: e.message };
  return { kind: 'internal', message: String(e && e.message || e) };
}

async function handle({ id, type, ...args }) {
  try {
    ready ??= init();
    await ready;
    if (type === LOAD_MODEL) {
      postMessage({ id, status: 'checking and loading the model' });
      const options = { sha256: args.sha256 ?? undefined, overrides: args.overrides ?? {}, backend: args.backend ?? 'auto' };
      const next = await MriScreen.create(new Uint8Array(args.model), options);
      screen?.free();
      screen = next;
      postMessage({ id, result: { info: screen.info(), backend: screen.status() } });
    } else if (type === CLASSIFY) {
      if (!screen) throw { kind: 'model', message: 'no model is loaded yet' };
      const t0 = performance.now();
      const prediction = await screen.classify(new Uint8Array(args.image));
      prediction.total_ms = performance.now() - t0;
      prediction.status = screen.status();
      postMessage({ id, result: prediction });
    } else {
      throw { kind: 'internal', message: `unknown request ${type}` };
    }
  } catch (e) {
    postMessage({ id, error: errorOf(e) });
  }
}

self.onmessage = (event) => {
  queue = queue.then(() => handle(event.data));
};
