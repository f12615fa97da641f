"""Independent reference for src/preprocess.rs, written with numpy and Pillow.

Regenerate the committed inputs and expected tensors with:

    pip install numpy==2.4.6 pillow==13.0.0
    python3 tests/golden/preprocess_ref.py

It writes tests/golden/{grey16.png,rgba8.png,progressive.jpg} and
tests/golden/preprocess_expected.json, which tests/preprocess_golden.rs
compares against the Rust implementation (tolerance 1e-4).

The resize is Pillow's own BILINEAR on a float ("F") image: an antialiased
triangle filter, implemented independently of our Rust code.
"""
import json
import math
import os

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))


def make_inputs():
    y, x = np.mgrid[0:23, 0:37]
    # A smooth ramp plus a bright disc and one hot pixel, 16-bit.
    g = 4000 + 900 * x + 350 * y
    g = np.where((x - 20) ** 2 + (y - 11) ** 2 < 36, g + 20000, g)
    g[3, 30] = 65535
    grey16 = g.astype(np.uint16)
    Image.fromarray(grey16).save(os.path.join(HERE, "grey16.png"))

    y, x = np.mgrid[0:41, 0:29]
    rgba = np.zeros((41, 29, 4), dtype=np.uint8)
    rgba[..., 0] = (x * 8) % 256
    rgba[..., 1] = (y * 6) % 256
    rgba[..., 2] = ((x + y) * 5) % 256
    rgba[..., 3] = np.where(x < 4, 128, 255)
    Image.fromarray(rgba, "RGBA").save(os.path.join(HERE, "rgba8.png"))

    # A progressive JPEG for the decoder test (the image crate cannot write one).
    y, x = np.mgrid[0:64, 0:48]
    photo = np.stack([(x * 5) % 256, (y * 4) % 256, ((x * y) // 8) % 256], axis=-1).astype(np.uint8)
    Image.fromarray(photo, "RGB").save(os.path.join(HERE, "progressive.jpg"), quality=90, progressive=True)
    return {"grey16.png": grey16, "rgba8.png": rgba}


def luminance(a):
    if a.ndim == 2:
        return a.astype(np.float64) / (65535.0 if a.dtype == np.uint16 else 255.0)
    a = a.astype(np.float64) / 255.0
    lum = 0.299 * a[..., 0] + 0.587 * a[..., 1] + 0.114 * a[..., 2]
    return lum * a[..., 3] if a.shape[-1] == 4 else lum


def robust(p):
    lo, hi = np.percentile(p, [0.5, 99.5])  # numpy's default "linear" method
    if hi - lo <= 0:
        return np.zeros_like(p)
    return np.clip((p - lo) / (hi - lo), 0.0, 1.0)


def pil_resize(p, w, h):
    img = Image.fromarray(p.astype(np.float32), mode="F")
    return np.asarray(img.resize((w, h), Image.BILINEAR), dtype=np.float64)


def fit(p, w, h, mode):
    if mode == "stretch":
        return pil_resize(p, w, h)
    ph, pw = p.shape
    scale = min(w / pw, h / ph)
    # Round half away from zero, as Rust's f64::round does.
    nw = min(max(int(math.floor(pw * scale + 0.5)), 1), w)
    nh = min(max(int(math.floor(ph * scale + 0.5)), 1), h)
    out = np.zeros((h, w))
    x0, y0 = (w - nw) // 2, (h - nh) // 2
    out[y0:y0 + nh, x0:x0 + nw] = pil_resize(p, nw, nh)
    return out


def tensor(p, mean, std):
    return np.stack([(p - m) / s for m, s in zip(mean, std)])  # NCHW, batch 1


def main():
    inputs = make_inputs()
    cases = []
    for name, w, h, resize, intensity, mean, std in [
        ("grey16.png", 16, 16, "letterbox", "robust", [0.5, 0.5, 0.5], [0.25, 0.25, 0.25]),
        ("grey16.png", 20, 12, "stretch", "unit", [0.0, 0.0, 0.0], [1.0, 1.0, 1.0]),
        ("rgba8.png", 24, 24, "letterbox", "robust", [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
        ("rgba8.png", 64, 48, "letterbox", "unit", [0.5, 0.5, 0.5], [0.5, 0.5, 0.5]),
    ]:
        p = luminance(inputs[name])
        if intensity == "robust":
            p = robust(p)
        t = tensor(fit(p, w, h, resize), mean, std)
        cases.append({
            "input": name, "width": w, "height": h, "resize": resize, "intensity": intensity,
            "mean": mean, "std": std, "tensor": [round(float(v), 7) for v in t.ravel()],
        })
    with open(os.path.join(HERE, "preprocess_expected.json"), "w") as f:
        json.dump({"generator": "tests/golden/preprocess_ref.py", "numpy": np.__version__,
                   "pillow": Image.__version__, "cases": cases}, f)
        f.write("\n")


if __name__ == "__main__":
    main()
