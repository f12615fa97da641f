// The page <-> worker protocol. Every request carries an `id`; the worker
// answers with any number of { id, status, progress? } messages, then exactly
// one { id, result } or { id, error: { kind, message } }.
// See www/README.md for the payloads.

/**
 * { url, sha256, bytes?, backend, overrides? } or { model: ArrayBuffer, ... } -> { info, backend, engine_files }
 * (`engine_files`: the URLs of the build of the wasm the worker runs, for the service worker to store)
 */
export const LOAD_MODEL = 'load-model';
/** { name, image: ArrayBuffer, frame? } -> prediction */
export const CLASSIFY = 'classify';

/**
 * Error kinds: the wasm's, plus `network` (a download failed or stopped
 * midway), `hash` (the model file does not match the manifest), `device-lost`
 * (the WebGPU device went away mid-scan) and, from the page's own client,
 * `cancelled` (Cancel stopped the request).
 */
export const ERROR_KINDS = ['decode', 'model', 'inference', 'options', 'internal', 'network', 'hash', 'device-lost', 'cancelled'];

// Page <-> service worker messages ({ type, ... }).
/**
 * page -> sw: { extra? } store `extra` (URLs under pkg/: the build of the wasm the page runs; the
 * CPU build when empty), then answer READY_OFFLINE if the precache is complete, else OFFLINE_FAILED.
 */
export const SW_PING = 'ping';
/** sw -> page: { version } everything needed to run offline is cached. */
export const SW_READY_OFFLINE = 'ready-offline';
/** sw -> page: { reason } storing the app for offline use failed (e.g. the storage quota); the page works online. */
export const SW_OFFLINE_FAILED = 'offline-failed';
/** page -> waiting sw: the user agreed to the update; activate now. */
export const SW_SKIP_WAITING = 'skip-waiting';
