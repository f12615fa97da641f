// The page <-> worker protocol. Every request carries an `id`; the worker
// answers with { id, status } progress messages, then { id, result } or
// { id, error: { kind, message } }.
export const LOAD_MODEL = 'load-model';   // { model: ArrayBuffer, sha256, overrides, backend } -> { info, backend }
export const CLASSIFY = 'classify';       // { name, image: ArrayBuffer } -> prediction
