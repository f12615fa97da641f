// Drawing what the wasm returns: the grey `preview` of the decoded scan and
// the class-activation `heatmap` aligned with it, through a colour map
// written here. Low evidence is transparent, so the anatomy stays visible;
// the overlay's opacity is a CSS property the slider changes.

// Colour stops (value 0..1 -> RGB): dark blue, blue, teal, yellow, red. The
// hue runs one way and lightness rises to yellow, so order reads without a key.
const STOPS = [
  [0.0, [30, 20, 120]],
  [0.25, [20, 90, 230]],
  [0.5, [0, 185, 170]],
  [0.75, [250, 215, 30]],
  [1.0, [225, 30, 30]],
];

/** 256 RGBA entries: colour from STOPS; alpha 0 up to value 0.15 (weak evidence leaves the scan clear), rising to 230 at 0.65. */
export const COLORMAP = (() => {
  const lut = new Uint8ClampedArray(256 * 4);
  for (let i = 0; i < 256; i++) {
    const v = i / 255;
    let k = 1;
    while (k < STOPS.length - 1 && STOPS[k][0] < v) k++;
    const [v0, c0] = STOPS[k - 1];
    const [v1, c1] = STOPS[k];
    const t = (v - v0) / (v1 - v0);
    for (let ch = 0; ch < 3; ch++) lut[i * 4 + ch] = c0[ch] + (c1[ch] - c0[ch]) * t;
    lut[i * 4 + 3] = Math.round(230 * Math.min(1, Math.max(0, (v - 0.15) / 0.5)));
  }
  return lut;
})();

/** Draws an 8-bit grey image `{ width, height, pixels }` into `canvas` at its own size. */
export function drawGrey(canvas, { width, height, pixels }) {
  canvas.width = width;
  canvas.height = height;
  const img = new ImageData(width, height);
  for (let i = 0; i < width * height; i++) {
    const g = pixels[i];
    img.data[i * 4] = g; img.data[i * 4 + 1] = g; img.data[i * 4 + 2] = g; img.data[i * 4 + 3] = 255;
  }
  canvas.getContext('2d').putImageData(img, 0, 0);
}

/** Draws a heat-map `{ width, height, values }` through COLORMAP; returns the number of non-transparent pixels. */
export function drawHeatmap(canvas, { width, height, values }) {
  canvas.width = width;
  canvas.height = height;
  const img = new ImageData(width, height);
  let shown = 0;
  for (let i = 0; i < width * height; i++) {
    const o = values[i] * 4;
    img.data.set(COLORMAP.subarray(o, o + 4), i * 4);
    if (COLORMAP[o + 3] > 0) shown++;
  }
  canvas.getContext('2d').putImageData(img, 0, 0);
  return shown;
}

/** A horizontal strip of the colour map, for the legend. */
export function drawLegend(canvas) {
  canvas.width = 128;
  canvas.height = 1;
  const img = new ImageData(128, 1);
  for (let x = 0; x < 128; x++) {
    const o = Math.round((x * 255) / 127) * 4;
    img.data.set(COLORMAP.subarray(o, o + 3), x * 4);
    img.data[x * 4 + 3] = 255;
  }
  canvas.getContext('2d').putImageData(img, 0, 0);
}

/**
 * Without a `preview` (an older wasm build): let the browser decode formats it
 * can show itself, scaled so the longer side is at most 256 px. False when it cannot.
 */
export async function drawFromFile(canvas, blob) {
  try {
    const bitmap = await createImageBitmap(blob);
    const scale = Math.min(1, 256 / Math.max(bitmap.width, bitmap.height));
    canvas.width = Math.max(1, Math.round(bitmap.width * scale));
    canvas.height = Math.max(1, Math.round(bitmap.height * scale));
    canvas.getContext('2d').drawImage(bitmap, 0, 0, canvas.width, canvas.height);
    bitmap.close();
    return true;
  } catch {
    return false;
  }
}
