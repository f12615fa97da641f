#!/usr/bin/env python3
"""Cuts 2-D axial slices out of the real brain MRI volumes that scripts/fetch-external fetched
from package registries, as an external test set independent of the Kaggle data sets.

    python3 scripts/external_slices.py [--cache .cache] [--sheets]

Writes .cache/external/<class>/<name>.png (8-bit grey) and .cache/external/README.md, which
lists every file with its source package, version, member, slice, class, reason and licence.
--sheets also writes .cache/external-sheets/<source>.png, every axial slice of each volume
side by side with its index, to check the choices below (not part of the test set).

Only numpy is needed: NRRD and NIfTI-1 are read by the small readers below, PNG is written
with zlib. Members are read straight out of the downloaded sdist/wheel or the unpacked .deb
and their SHA-256 is checked, so a changed upstream file fails loudly instead of quietly
changing the test set.

Display convention (as in typical Kaggle brain MRI slices): axial slice, anterior (nose) at
the top, patient's left on the image's right (radiological). Each volume's voxel-to-world
matrix is used to permute/flip its axes so that index i grows towards patient Left, j towards
Posterior and k towards Superior (no resampling across slices), slice k is taken and
displayed with rows = j and columns = i. Non-square pixels are resampled in-plane (bilinear)
to square ones of the smaller spacing, the slice is windowed to its 0.5-99.5 percentile
range, and zero-padded to a centred square.
"""
import argparse
import gzip
import hashlib
import io
import os
import struct
import sys
import tarfile
import zipfile
import zlib

import numpy as np

CLASSES = ("glioma", "meningioma", "notumor", "pituitary")

TCGA_GBM = ("TCIA collection TCGA-GBM (The Cancer Genome Atlas Glioblastoma Multiforme; "
            "Scarpace et al. 2016, doi:10.7937/K9/TCIA.2016.RNYFUYE9)")
TCGA_LICENCE = ("pyradiomics: BSD-3-Clause (its LICENSE.txt; the data/ folder has no separate "
                "licence). Image data: TCGA-GBM, whose TCIA licence is CC BY 3.0 to our "
                "knowledge (not verifiable offline).")

