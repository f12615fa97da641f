"""Reference numbers for tests/dicom.rs, computed independently of the Rust
decoder: pydicom 3.0.2 (+ pylibjpeg 2 / pylibjpeg-libjpeg for the lossless
JPEG) decodes the stored values, numpy applies PS3.3 C.11.1 (rescale) and
C.11.2.1.2.1 (LINEAR window, first values) or, without a window, the
0.5/99.5 percentile window that src/decode/dicom/voi.rs documents (nearest ranks
floor(0.005 (n-1)) and ceil(0.995 (n-1)), LINEAR_EXACT). The files come
from `scripts/setup test` (.cache/dicom). Run once, paste the output:

    pip install --target /tmp/x pydicom==3.0.2 numpy pylibjpeg pylibjpeg-libjpeg
    PYTHONPATH=/tmp/x python3 tests/golden/dicom_ref.py
"""

import numpy as np
import pydicom

DIR = ".cache/dicom/"


def grey(ds, frame=None):
    a = ds.pixel_array
    if frame is not None:
        a = a[frame]
    x = a.astype(np.float64) * float(ds.get("RescaleSlope", 1)) + float(ds.get("RescaleIntercept", 0))
    if "WindowCenter" in ds:
        first = lambda v: float(v[0]) if isinstance(v, pydicom.multival.MultiValue) else float(v)
        c, w = first(ds.WindowCenter) - 0.5, first(ds.WindowWidth) - 1.0
        y = np.where(x <= c - w / 2, 0.0, np.where(x > c + w / 2, 1.0, (x - c) / w + 0.5))
        window = (first(ds.WindowCenter), first(ds.WindowWidth))
    else:
        s = np.sort(x.ravel())
        last = s.size - 1
        lo, hi = s[last // 200], s[-(-last * 199 // 200)]
        if lo == hi:
            lo, hi = s[0], s[-1]
        c, w = (lo + hi) / 2, hi - lo
        y = np.clip((x - c) / w + 0.5, 0.0, 1.0)
        window = (c, w)
    out = np.floor(y * 65535.0 + 0.5).astype(np.int64)
    if ds.PhotometricInterpretation == "MONOCHROME1":
        out = 65535 - out
    return out, window


def show(name, path, frame=None):
    ds = pydicom.dcmread(DIR + path)
    out, (c, w) = grey(ds, frame)
    probe = [int(out[r, col]) for r, col in [(0, 0), (out.shape[0] // 2, out.shape[1] // 2), (10, 50)]]
    print(f"// {path} frame {frame}: stored min {ds.pixel_array.min()} max {ds.pixel_array.max()}")
    print(f"const {name}: Reference = Reference {{ sum: {int(out.sum())}, probes: {probe}, window: ({float(c)!r}, {float(w)!r}) }};")


show("MR_SMALL", "MR_small.dcm")
show("EMRI_MIDDLE", "emri_small.dcm", 5)
show("EMRI_FIRST", "emri_small.dcm", 0)
show("CT_SMALL", "CT_small.dcm")
show("JPEG_LL", "JPEG-LL.dcm")
show("JPEG_LOSSLESS_8BIT", "JPGLosslessP14SV1_1s_1f_8b.dcm")
show("DEFLATED", "image_dfl.dcm")
for path in ["SC_rgb_rle.dcm", "SC_rgb_jpeg_gdcm.dcm"]:
    print(f"// {path}: RGB sum {int(pydicom.dcmread(DIR + path).pixel_array.astype(np.int64).sum())}")
