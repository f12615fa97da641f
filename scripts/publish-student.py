"""Ships the int8 distilled DenseNet-32 student of a `mriscreen reproduce` run: file, card and manifest entry.

    python3 scripts/publish-student.py --run runs/paper --id nickparvar-densenet32-kd-int8

Reads the run's comparisons: the int8 student against its fp32 student
(compare/student-int8-vs-fp32/), against the student trained without a
teacher (compare/students-vs-no-kd/) and against MobileNetV2 fp32
(compare/vs-mobilenet-fp32/). Of the two int8 students (PTQ and QAT) the one
with the higher validation accuracy ships (a tie goes to PTQ, the simpler
method); the test split plays no part. The manifest's default is left as it
is: the page marks the smallest trained model in its picker itself.
"""
import argparse
import hashlib
import json
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from publishing import ci, external_test, p_value, pct, per_class_table, refer_rule, vs_parent_entry  # noqa: E402

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("--run", required=True, help="the reproduce --out folder")
ap.add_argument("--id", required=True, help="the manifest id (and file stem) to ship it as")
ap.add_argument("--report", default="bench/reproduce/nickparvar", help="where the run's report is committed (named in the card)")
args = ap.parse_args()
root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
models_dir = os.path.join(root, "models")


def load(*parts):
    path = os.path.join(args.run, *parts)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def row(group, name):
    c = load("compare", group, "compare.json")
    if c is None:
        raise SystemExit(f"{args.run}/compare/{group}/compare.json is missing: has the reproduction finished?")
    return c, next(m for m in c["models"] if m["name"] == name)


settings = load("reproduce.json")
if settings is None:
    raise SystemExit(f"{args.run} is not a reproduction (no reproduce.json)")
own, _ = row("student-int8-vs-fp32", "dn32-kd-dn101")
candidates = own["models"][1:]
chosen = max(candidates, key=lambda m: (m["val_accuracy"], m["name"].endswith("-ptq")))
name = chosen["name"]
method = "qat" if name.endswith("-qat") else "ptq"
fp32 = own["models"][0]
_, vs_mnv2 = row("vs-mobilenet-fp32", name)
mnv2_cmp, mnv2 = row("vs-mobilenet-fp32", "mnv2-fp32-seed0")
_, vs_nokd = row("students-vs-no-kd", name)
_, nokd = row("students-vs-no-kd", "dn32-no-kd")
folder = ("runs", name) if method == "qat" else ("work", name)
cal = load(*folder, "calibration.json")
qrep = load(*folder, "model.quantize.json" if method == "qat" else "uncalibrated.quantize.json")
ext = load("external", f"{name}.json")

with open(os.path.join(models_dir, "manifest.json")) as f:
    manifest = json.load(f)
reference = next(m for m in manifest["models"] if m["id"] == manifest["default"])
onnx, card = f"{args.id}.onnx", f"{args.id}.md"
source = os.path.join(args.run, "models", f"{name}.onnx")
data = open(source, "rb").read()
if hashlib.sha256(data).hexdigest() != chosen["sha256"]:
    raise SystemExit(f"{source} changed since the comparison")
shutil.copyfile(source, os.path.join(models_dir, onnx))
t = chosen["test"]
d = t.get("deduplicated")


def against(m, who):
    v = m["vs_parent"]["test"]
    return (f"{100 * v['accuracy_difference']:+.1f} points (paired bootstrap 95 % CI {100 * v['ci95'][0]:+.1f} to "
            f"{100 * v['ci95'][1]:+.1f}); exact McNemar p = {p_value(v['mcnemar']['p'])} ({v['mcnemar']['only_reference_right']} "
            f"images only {who} got right, {v['mcnemar']['only_model_right']} only this one)")


how = {
    "ptq": "post-training quantization (`mriscreen quantize --to int8`: one float16 scale per output channel, the clipping "
           "value that minimises the squared weight error, bias correction on 64 training images)",
    "qat": "quantization-aware training (`mriscreen train --qat int8`: every layer fine-tuned with the weights "
           "fake-quantized exactly as the file stores them) from the fp32 student",
}
text = f"# Model card: DenseNet-32 student, distilled from DenseNet-101, int8 ({method.upper()})\n\n"
text += "**Research software, not a diagnostic device. Results must not be used for clinical decisions.**\n\n"
text += (f"- **What it is:** the paper's compression pipeline end to end: a DenseNet-101 teacher trained from scratch, "
         f"a DenseNet-32 student (351,264 parameters) distilled from it (`mriscreen distill`, α 0.7, τ 4, the teacher on the same "
         f"augmented image every step), then stored in int8 by {how[method]}. Made by `mriscreen reproduce` "
         f"(`{args.report}/report.md`: every step's command).\n")
subset = (f", at most {settings['max_per_class']} training images per class (the reproduction's `--max-per-class`)"
          if settings.get("max_per_class") else "")
text += (f"- **Trained on:** {reference['trained_on']}, at {settings['size']}×{settings['size']} px{subset}; the split, its "
         "leakage report and every other model of the run are in the report.\n")