# Each source: where the volume is, what it is, and how slices are chosen.
#   archive: (kind, glob under the cache) where kind is sdist (tar.gz), wheel (zip) or deb
#   (unpacked folder); member: path inside it; sha256 of the member's bytes.
#   slices: "mask" = largest tumour area plus the neighbouring slices that still hold tumour;
#   otherwise a list of (k, reason) with k in the L/P/S-ordered volume described above.
SOURCES = [
    dict(
        id="pyradiomics-brain1",
        cls="glioma",
        package="pyradiomics", version="3.0.1", registry="PyPI (sdist)",
        archive=("sdist", "wheels/pyradiomics-3.0.1.tar.gz"),
        member="pyradiomics-3.0.1/data/brain1_image.nrrd",
        sha256="fffdb111ee8b428ede7256707393c927a7d5be912f0604cf3c6f1bd5fc9644cf",
        mask_member="pyradiomics-3.0.1/data/brain1_label.nrrd",
        mask_sha256="ae6d8e6b84f7e99d68c210ee2fa6aaaefa0b2df0a84f55efca4feebe2b216059",
        what="axial T1-weighted post-gadolinium (TCGA-02-0003, pre-operative scan), 256x256x25, "
             "0.78x0.78 mm, 6.5 mm slices; glioblastoma; binary tumour label (FSL-clustered)",
        origin="pyradiomics git history: added as data/TCGA-02-0003_BrainMRI/AXIAL-T1-POST-GD_"
               "TCGA-02-0003_TCGA-02-0003_PREOP_SCAN13_Background.nrrd, renamed brain1_image.nrrd "
               "in Jan 2016. " + TCGA_GBM,
        licence=TCGA_LICENCE,
        slices="mask",
    ),
    dict(
        id="pyradiomics-brain2",
        cls="glioma",
        package="pyradiomics", version="3.0.1", registry="PyPI (sdist)",
        archive=("sdist", "wheels/pyradiomics-3.0.1.tar.gz"),
        member="pyradiomics-3.0.1/data/brain2_image.nrrd",
        sha256="d35a1c6a3e1eb72bae97c5515472fbe057fb38ee8e1e199215d1c3c6f292332e",
        mask_member="pyradiomics-3.0.1/data/brain2_label.nrrd",
        mask_sha256="15189c024936ecc337649b9a10c475117c7c40df0d53c22163f9a2023ed741a5",
        what="axial T1-weighted post-gadolinium (TCGA-02-0006, pre-operative scan), 256x256x23, "
             "0.78x0.78 mm, 6.5 mm slices; glioblastoma; the binary label marks only a small "
             "(<=139 mm^2 a slice) region in the left anterior temporal lobe, which is not "
             "conspicuous at this window: slice-level visibility of the tumour is uncertain, so "
             "consider scoring these slices apart from brain1's",
        origin="pyradiomics commit abcbc57 (Mar 2016) copied it from the radiomics_platform "
               "repository; its Matlab baseline features for brain2 equal those listed earlier for "
               "TCGA-02-0006_BrainMRI / AXIAL-T1-POST-GD_..._PREOP_SCAN6 (same repository), "
               "hence the subject id. " + TCGA_GBM,
        licence=TCGA_LICENCE,
        slices="mask",
    ),
    dict(
        id="itk-kmeanstest-t1",
        cls="notumor",
        package="insighttoolkit5-examples", version="5.2.1-5+deb12u1", registry="Debian 12",
        archive=("deb", "debs/insighttoolkit5-examples"),
        member="usr/share/doc/insighttoolkit5-examples/examples/Data/KmeansTest_T1UCharRaw.nii.gz",
        sha256="e0e5975587f3f7916804bdd317c493cdb99cdb3703bf2671d458528f62510327",
        what="T1-weighted head volume (no lesion visible to a non-radiologist), 128x128x62, 2x2 mm in the axial "
             "plane x 3 mm anterior-posterior (coronal acquisition), so axial slices have 2x3 mm "
             "pixels and are resampled to 2x2 mm",
        origin="ITK example data (Examples/Data), used by ITK's k-means classification example; "
               "the subject and scanner are not documented in the package",
        licence="Debian copyright of insighttoolkit5-examples: 'Files: *' Apache-2.0 (Insight "
                "Software Consortium / NumFOCUS); no separate data licence stated",
        slices=[(68, "level of the bodies of the lateral ventricles (chosen on the contact sheet)"),
                (61, "level of the third ventricle / basal ganglia (chosen on the contact sheet)"),
                (76, "supraventricular level, centrum semiovale (chosen on the contact sheet)")],
    ),
    dict(
        id="dipy-s0-10slices",
        cls="notumor",
        package="dipy", version="1.12.1", registry="PyPI (wheel)",
        archive=("wheel", "wheels/dipy-1.12.1-*.whl"),
        member="dipy/data/files/S0_10slices.nii.gz",
        sha256="b77985d533c8b0b2f4a7d276e6b0d8388df9966b5c9d67be7c1cbd4178285e14",
        what="b=0 (T2-weighted spin-echo EPI) image of a diffusion scan, 10 axial slices of "
             "128x128 at 2 mm from the basal ganglia to the lateral ventricles (the file's slice "
             "spacing, 32 mm, is not plausible for these neighbouring levels); scalp and skull are "
             "hardly visible; no visible lesion",
        origin="dipy test data; dipy's early scripts build S0 images from a 2010 MRC CBU "
               "(Cambridge) volunteer diffusion scan, which is probably its source (not documented "
               "next to the file)",
        licence="dipy: BSD-3-Clause ('all code is' under it unless stated otherwise; no separate "
                "data licence)",
        slices=[(9, "level of the bodies of the lateral ventricles (chosen on the contact sheet)"),
                (5, "level of the third ventricle / basal ganglia (chosen on the contact sheet)")],
    ),
    dict(
        id="nibabel-example4d",
        cls="notumor",
        package="nibabel", version="5.4.2", registry="PyPI (wheel)",
        archive=("wheel", "wheels/nibabel-5.4.2-py3-none-any.whl"),
        member="nibabel/tests/data/example4d.nii.gz",
        sha256="42097dfbab9d2a036b41ae5c97a359591cf2cf5c3f8dc6ca6455c0b8a7f22696",
        what="first volume of a BOLD fMRI run (T2*-weighted gradient-echo EPI), 128x96x24, "
             "2x2x2.2 mm; no visible lesion. EPI contrast is unlike the Kaggle images",
        origin="nibabel test data, written by FSL 3.3 (header); subject not documented",
        licence="nibabel: MIT (COPYING; no separate note for this file)",
        slices=[(17, "level of the bodies of the lateral ventricles (chosen on the contact sheet)"),
                (11, "level of the third ventricle / basal ganglia (chosen on the contact sheet)")],
    ),
]


