// Offline use: registers the service worker (www/sw.js, at the site root so
// its scope covers the page), shows "ready offline" when it says so, and
// offers an update: a new version waits until the user presses the
// "Update available — reload" button, then takes over and the page reloads.
import { SW_PING, SW_READY_OFFLINE, SW_SKIP_WAITING, SW_OFFLINE_FAILED } from '../protocol/messages.js';

/** `engineFiles()`: the URLs of the wasm build the worker runs (the service worker precaches neither build). */
export async function setupOffline({ status, button, engineFiles = () => [] }) {
  const show = (state, text) => { status.dataset.status = state; status.textContent = text; };
  if (!('serviceWorker' in navigator)) {
    show('unavailable', 'Offline use: not available in this browser (no service workers).');
    return;
  }
  const sw = navigator.serviceWorker;
  sw.addEventListener('message', ({ data }) => {
    if (data?.type === SW_READY_OFFLINE) {
      show('ready', 'Ready offline: this page, the app and the default model are stored on this device.');
      status.dataset.version = data.version;
    } else if (data?.type === SW_OFFLINE_FAILED) {
      show('unavailable', `Offline use: unavailable — ${data.reason}. The page still works online.`);
    }
  });
  let agreed = false;
  sw.addEventListener('controllerchange', () => { if (agreed) location.reload(); });
  const offer = (waiting) => {
    button.hidden = false;
    button.onclick = () => {
      agreed = true;
      button.disabled = true;
      waiting.postMessage({ type: SW_SKIP_WAITING });
    };
  };

  let registration;
  try {
    show('installing', 'Offline use: storing the app on this device…');
    registration = await sw.register(new URL('../sw.js', import.meta.url), { updateViaCache: 'none' });
  } catch (e) {
    show('unavailable', `Offline use: not available (${e.message}).`);
    return;
  }
  if (registration.waiting && sw.controller) offer(registration.waiting);
  registration.addEventListener('updatefound', () => {
    const next = registration.installing;
    next?.addEventListener('statechange', () => {
      if (next.state === 'installed' && sw.controller) offer(next);
      if (next.state === 'redundant' && !sw.controller && status.dataset.status !== 'unavailable') {
        show('unavailable', 'Offline use: storing the app failed; the page still works online.');
      }
    });
  });
  const ready = await sw.ready;
  ready.active?.postMessage({ type: SW_PING, extra: engineFiles() });
}