text += (f"- **File:** {len(data)} bytes, {chosen['gzip_bytes']} gzip -9 ({pct(chosen['bytes_ratio'])} of the fp32 student's "
         f"{fp32['bytes']}; MobileNetV2 fp32 is {mnv2['bytes']}).\n")
text += (f"- **Test accuracy:** {pct(t['accuracy'])} (95 % Wilson CI {ci(t['accuracy_ci95'])}, n = {t['n']}), macro-F1 "
         f"{t['macro_f1']:.3f}.\n")
if d:
    text += f"- **Deduplicated test subset:** {pct(d['accuracy'])} ({ci(d['accuracy_ci95'])}, n = {d['n']}).\n"
text += f"- **Against MobileNetV2 fp32** ({pct(mnv2['test']['accuracy'])}, the same {t['n']} images): {against(vs_mnv2, 'MobileNetV2')}.\n"
text += f"- **Against the same student trained without a teacher** ({pct(nokd['test']['accuracy'])}): {against(vs_nokd, 'that student')}.\n"
text += f"- **Against its fp32 student** ({pct(fp32['test']['accuracy'])}): {against(chosen, 'the fp32 student')}.\n"
text += (f"- **Validation accuracy** (n = {chosen['val_n']}, where the int8 method was chosen): {pct(chosen['val_accuracy'])}; "
         + ", ".join(f"{m['name']} {pct(m['val_accuracy'])}" for m in candidates) + ".\n")
text += (f"- **Tract CPU latency** (native, median of {chosen['latency_runs']}, in the comparison's run): "
         f"{chosen['latency_ms_median']:.1f} ms; MobileNetV2 fp32 {mnv2['latency_ms_median']:.1f} ms (at its own input size).\n\n")
if cal:
    text += cal["card_section"]
text += per_class_table(t)
if qrep and qrep.get("layers"):
    sq = sorted(l["sqnr_db"] for l in qrep["layers"])
    text += (f"\n## Quantization\n\n{len(qrep['layers'])} weight tensors; weight SQNR {sq[0]:.1f} dB at the worst layer, "
             f"{sq[len(sq) // 2]:.1f} dB median. DenseNet's pre-activation BatchNorms (after each concatenation) cannot fold into a "
             "convolution and stay float32.\n")
if ext and ext.get("binary"):
    b = ext["binary"]
    text += (f"\n## External test\n\nOn the 12 external slices (`scripts/fetch-external`): sensitivity {pct(b['sensitivity'])} "
             f"({ci(b['sensitivity_ci95'])}, {b['true_positives']} of {b['positives']}), specificity {pct(b['specificity'])} "
             f"({ci(b['specificity_ci95'])}, {b['true_negatives']} of {b['negatives']}).\n")
text += ("\n## Limits\n\nMeasured on held-out images of the same source it was trained on; accuracy on other scanners, sequences, "
         "populations or real patients is unknown. It trained at a lower resolution and for fewer epochs than the default model "
         f"(the reproduction is sized to fit about four hours on two cores){' and on a subset of the training images' if subset else ''}; it is offered as the smallest download, not as the "
         "most accurate model.\n")
with open(os.path.join(models_dir, card), "w") as f:
    f.write(text)

entry = {
    "arch": "densenet32",
    "input_size": settings["size"],
    "classes": reference["classes"],
    "preprocessing": reference["preprocessing"],
    "trained_on": reference["trained_on"],
    "untrained": False,
    "id": args.id,
    "name": f"DenseNet-32 student distilled from DenseNet-101 on real MRI (Nickparvar), int8 ({method.upper()})",
    "file": onnx,
    "sha256": chosen["sha256"],
    "bytes": len(data),
    "gzip_bytes": chosen["gzip_bytes"],
    "precision": "int8",
    "quantization": chosen.get("quantization"),
    "parent": "the fp32 DenseNet-32 student (not shipped; in the reproduction's report)",
    "parent_sha256": fp32["sha256"],
    "test_accuracy": t["accuracy"],
    "test_accuracy_ci95": t["accuracy_ci95"],
    "test_set_size": t["n"],
    "macro_f1": t["macro_f1"],
    "validation_accuracy": chosen["val_accuracy"],
    "vs_parent": vs_parent_entry(chosen),
    "card": card,
}
if d:
    entry.update({"dedup_test_accuracy": d["accuracy"], "dedup_test_accuracy_ci95": d["accuracy_ci95"], "dedup_test_set_size": d["n"]})
if external_test(ext):
    entry["external_test"] = external_test(ext)
if cal:
    entry["refer_rule"] = refer_rule(cal)
manifest["models"] = [m for m in manifest["models"] if m["id"] != args.id] + [entry]
with open(os.path.join(models_dir, "manifest.json"), "w") as f:
    json.dump({"version": manifest.get("version", 1), "default": manifest["default"], "models": manifest["models"]}, f, indent=2)
    f.write("\n")
print(f"models/{onnx}: {name}, {len(data)} bytes, test {pct(t['accuracy'])} ({ci(t['accuracy_ci95'])}, n = {t['n']}); "
      f"vs MobileNetV2 fp32 p = {p_value(vs_mnv2['vs_parent']['test']['mcnemar']['p'])}, "
      f"vs no-KD p = {p_value(vs_nokd['vs_parent']['test']['mcnemar']['p'])}")
