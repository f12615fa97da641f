// The page's first script: starts the engine's worker as soon as the HTML is
// parsed, so the WebAssembly module downloads and compiles while main.js's
// modules still load (index.html preloads them all at once). main.js then
// takes the same client (worker-client.js, pageClient).
import { pageClient } from './worker-client.js';

pageClient();
