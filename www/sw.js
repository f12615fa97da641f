// Service worker: makes the page work offline. One versioned cache per build
// (scripts/build-web stamps VERSION, a hash of the site's files, and SHELL,
// the app shell). Install precaches the shell and the default model named in
// models/manifest.json; the page then names the build of the wasm its worker
// runs (PING), which is stored before the page hears "ready offline"; other
// models are cached on first use; old
// versions' caches are deleted on activate; requests to other origins and
// anything but GET are left alone. A new version waits until the page says
// the user agreed (SKIP_WAITING), then takes over. Unstamped (VERSION 'dev',
// www/ served as is) it goes to the network first, so edits show at once.
//
// A classic script (not a module) so every browser with service workers runs
// it; the message names match www/protocol/messages.js.

const VERSION = 'dev';
const SHELL = ['./'];

const PREFIX = 'mriscreen-';
const CACHE = `${PREFIX}${VERSION}`;
const SCOPE = new URL('./', self.location.href);
const MSG = { PING: 'ping', READY_OFFLINE: 'ready-offline', SKIP_WAITING: 'skip-waiting', OFFLINE_FAILED: 'offline-failed' };

const at = (relative) => new URL(relative, SCOPE).href;

/**
 * Revalidated with the server, never taken stale from the HTTP cache: a file
 * the page has just downloaded comes back as a 304, not a second download.
 */
const fresh = (url) => new Request(url, { cache: 'no-cache' });

/** Shell files and the default model. */
async function precache() {
  const cache = await caches.open(CACHE);
  await cache.addAll(SHELL.map((u) => fresh(at(u))));
  const manifestUrl = at('models/manifest.json');
  let response = await cache.match(manifestUrl);
  if (!response) {
    await cache.add(fresh(manifestUrl));
    response = await cache.match(manifestUrl);
  }
  const manifest = await response.json();
  const models = manifest.models ?? [];
  const entry = models.find((m) => m.id === manifest.default) ?? models[0];
  if (!entry) throw new Error('models/manifest.json lists no models');
  await cache.add(fresh(new URL(entry.file, manifestUrl).href));
}

/** Deletes every mriscreen cache but this version's. */
async function dropOldCaches() {
  const names = await caches.keys();
  await Promise.all(names.filter((n) => n.startsWith(PREFIX) && n !== CACHE).map((n) => caches.delete(n)));
}

async function tellClients(message) {
  for (const client of await self.clients.matchAll({ type: 'window', includeUncontrolled: true })) client.postMessage(message);
}

/** Cached copy if any, else the network (and cache a good same-origin answer). */
async function cacheFirst(request) {
  const cache = await caches.open(CACHE);
  const hit = await cache.match(request);
  if (hit) return hit;
  const response = await fetch(request);
  if (response.ok && response.type === 'basic') await cache.put(request, response.clone());
  return response;
}

/** Unbuilt site (www/ served as is, VERSION 'dev'): the network, the cache only when offline. */
async function networkFirst(request) {
  const cache = await caches.open(CACHE);
  try {
    const response = await fetch(request);
    if (response.ok && response.type === 'basic') await cache.put(request, response.clone());
    return response;
  } catch (e) {
    const hit = await cache.match(request, { ignoreSearch: request.mode === 'navigate' });
    if (hit) return hit;
    throw e;
  }
}

/** Models: cached on first use (streamed to the page while being stored). */
async function cacheOnFirstUse(request) {
  const cache = await caches.open(CACHE);
  const hit = await cache.match(request);
  if (hit) return hit;
  const response = await fetch(request);
  if (response.ok && response.type === 'basic') cache.put(request, response.clone()).catch(() => {});
  return response;
}

/** The page itself, whatever its query (?backend=cpu): cache, else network. */
async function page(request) {
  const cache = await caches.open(CACHE);
  return (await cache.match(request, { ignoreSearch: true })) ?? fetch(request);
}

/** Why storing the app failed, in words a person can act on. */
function failureText(e) {
  if (e?.name === 'QuotaExceededError') {
    return `this browser's storage for the site is full or too small (${e.message || e.name}); free space or allow storage for this site to use it offline`;
  }
  return `${e?.name ?? 'Error'}: ${e?.message ?? e}`;
}

self.addEventListener('install', (event) => {
  // A failed precache leaves no half-filled cache behind and tells the page
  // why; the page keeps working online.
  event.waitUntil(precache().catch(async (e) => {
    await caches.delete(CACHE).catch(() => {});
    await tellClients({ type: MSG.OFFLINE_FAILED, reason: failureText(e) });
    throw e;
  }));
});

self.addEventListener('activate', (event) => {
  event.waitUntil((async () => {
    await dropOldCaches();
    await self.clients.claim();
  })());
});

/** The CPU build of the engine: what is stored when the page names none. */
const CPU_ENGINE = ['pkg/mriscreen.js', 'pkg/mriscreen_bg.wasm'];

/**
 * Stores the build of the engine (wasm and its JavaScript) the page's worker
 * runs, which install does not precache: there are two (docs/architecture.md,
 * "The wasm modules") and a device needs only one. Only URLs under this
 * scope's pkg/; the CPU build when the page names none (its model did not
 * load). Revalidated, so what the worker has just downloaded is a 304.
 */
async function storeEngine(urls) {
  const pkg = at('pkg/');
  const named = (Array.isArray(urls) ? urls : []).filter((u) => typeof u === 'string' && u.startsWith(pkg) && !u.includes('..'));
  const cache = await caches.open(CACHE);
  await cache.addAll((named.length ? named : CPU_ENGINE.map(at)).map(fresh));
}

self.addEventListener('message', (event) => {
  const type = event.data?.type;
  if (type === MSG.PING) {
    // Ready offline once the engine the page runs is stored too (not at activate, before it is).
    event.waitUntil(storeEngine(event.data.extra).then(
      () => event.source?.postMessage({ type: MSG.READY_OFFLINE, version: VERSION }),
      (e) => event.source?.postMessage({ type: MSG.OFFLINE_FAILED, reason: failureText(e) }),
    ));
  }
  else if (type === MSG.SKIP_WAITING) self.skipWaiting();
});

self.addEventListener('fetch', (event) => {
  const { request } = event;
  if (request.method !== 'GET') return;
  const url = new URL(request.url);
  if (url.origin !== SCOPE.origin || !url.pathname.startsWith(SCOPE.pathname)) return;
  if (url.href === self.location.href) return;
  if (VERSION === 'dev') event.respondWith(networkFirst(request));
  else if (request.mode === 'navigate') event.respondWith(page(request));
  else if (url.pathname.endsWith('.onnx')) event.respondWith(cacheOnFirstUse(request));
  else event.respondWith(cacheFirst(request));
});
