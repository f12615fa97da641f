// Draws the web-app icons (www/icons/icon-192.png, icon-512.png): a head
// outline in a rounded square with a small highlighted spot, drawn
// here pixel by pixel (no third-party assets), written as PNG with node's
// zlib. The motif stays inside the central 80 % so the icons are "maskable".
//
//   node scripts/make-icons.mjs
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { fileURLToPath } from 'node:url';

const OUT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../www/icons');

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
function crc32(buf) {
  let c = 0xffffffff;
  for (const b of buf) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
function chunk(type, data) {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([len, body, crc]);
}
/** RGBA pixels (Uint8Array, size*size*4) -> PNG bytes. */
function png(size, rgba) {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(size, 0);
  ihdr.writeUInt32BE(size, 4);
  ihdr[8] = 8; ihdr[9] = 6; // 8-bit RGBA
  const raw = Buffer.alloc(size * (size * 4 + 1));
  for (let y = 0; y < size; y++) {
    raw[y * (size * 4 + 1)] = 0; // filter: none
    Buffer.from(rgba.buffer, y * size * 4, size * 4).copy(raw, y * (size * 4 + 1) + 1);
  }
  return Buffer.concat([Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]), chunk('IHDR', ihdr),
    chunk('IDAT', zlib.deflateSync(raw, { level: 9 })), chunk('IEND', Buffer.alloc(0))]);
}

const BLUE = [11, 87, 208];
const WHITE = [255, 255, 255];
const AMBER = [255, 190, 40];

/** Coverage of a pixel by a shape given as a signed distance (negative inside), antialiased over one pixel. */
const cover = (d) => Math.min(1, Math.max(0, 0.5 - d));

function draw(size) {
  const px = new Uint8Array(size * size * 4);
  const s = size / 512; // design units: 512 px
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const u = (x + 0.5) / s, v = (y + 0.5) / s; // design coordinates
      // Full-bleed background (maskable icons are cropped by the platform).
      let c = [...BLUE];
      const mix = (col, a) => { c = c.map((ch, i) => ch + (col[i] - ch) * a); };
      // Head: an ellipse ring centred at (256, 262), radii 150 x 175, 26 thick.
      const e = Math.hypot((u - 256) / 150, (v - 262) / 175);
      const ring = Math.abs(e - 1) * 160 - 13;
      mix(WHITE, cover(ring * s));
      // Midline (the falx), a short vertical bar.
      const bar = Math.max(Math.abs(u - 256) - 7, Math.abs(v - 250) - 105);
      mix(WHITE, cover(bar * s) * 0.85);
      // The spot the screening looks for.
      const spot = Math.hypot(u - 322, v - 205) - 42;
      mix(AMBER, cover(spot * s));
      const o = (y * size + x) * 4;
      px[o] = Math.round(c[0]); px[o + 1] = Math.round(c[1]); px[o + 2] = Math.round(c[2]); px[o + 3] = 255;
    }
  }
  return px;
}

fs.mkdirSync(OUT, { recursive: true });
for (const size of [192, 512]) {
  const file = path.join(OUT, `icon-${size}.png`);
  fs.writeFileSync(file, png(size, draw(size)));
  console.log(`${path.relative(process.cwd(), file)} (${fs.statSync(file).size} bytes)`);
}
