// The CSV and JSON exports take file names and error messages as they come:
// a spreadsheet must never run one as a formula (OWASP's CSV injection
// advice: a leading = + - @, tab or carriage return is prefixed with '), and
// quoting must survive commas, quotes and line breaks. Pure functions of
// www/app/export.js, run in Node without a browser.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { toCsv, toJson, NOTICE } from '../../www/app/export.js';

const ok = (file) => ({
  file, status: 'ok', label: 'glioma', topProbability: 0.9, refer: false, referReasons: [], threshold: 0.4, colourFraction: 0,
  probabilities: { glioma: 0.9, notumor: 0.1 }, backend: 'cpu', inferenceMs: 12.345, totalMs: 20.5, format: 'PNG', width: 10, height: 10,
});

/** Parses one CSV line the way a spreadsheet does (RFC 4180 quoting). */
function cells(line) {
  const out = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i];
    if (quoted) {
      if (ch === '"' && line[i + 1] === '"') { cur += '"'; i++; } else if (ch === '"') quoted = false; else cur += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ',') { out.push(cur); cur = ''; } else cur += ch;
  }
  out.push(cur);
  return out;
}

test('formula-leading file names are defused and quoting holds', () => {
  const hostile = ['=HYPERLINK("http://evil.example","x").png', '+1+1.png', '-2.png', '@SUM(A1).png', '\tcmd.png', 'a,b "c".png'];
  const records = [...hostile.map(ok), { file: '=cmd|\'/c calc\'!A1', status: 'error', error: '=not an image' }];
  const csv = toCsv(records);
  const lines = csv.split('\r\n');
  assert.equal(lines[0], `# ${NOTICE}`, 'the research-use notice heads the file');
  const header = cells(lines[1]);
  const file = header.indexOf('file');
  const error = header.indexOf('error');
  for (const [k, name] of hostile.entries()) {
    const got = cells(lines[2 + k])[file];
    assert.ok(!/^[=+\-@\t\r]/.test(got), `${JSON.stringify(name)} became ${JSON.stringify(got)}`);
    assert.ok(got.endsWith(name), `the name is kept after the prefix: ${got}`);
  }
  assert.equal(cells(lines[2 + 5])[file], 'a,b "c".png', 'commas and quotes survive');
  const failed = cells(lines[2 + hostile.length]);
  assert.equal(failed[file], "'=cmd|'/c calc'!A1");
  assert.equal(failed[error], "'=not an image");
});

test('the JSON export keeps names exactly (JSON has no formulas) and says what it is', () => {
  const json = JSON.parse(toJson([ok('=1+1.png')], []));
  assert.equal(json.notice, NOTICE);
  assert.equal(json.results[0].file, '=1+1.png');
});