# ---------------------------------------------------------------- reading archives

def read_member(cache, archive, member, sha256):
    import glob
    kind, pattern = archive
    hits = sorted(glob.glob(os.path.join(cache, pattern)))
    if not hits:
        sys.exit(f"[external] {os.path.join(cache, pattern)} is missing: run scripts/fetch-external")
    path = hits[0]
    if kind == "sdist":
        with tarfile.open(path) as t:
            data = t.extractfile(member).read()
    elif kind == "wheel":
        with zipfile.ZipFile(path) as z:
            data = z.read(member)
    else:
        with open(os.path.join(path, member), "rb") as f:
            data = f.read()
    got = hashlib.sha256(data).hexdigest()
    if got != sha256:
        sys.exit(f"[external] {member} in {path} has SHA-256 {got}, expected {sha256}")
    return data


# ---------------------------------------------------------------- NRRD (attached header)

NRRD_TYPES = {"short": "i2", "int16": "i2", "ushort": "u2", "uint16": "u2", "int": "i4",
              "int32": "i4", "uint": "u4", "uchar": "u1", "uint8": "u1", "signed char": "i1",
              "int8": "i1", "float": "f4", "double": "f8"}


def read_nrrd(data):
    """Returns (array indexed [i, j, k], 4x4 voxel-to-RAS matrix)."""
    end = data.index(b"\n\n")
    fields = {}
    for line in data[:end].decode("latin-1").splitlines()[1:]:
        if line.startswith("#") or ":" not in line:
            continue
        key, value = line.split(":", 1)
        fields[key.strip().lower()] = value.strip()
    sizes = [int(s) for s in fields["sizes"].split()]
    endian = "<" if fields.get("endian", "little") == "little" else ">"
    dtype = np.dtype(endian + NRRD_TYPES[fields["type"]])
    body = data[end + 2:]
    enc = fields.get("encoding", "raw")
    if enc in ("gzip", "gz"):
        body = gzip.decompress(body)
    elif enc != "raw":
        raise ValueError(f"NRRD encoding {enc} not supported")
    arr = np.frombuffer(body, dtype, count=int(np.prod(sizes))).reshape(sizes[::-1]).T
    dirs = [[float(x) for x in v.strip("()").split(",")]
            for v in fields["space directions"].replace(") (", ")|(").split("|")]
    origin = [float(x) for x in fields.get("space origin", "(0,0,0)").strip("()").split(",")]
    aff = np.eye(4)
    aff[:3, :3] = np.array(dirs).T
    aff[:3, 3] = origin
    space = fields.get("space", "right-anterior-superior")
    to_ras = {"left-posterior-superior": [-1, -1, 1], "right-anterior-superior": [1, 1, 1],
              "left-anterior-superior": [-1, 1, 1]}[space]
    return arr, np.diag(to_ras + [1]) @ aff


# ---------------------------------------------------------------- NIfTI-1 (single file)

NIFTI_TYPES = {2: "u1", 4: "i2", 8: "i4", 16: "f4", 64: "f8", 256: "i1", 512: "u2", 768: "u4"}


def quaternion_matrix(b, c, d):
    a = np.sqrt(max(0.0, 1.0 - (b * b + c * c + d * d)))
    return np.array([[a * a + b * b - c * c - d * d, 2 * (b * c - a * d), 2 * (b * d + a * c)],
                     [2 * (b * c + a * d), a * a + c * c - b * b - d * d, 2 * (c * d - a * b)],
                     [2 * (b * d - a * c), 2 * (c * d + a * b), a * a + d * d - c * c - b * b]])


