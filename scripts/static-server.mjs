// A minimal static file server for the built site (dist/): correct MIME types
// (application/wasm), a Content-Security-Policy header, loopback only. Every
// answer must be revalidated (Cache-Control: no-cache) and carries an ETag,
// so the service worker's precache of a file the page has just downloaded is
// a 304, not a second download.
// A file with a precompressed copy beside it (`x.br`, `x.gz`, written by
// scripts/precompress.mjs) is answered with the copy the request accepts
// (brotli first), `Content-Encoding` and `Vary: Accept-Encoding`, as static
// hosts do.
// Used by `scripts/serve` and by the browser tests. No dependencies.
//
//   node scripts/static-server.mjs [--root dist] [--port 8080] [--host 127.0.0.1] [--prefix /sub/path/]
//
// --prefix serves the site under a sub-path (as a static host's project page
// would); anything outside it is 404.
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const TYPES = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8', '.json': 'application/json', '.webmanifest': 'application/manifest+json',
  '.wasm': 'application/wasm', '.onnx': 'application/octet-stream', '.png': 'image/png', '.jpg': 'image/jpeg',
  '.svg': 'image/svg+xml', '.md': 'text/markdown; charset=utf-8', '.ico': 'image/x-icon', '.dcm': 'application/dicom',
};

/** `/a/b` or `a/b/` -> `/a/b/`; empty -> `/`. */
function normalisePrefix(prefix) {
  const parts = String(prefix ?? '').split('/').filter(Boolean);
  return parts.length ? `/${parts.join('/')}/` : '/';
}

export const CSP = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; worker-src 'self'; connect-src 'self'; " +
  "img-src 'self' blob: data:; style-src 'self'; object-src 'none'; base-uri 'self'; form-action 'none'";

/** A validator for a file's current content: size and modification time. */
const etagOf = (st) => `"${st.size.toString(16)}-${Math.floor(st.mtimeMs).toString(16)}"`;

/** The encodings a request accepts (q > 0), lower-case. */
export function accepted(header) {
  return new Set(String(header ?? '').split(',').map((part) => {
    const [name, ...params] = part.trim().toLowerCase().split(';');
    const q = params.map((p) => p.trim()).find((p) => p.startsWith('q='));
    return q && Number(q.slice(2)) === 0 ? '' : name.trim();
  }).filter(Boolean));
}

/**
 * The precompressed copy of `file` (whose stat is `original`) to answer with, if any: { path, encoding, stat }.
 * A copy older than the file is stale (the file was changed after the build) and is not used.
 */
function encodedCopy(file, original, acceptEncoding) {
  const ok = accepted(acceptEncoding);
  for (const [ext, encoding] of [['.br', 'br'], ['.gz', 'gzip']]) {
    if (!ok.has(encoding)) continue;
    try {
      const stat = fs.statSync(file + ext);
      if (stat.isFile() && stat.mtimeMs >= original.mtimeMs) return { path: file + ext, encoding, stat };
    } catch {
      // No copy in this encoding.
    }
  }
  return null;
}

/** True when an If-None-Match header names `etag` (or is `*`). */
function matches(ifNoneMatch, etag) {
  if (!ifNoneMatch) return false;
  return ifNoneMatch.split(',').map((t) => t.trim().replace(/^W\//, '')).some((t) => t === etag || t === '*');
}

/**
 * Starts a server for `root` under `prefix` (default `/`); resolves to
 * { server, url } where `url` ends with the prefix. Port 0 picks a free one.
 * `onAnswer({ path, status, bytes })`, if given, hears of every file answer
 * (200 with its body size, or 304).
 */
export function serve(root, { port = 0, host = '127.0.0.1', prefix = '/', onAnswer = () => {} } = {}) {
  const base = path.resolve(root);
  const mount = normalisePrefix(prefix);
  const server = http.createServer((req, res) => {
    let pathname;
    try {
      pathname = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    } catch {
      res.writeHead(400).end('bad request');
      return;
    }
    if (pathname === mount.slice(0, -1)) {
      res.writeHead(301, { Location: mount }).end();
      return;
    }
    if (!pathname.startsWith(mount)) {
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found');
      return;
    }
    pathname = '/' + pathname.slice(mount.length);
    const requested = mount + pathname.slice(1);
    let file = path.join(base, pathname);
    if (file !== base && !file.startsWith(base + path.sep)) {
      res.writeHead(403).end('forbidden');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { Allow: 'GET, HEAD' }).end();
      return;
    }
    fs.stat(file, (err, st) => {
      if (!err && st.isDirectory()) {
        if (!pathname.endsWith('/')) {
          res.writeHead(301, { Location: requested + '/' }).end();
          return;
        }
        file = path.join(file, 'index.html');
      }
      fs.stat(file, (err2, st2) => {
        if (err2 || !st2.isFile()) {
          res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found');
          return;
        }
        const copy = encodedCopy(file, st2, req.headers['accept-encoding']);
        const body = copy ?? { path: file, encoding: null, stat: st2 };
        // Each encoding is its own representation, with its own validator.
        const etag = copy ? etagOf(body.stat).replace(/"$/, `-${copy.encoding}"`) : etagOf(st2);
        const common = { 'Content-Security-Policy': CSP, 'Cache-Control': 'no-cache', 'X-Content-Type-Options': 'nosniff', ETag: etag, Vary: 'Accept-Encoding' };
        if (matches(req.headers['if-none-match'], etag)) {
          onAnswer({ path: requested, status: 304, bytes: 0 });
          res.writeHead(304, common).end();
          return;
        }
        res.writeHead(200, {
          ...common,
          'Content-Type': TYPES[path.extname(file).toLowerCase()] ?? 'application/octet-stream',
          'Content-Length': body.stat.size,
          ...(copy ? { 'Content-Encoding': copy.encoding } : {}),
        });
        onAnswer({ path: requested, status: 200, bytes: req.method === 'HEAD' ? 0 : body.stat.size, encoding: copy?.encoding ?? 'identity' });
        if (req.method === 'HEAD') res.end();
        else fs.createReadStream(body.path).pipe(res);
      });
    });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      const { port: p } = server.address();
      resolve({ server, url: `http://${host}:${p}${mount}` });
    });
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const arg = (name, def) => {
    const i = process.argv.indexOf(`--${name}`);
    return i > 0 ? process.argv[i + 1] : def;
  };
  const root = arg('root', 'dist');
  if (!fs.existsSync(path.join(root, 'index.html'))) {
    console.error(`error: ${root}/index.html does not exist; build the site first (scripts/build-web)`);
    process.exit(2);
  }
  serve(root, { port: Number(arg('port', process.env.PORT ?? 8080)), host: arg('host', '127.0.0.1'), prefix: arg('prefix', '/') })
    .then(({ url }) => console.log(`mriscreen is served at ${url} (Ctrl-C stops it)`))
    .catch((e) => {
      console.error(`error: cannot listen: ${e.message}; choose another port with --port`);
      process.exit(2);
    });
}
