// Writes a brotli (.br) and a gzip (.gz) copy beside every compressible file
// of a built site, as static hosts serve them (Content-Encoding chosen from
// the request's Accept-Encoding; scripts/static-server.mjs does the same).
// A copy is kept only when it saves at least 5 %. Called by scripts/build-web
// after the service worker is stamped, so the copies are not in its precache
// list: the browser decodes them and caches what it decoded.
//
//   node scripts/precompress.mjs DIST_DIR
//
// Brotli quality 11 (the smallest) takes ~50 s on the 15 MB wasm on 2 cores,
// so files over 2 MB get quality 9 unless MRISCREEN_BROTLI=11.
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';

export const COMPRESSIBLE = new Set(['.wasm', '.js', '.mjs', '.css', '.html', '.json', '.webmanifest', '.svg', '.md', '.onnx', '.txt']);
const MIN_BYTES = 1024;
const BIG = 2 << 20;

function list(dir) {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? list(p) : [p];
  });
}

const dir = path.resolve(process.argv[2] ?? 'dist');
const forced = Number(process.env.MRISCREEN_BROTLI) || 0;
let raw = 0;
let br = 0;
let written = 0;
for (const file of list(dir)) {
  if (!COMPRESSIBLE.has(path.extname(file).toLowerCase())) continue;
  const bytes = fs.readFileSync(file);
  if (bytes.length < MIN_BYTES) continue;
  const quality = forced || (bytes.length > BIG ? 9 : 11);
  const copies = [
    ['.br', zlib.brotliCompressSync(bytes, { params: { [zlib.constants.BROTLI_PARAM_QUALITY]: quality, [zlib.constants.BROTLI_PARAM_SIZE_HINT]: bytes.length } })],
    ['.gz', zlib.gzipSync(bytes, { level: 9 })],
  ];
  for (const [ext, out] of copies) {
    if (out.length <= bytes.length * 0.95) {
      fs.writeFileSync(file + ext, out);
      written += 1;
      if (ext === '.br') { raw += bytes.length; br += out.length; }
    }
  }
}
console.error(`[precompress] ${written} copies; brotli ${(raw / 1e6).toFixed(1)} MB -> ${(br / 1e6).toFixed(1)} MB`);