def read_nifti(data):
    """Returns (3-D array [i, j, k] — the first volume of a 4-D file, 4x4 voxel-to-RAS)."""
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    endian = "<" if struct.unpack("<i", data[:4])[0] == 348 else ">"
    if struct.unpack(endian + "i", data[:4])[0] != 348 or data[344:347] != b"n+1":
        raise ValueError("not a single-file NIfTI-1 image")
    dim = struct.unpack(endian + "8h", data[40:56])
    datatype = struct.unpack(endian + "h", data[70:72])[0]
    pixdim = struct.unpack(endian + "8f", data[76:108])
    vox_offset = max(352, int(struct.unpack(endian + "f", data[108:112])[0]))
    slope, inter = struct.unpack(endian + "2f", data[112:120])
    qform_code, sform_code = struct.unpack(endian + "2h", data[252:256])
    quat = struct.unpack(endian + "6f", data[256:280])
    srows = np.array(struct.unpack(endian + "12f", data[280:328])).reshape(3, 4)
    shape = [max(1, d) for d in dim[1:4]]
    dtype = np.dtype(endian + NIFTI_TYPES[datatype])
    arr = np.frombuffer(data, dtype, count=int(np.prod(shape)), offset=vox_offset)
    arr = arr.reshape(shape[::-1]).T.astype(np.float64)
    if slope not in (0.0,) and np.isfinite(slope):
        arr = arr * slope + (inter if np.isfinite(inter) else 0.0)
    aff = np.eye(4)
    if sform_code > 0:
        aff[:3] = srows
    elif qform_code > 0:
        qfac = -1.0 if pixdim[0] < 0 else 1.0
        aff[:3, :3] = quaternion_matrix(*quat[:3]) @ np.diag([pixdim[1], pixdim[2], qfac * pixdim[3]])
        aff[:3, 3] = quat[3:]
    else:
        aff[:3, :3] = np.diag(pixdim[1:4])
    return arr, aff


# ---------------------------------------------------------------- orientation and slices

def to_lps_order(arr, aff):
    """Permutes/flips voxel axes so that i grows to patient Left, j to Posterior, k to Superior
    (each voxel axis goes to the world axis it is closest to). Returns (array, spacing)."""
    rot = aff[:3, :3]
    world_of_axis = np.argmax(np.abs(rot), axis=0)            # voxel axis -> world axis (RAS)
    if sorted(world_of_axis) != [0, 1, 2]:
        raise ValueError("voxel axes do not map to distinct world axes")
    spacing_of_axis = np.linalg.norm(rot, axis=0)
    order = [int(np.where(world_of_axis == w)[0][0]) for w in range(3)]
    arr = np.transpose(arr, order)
    spacing = [float(spacing_of_axis[a]) for a in order]
    want = [-1, -1, 1]                                         # L = -R, P = -A, S = +S
    for w, a in enumerate(order):
        if np.sign(rot[w, a]) != want[w]:
            arr = np.flip(arr, axis=w)
    return np.ascontiguousarray(arr), spacing


def resample_rows_cols(img, row_mm, col_mm):
    """Bilinear in-plane resampling to square pixels of min(row_mm, col_mm)."""
    target = min(row_mm, col_mm)
    out = img
    for axis, mm in ((0, row_mm), (1, col_mm)):
        n = out.shape[axis]
        m = int(round(n * mm / target))
        if m == n:
            continue
        pos = (np.arange(m) + 0.5) * (n / m) - 0.5
        lo = np.clip(np.floor(pos).astype(int), 0, n - 1)
        hi = np.clip(lo + 1, 0, n - 1)
        w = np.clip(pos - lo, 0.0, 1.0)
        a, b = np.take(out, lo, axis=axis), np.take(out, hi, axis=axis)
        shape = [1, 1]
        shape[axis] = m
        out = a * (1 - w.reshape(shape)) + b * w.reshape(shape)
    return out, target


def axial(vol, spacing, k):
    """Slice k of an L/P/S-ordered volume as a display image (rows anterior->posterior,
    columns patient right->left), in-plane resampled to square pixels."""
    img = vol[:, :, k].T.astype(np.float64)
    img, _ = resample_rows_cols(img, spacing[1], spacing[0])
    return img


