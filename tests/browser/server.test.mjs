// The static server answers with a precompressed copy when the request
// accepts it (brotli before gzip), with Content-Encoding, Vary and its own
// ETag, and with the file itself otherwise. Node only, no browser.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { serve, accepted } from '../../scripts/static-server.mjs';

let root, server, base;
const text = 'mriscreen '.repeat(500);
before(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'mriscreen-server-'));
  fs.writeFileSync(path.join(root, 'index.html'), '<!doctype html>');
  fs.writeFileSync(path.join(root, 'app.js'), text);
  fs.writeFileSync(path.join(root, 'app.js.br'), zlib.brotliCompressSync(text));
  fs.writeFileSync(path.join(root, 'app.js.gz'), zlib.gzipSync(text));
  ({ server, url: base } = await serve(root));
});
after(() => { server?.close(); fs.rmSync(root, { recursive: true, force: true }); });

async function get(file, headers = {}) {
  const r = await fetch(base + file, { headers });
  return { status: r.status, headers: r.headers, body: Buffer.from(await r.arrayBuffer()) };
}

test('Accept-Encoding is parsed with its q-values', () => {
  assert.deepEqual([...accepted('gzip, deflate, br;q=1.0, zstd')], ['gzip', 'deflate', 'br', 'zstd']);
  assert.deepEqual([...accepted('br;q=0, gzip')], ['gzip']);
  assert.deepEqual([...accepted(undefined)], []);
});

test('brotli first, then gzip, then the file; each with its own validator', async () => {
  // Node's fetch decodes what it asked for, so the body is the text each time.
  const br = await get('app.js', { 'Accept-Encoding': 'gzip, br' });
  assert.equal(br.headers.get('content-encoding'), 'br');
  assert.equal(br.headers.get('vary'), 'Accept-Encoding');
  assert.equal(br.headers.get('content-type'), 'text/javascript; charset=utf-8');
  assert.equal(br.body.toString(), text);
  const gz = await get('app.js', { 'Accept-Encoding': 'gzip' });
  assert.equal(gz.headers.get('content-encoding'), 'gzip');
  assert.equal(gz.body.toString(), text);
  const plain = await get('app.js', { 'Accept-Encoding': 'identity' });
  assert.equal(plain.headers.get('content-encoding'), null);
  assert.equal(plain.body.toString(), text);
  const tags = new Set([br, gz, plain].map((r) => r.headers.get('etag')));
  assert.equal(tags.size, 3, 'three representations, three ETags');
  const again = await get('app.js', { 'Accept-Encoding': 'br', 'If-None-Match': br.headers.get('etag') });
  assert.equal(again.status, 304);
  // A copy older than its file (the file changed after the build) is stale and not used.
  const later = new Date(Date.now() + 60_000);
  fs.utimesSync(path.join(root, 'app.js'), later, later);
  const stale = await get('app.js', { 'Accept-Encoding': 'br, gzip' });
  assert.equal(stale.headers.get('content-encoding'), null);
  // A file without copies is sent as it is, whatever is accepted.
  const html = await get('index.html', { 'Accept-Encoding': 'br' });
  assert.equal(html.headers.get('content-encoding'), null);
});
