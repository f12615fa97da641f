// Stamps the service worker of a built site (called by scripts/build-web):
// its cache version becomes a hash of every file in the site, and its
// precache list the app shell (every file except sw.js, the builds of
// the engine, and models/, whose manifest is added and whose default model
// the worker reads at install).
//
//   node scripts/stamp-sw.mjs DIST_DIR
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

const dir = path.resolve(process.argv[2] ?? 'dist');
const swFile = path.join(dir, 'sw.js');

function list(d, rel = '') {
  return fs.readdirSync(path.join(d, rel), { withFileTypes: true }).flatMap((e) => {
    const r = rel ? `${rel}/${e.name}` : e.name;
    return e.isDirectory() ? list(d, r) : [r];
  });
}

const files = list(dir).sort();
const hash = crypto.createHash('sha256');
for (const f of files) {
  if (f === 'sw.js') continue;
  hash.update(`${f}\0`).update(fs.readFileSync(path.join(dir, f))).update('\0');
}
const version = hash.digest('hex').slice(0, 16);
// No build of the engine (pkg/mriscreen*) is precached: the page names the one its worker runs
// and the service worker stores that one, so a device never downloads the build it cannot use
// (docs/architecture.md, "The wasm modules").
const precached = (f) => f !== 'sw.js' && !f.startsWith('models/') && !f.startsWith('pkg/mriscreen') && !path.basename(f).startsWith('.');
const shell = ['./', ...files.filter(precached), 'models/manifest.json'];

const VERSION_LINE = "const VERSION = 'dev';";
const SHELL_LINE = "const SHELL = ['./'];";
let sw = fs.readFileSync(swFile, 'utf8');
for (const marker of [VERSION_LINE, SHELL_LINE]) {
  if (!sw.includes(marker)) throw new Error(`${swFile}: marker \`${marker}\` not found; keep it in www/sw.js`);
}
sw = sw.replace(VERSION_LINE, `const VERSION = '${version}';`)
  .replace(SHELL_LINE, `const SHELL = ${JSON.stringify(shell)};`);
fs.writeFileSync(swFile, sw);
console.error(`[stamp-sw] version ${version}, ${shell.length} shell files precached`);