def window_u8(img):
    lo, hi = np.percentile(img, [0.5, 99.5])
    if hi <= lo:
        hi = lo + 1.0
    return np.round(np.clip((img - lo) / (hi - lo), 0.0, 1.0) * 255.0).astype(np.uint8)


def pad_square(u8):
    h, w = u8.shape
    n = max(h, w)
    out = np.zeros((n, n), np.uint8)
    out[(n - h) // 2:(n - h) // 2 + h, (n - w) // 2:(n - w) // 2 + w] = u8
    return out


def write_png(path, u8):
    h, w = u8.shape
    raw = b"".join(b"\x00" + u8[r].tobytes() for r in range(h))

    def chunk(tag, body):
        return (struct.pack(">I", len(body)) + tag + body
                + struct.pack(">I", zlib.crc32(tag + body) & 0xFFFFFFFF))
    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(png)
    os.replace(tmp, path)


# ---------------------------------------------------------------- contact sheets

DIGITS = {  # 3x5 glyphs for slice numbers on the contact sheets
    "0": "111101101101111", "1": "010110010010111", "2": "111001111100111",
    "3": "111001111001111", "4": "101101111001001", "5": "111100111001111",
    "6": "111100111101111", "7": "111001001001001", "8": "111101111101111",
    "9": "111101111001111"}


def stamp(tile, text, scale=3):
    x = 2
    for ch in text:
        glyph = np.array([int(c) for c in DIGITS[ch]], np.uint8).reshape(5, 3)
        big = np.kron(glyph, np.ones((scale, scale), np.uint8)) * 255
        tile[2:2 + big.shape[0], x:x + big.shape[1]] = big
        x += 4 * scale


def contact_sheet(vol, spacing, mask=None, size=160, cols=8):
    tiles = []
    for k in range(vol.shape[2]):
        u8 = pad_square(window_u8(axial(vol, spacing, k)))
        idx = (np.arange(size) * u8.shape[0] / size).astype(int)
        tile = u8[np.ix_(idx, idx)].copy()
        if mask is not None and mask[:, :, k].any():
            tile[-6:, :] = 255                          # white bar: slice holds tumour label
        stamp(tile, str(k))
        tiles.append(tile)
    rows = (len(tiles) + cols - 1) // cols
    sheet = np.zeros((rows * size, cols * size), np.uint8)
    for n, t in enumerate(tiles):
        sheet[(n // cols) * size:(n // cols + 1) * size, (n % cols) * size:(n % cols + 1) * size] = t
    return sheet


# ---------------------------------------------------------------- main

def load(cache, src, member_key="member", sha_key="sha256"):
    data = read_member(cache, src["archive"], src[member_key], src[sha_key])
    reader = read_nrrd if src[member_key].endswith(".nrrd") else read_nifti
    arr, aff = reader(data)
    if arr.ndim == 4:
        arr = arr[..., 0]
    return to_lps_order(arr, aff)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cache", default=os.environ.get("MRISCREEN_CACHE", ".cache"))
    ap.add_argument("--sheets", action="store_true", help="also write contact sheets")
    args = ap.parse_args()
    out_root = os.path.join(args.cache, "external")
    for c in CLASSES:
        os.makedirs(os.path.join(out_root, c), exist_ok=True)
    rows = []
    for src in SOURCES:
        vol, spacing = load(args.cache, src)
        mask = None
        if src.get("mask_member"):
            mask, mspacing = load(args.cache, src, "mask_member", "mask_sha256")
            assert mask.shape == vol.shape and np.allclose(mspacing, spacing)
            mask = mask > 0
        if args.sheets:
            # Beside the set, not inside it: a dataset folder holds class folders only.
            sheets = out_root.rstrip("/") + "-sheets"
            os.makedirs(sheets, exist_ok=True)
            write_png(os.path.join(sheets, src["id"] + ".png"),
                      contact_sheet(vol, spacing, mask))
        picks = []
        if src["slices"] == "mask":
            area = mask.sum(axis=(0, 1))
            best = int(np.argmax(area))
            px_mm2 = spacing[0] * spacing[1]
            for k, why in ((best, "largest tumour-label area"),
                           (best - 1, "1 slice (%.1f mm) below the largest-area slice" % spacing[2]),
                           (best + 1, "1 slice (%.1f mm) above the largest-area slice" % spacing[2])):
                if 0 <= k < vol.shape[2] and area[k] > 0:
                    picks.append((k, "%s; label area %d px = %.0f mm^2"
                                  % (why, area[k], area[k] * px_mm2)))
        else:
            picks = src["slices"]
        for k, why in picks:
            name = f"{src['id']}-z{k:02d}"
            img = pad_square(window_u8(axial(vol, spacing, k)))
            write_png(os.path.join(out_root, src["cls"], name + ".png"), img)
            rows.append((src, name, k, why, img.shape))
            print(f"[external] {src['cls']}/{name}.png  {img.shape[1]}x{img.shape[0]}  ({why})")
    made = {os.path.join(src["cls"], name + ".png") for src, name, _, _, _ in rows}
    for c in CLASSES:                       # drop slices an earlier run chose and this one did not
        for f in os.listdir(os.path.join(out_root, c)):
            if f.endswith(".png") and os.path.join(c, f) not in made:
                os.remove(os.path.join(out_root, c, f))
    write_readme(out_root, rows)


def write_readme(out_root, rows):
    lines = [
        "# External brain MRI test slices",
        "",
        "Made by `scripts/fetch-external` and `scripts/external_slices.py` from volumes shipped in",
        "package-registry packages (PyPI, Debian), independent of the Kaggle brain-tumour data sets",
        "(Nickparvar, figshare Cheng et al., SARTAJ, Br35H). Not to be committed.",
        "",
        "Every image: one axial slice, anterior at the top, patient's left on the image's right",
        "(radiological, like most Kaggle images), in-plane resampled to square pixels, windowed to",
        "the slice's 0.5-99.5 percentile range, 8-bit grey, zero-padded to a centred square.",
        "Slice index k counts from inferior to superior after reordering the volume's axes to",
        "Left/Posterior/Superior (see the helper's docstring).",
        "",
        "| file | class | source (registry, package, version, member) | slice k | why | size |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for src, name, k, why, shape in rows:
        lines.append(f"| {src['cls']}/{name}.png | {src['cls']} | {src['registry']} "
                     f"`{src['package']}` {src['version']}, `{src['member']}` | {k} | {why} | "
                     f"{shape[1]}x{shape[0]} |")
    lines += ["", "## Sources", ""]
    for src in SOURCES:
        lines += [f"### {src['id']} ({src['cls']})", "",
                  f"- package: {src['registry']} `{src['package']}` {src['version']}",
                  f"- member: `{src['member']}` (SHA-256 {src['sha256']})"]
        if src.get("mask_member"):
            lines.append(f"- tumour label: `{src['mask_member']}` (SHA-256 {src['mask_sha256']})")
        lines += [f"- what: {src['what']}", f"- origin: {src['origin']}",
                  f"- licence: {src['licence']}", ""]
    lines += [
        "## Caveats",
        "",
        "- Only two tumour subjects (both glioblastoma, T1 post-contrast, TCGA-GBM); no meningioma",
        "  or pituitary volume was found in any registry package. TCGA-GBM pre-operative scans are",
        "  also part of the BraTS challenge data; whether any Kaggle set (e.g. SARTAJ, whose origin",
        "  is undocumented) drew from them cannot be ruled out here.",
        "- The notumor slices come from up to three subjects (the dipy and nibabel files may",
        "  share a source; neither documents its subject) with different contrasts (T1, DWI b=0,",
        "  BOLD EPI); the EPI ones are out of the Kaggle distribution and mainly test robustness.",
        "  'No visible lesion' is a non-radiologist's look at the slices, not a diagnosis.",
        "- Not used: Colin27 `ch2` volumes (Debian mricron-data), the MNI152 templates (nilearn),",
        "  and ITK's BrainWeb slices (BrainT1Slice.png, BrainProtonDensitySlice*.png,",
        "  itkBrainSliceComplex*.mha: simulated from the Colin27-based phantom): the project's",
        "  synthetic training data are built from Colin27/MNI152.",
        "",
    ]
    tmp = os.path.join(out_root, "README.md.tmp")
    with open(tmp, "w") as f:
        f.write("\n".join(lines))
    os.replace(tmp, os.path.join(out_root, "README.md"))


if __name__ == "__main__":
    main()
