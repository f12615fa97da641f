"""Ships the compressed variants of a model: cards, files and manifest entries.

    python3 scripts/publish-variants.py --compare bench/compression/nickparvar/compare.json \\
        --work .cache/compress/nickparvar --parent models/nickparvar-mobilenet-v2-1.0.onnx

Reads `mriscreen compare`'s report (every variant against the fp32 parent on
the test split, with validation accuracy) and, per variant, the calibration
report and quantization report beside it in WORK/<name>/ (and external.json,
`mriscreen evaluate --external`, when present). Per precision it ships the
variant with the higher validation accuracy (a PTQ/QAT tie goes to PTQ, the
simpler method); the test split plays no part. The manifest's default becomes
the model `compare` chose by its rule (the smallest file whose validation
accuracy is within 1 point of the parent's). Other entries stay.
"""
import argparse
import hashlib
import json
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from publishing import ci, external_test, p_value, pct, per_class_table, refer_rule, vs_parent_entry  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--compare", required=True)
ap.add_argument("--work", required=True)
ap.add_argument("--parent", required=True)
args = ap.parse_args()
root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
models_dir = os.path.join(root, "models")

with open(args.compare) as f:
    cmp = json.load(f)
with open(os.path.join(models_dir, "manifest.json")) as f:
    manifest = json.load(f)
parent_file = os.path.basename(args.parent)
parent_entry = next(m for m in manifest["models"] if m["file"] == parent_file)
parent = cmp["models"][0]
if parent["sha256"] != parent_entry["sha256"]:
    raise SystemExit(f"{args.compare} compared another file than models/{parent_file} (sha256 differs)")


def load(path):
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)





def method_of(m):
    return (m.get("quantization") or {}).get("method", "ptq")


# Per precision, the variant with the better validation accuracy.
chosen = {}
for m in cmp["models"][1:]:
    best = chosen.get(m["precision"])
    key = (m["val_accuracy"], method_of(m) == "ptq")
    if best is None or key > (best["val_accuracy"], method_of(best) == "ptq"):
        chosen[m["precision"]] = m
shipped_names = {m["name"] for m in chosen.values()}
rule_choice = cmp.get("chosen")
if rule_choice and rule_choice != parent["name"] and rule_choice not in shipped_names:
    raise SystemExit(f"compare chose {rule_choice}, which is not the better variant of its precision on validation")

describe = {
    "fp16": "float16, weights and biases (`Cast` to float32 when loaded)",
    "int8": "int8, symmetric, one float16 scale per output channel (`DequantizeLinear`), with float16 biases",
    "int4": "int4, symmetric, one float16 scale per block of 32 input channels (per output channel where a "
            "layer has fewer input channels, e.g. depthwise), packed two per byte (opset-21 `DequantizeLinear` with "
            "`block_size`), with float16 biases",
}
how = {
    "ptq": "post-training quantization (`mriscreen quantize`): BatchNorm already folded by the export, per group the "
           "clipping value that minimises the squared weight error",
    "qat": "quantization-aware training (`mriscreen train --qat`): every layer fine-tuned with BatchNorm frozen and "
           "folded and the weights fake-quantized exactly as the file stores them (straight-through gradients), starting "
           "from the fp32 model",
}
entries = []
for precision in ("fp16", "int8", "int4"):
    m = chosen.get(precision)
    if not m:
        continue
    method = method_of(m)
    folder = os.path.join(args.work, m["name"])
    cal = load(os.path.join(folder, "calibration.json"))
    qrep = load(os.path.join(folder, "model.quantize.json"))
    ext = load(os.path.join(folder, "external.json"))
    model_id = f"{parent_entry['id']}-{precision}"
    onnx, card = f"{model_id}.onnx", f"{model_id}.md"
    shutil.copyfile(m["file"], os.path.join(models_dir, onnx))
    data = open(os.path.join(models_dir, onnx), "rb").read()
    if hashlib.sha256(data).hexdigest() != m["sha256"]:
        raise SystemExit(f"{m['file']} changed since the comparison")
    v, t = m["vs_parent"], m["test"]
    d = t.get("deduplicated")
    others = [o for o in cmp["models"][1:] if o["precision"] == precision and o["name"] != m["name"]]
    text = f"# Model card: {parent_entry['arch']} ({precision}, {method.upper()}), variant of `{parent_file}`\n\n"
    text += "**Research software, not a diagnostic device. Results must not be used for clinical decisions.**\n\n"
    text += (f"- **What it is:** the fp32 model `{parent_file}` (sha256 `{parent['sha256']}`) with its weights stored as "
             f"{describe[precision]}; made by {how[method]}.\n")
    text += f"- **Trained on:** {parent_entry['trained_on']} (the parent's data; the card of `{parent_entry['card']}` describes it, its split and leakage).\n"
    text += (f"- **File:** {len(data)} bytes ({pct(m['bytes_ratio'])} of the parent's {parent['bytes']}), "
             f"{m['gzip_bytes']} bytes gzip -9.\n")
    text += (f"- **Test accuracy:** {pct(t['accuracy'])} (95 % Wilson CI {ci(t['accuracy_ci95'])}, n = {t['n']}), "
             f"macro-F1 {t['macro_f1']:.3f}; the parent: {pct(parent['test']['accuracy'])} ({ci(parent['test']['accuracy_ci95'])}).\n")
    if d:
        text += f"- **Deduplicated test subset:** {pct(d['accuracy'])} ({ci(d['accuracy_ci95'])}, n = {d['n']}).\n"
    text += (f"- **Against the parent** (same {t['n']} test images): top-1 agreement {pct(v['agreement'])}; exact McNemar "
             f"p = {p_value(v['test']['mcnemar']['p'])} ({v['test']['mcnemar']['only_reference_right']} images only the parent "
             f"got right, {v['test']['mcnemar']['only_model_right']} only this one); accuracy difference "
             f"{100 * v['test']['accuracy_difference']:+.1f} points (paired bootstrap 95 % CI "
             f"{100 * v['test']['ci95'][0]:+.1f} to {100 * v['test']['ci95'][1]:+.1f}, {v['test']['resamples']} resamples); "
             f"largest change of any probability {v['max_abs_probability_change']:.3f} (temperature 1).\n")
    text += (f"- **Validation accuracy** (n = {m['val_n']}, where variants are chosen): {pct(m['val_accuracy'])}; the parent "
             f"{pct(parent['val_accuracy'])}.\n")
    text += (f"- **Tract CPU latency** (native, this 2-core machine, median of {m['latency_runs']}): {m['latency_ms_median']:.1f} ms; "
             f"the parent {parent['latency_ms_median']:.1f} ms in the same run. The weights are expanded to float32 when the "
             "file is read, so a smaller file does not compute faster.\n\n")
    if others:
        text += "## Why this variant\n\nPer precision the variant with the higher validation accuracy ships:\n\n| variant | method | validation accuracy | test accuracy (95 % CI) |\n|---|---|---|---|\n"
        for o in [m] + others:
            text += f"| {o['name']} | {method_of(o).upper()} | {pct(o['val_accuracy'])} | {pct(o['test']['accuracy'])} ({ci(o['test']['accuracy_ci95'])}) |\n"
        text += "\n"
    if cal:
        text += cal["card_section"]
    text += per_class_table(t)
    if qrep:
        sq = sorted(l["sqnr_db"] for l in qrep["layers"])
        text += (f"\n## Quantization\n\n{len(qrep['layers'])} weight tensors ({qrep['range_setting']}); weight SQNR "
                 f"{sq[0]:.1f} dB at the worst layer, {sq[len(sq) // 2]:.1f} dB median. ")
        if qrep.get("bias_correction_images"):
            text += f"Biases corrected for the mean shift the quantized weights cause on {qrep['bias_correction_images']} training images. "
        if qrep.get("left_in_fp32"):
            text += f"Left in fp32: {', '.join(qrep['left_in_fp32'])}. "
        text += f"Every layer's storage and SQNR: `bench/compression/{os.path.basename(os.path.dirname(args.compare))}/quantize/{m['name']}.json`.\n"
    if ext and ext.get("binary"):
        b = ext["binary"]
        text += (f"\n## External test\n\nOn the parent's 12 external slices (see its card): sensitivity {pct(b['sensitivity'])} "
                 f"({ci(b['sensitivity_ci95'])}, {b['true_positives']} of {b['positives']}), specificity "
                 f"{pct(b['specificity'])} ({ci(b['specificity_ci95'])}, {b['true_negatives']} of {b['negatives']}).\n")
    text += ("\n## Limits\n\nEverything the parent's card says about its data applies. The comparison is on one test set "
             "of the parent's source; a compressed model's errors need not be the parent's errors elsewhere. Its temperature, "
             "refer threshold and familiarity statistics are its own, fitted on the validation split, so an input near those "
             "limits can be referred by one model and not by the other.\n")
    with open(os.path.join(models_dir, card), "w") as f:
        f.write(text)
    entry = {k: parent_entry[k] for k in ("arch", "input_size", "classes", "preprocessing", "trained_on", "untrained")}
    entry.update({
        "id": model_id,
        "name": f"{parent_entry['name']}, {precision} ({method.upper()})",
        "file": onnx,
        "sha256": m["sha256"],
        "bytes": len(data),
        "gzip_bytes": m["gzip_bytes"],
        "precision": precision,
        "quantization": m.get("quantization"),
        "parent": parent_entry["id"],
        "parent_sha256": parent["sha256"],
        "test_accuracy": t["accuracy"],
        "test_accuracy_ci95": t["accuracy_ci95"],
        "test_set_size": t["n"],
        "macro_f1": t["macro_f1"],
        "validation_accuracy": m["val_accuracy"],
        "vs_parent": vs_parent_entry(m),
        "card": card,
    })
    if d:
        entry.update({"dedup_test_accuracy": d["accuracy"], "dedup_test_accuracy_ci95": d["accuracy_ci95"], "dedup_test_set_size": d["n"]})
    if external_test(ext):
        entry["external_test"] = external_test(ext)
    if cal:
        entry["refer_rule"] = refer_rule(cal)
    entries.append((m["name"], entry))
    print(f"models/{onnx}: {precision} {method}, {len(data)} bytes, test {pct(t['accuracy'])} (n = {t['n']}), "
          f"McNemar p = {p_value(v['test']['mcnemar']['p'])}, agreement {pct(v['agreement'])}")

ids = {e["id"] for _, e in entries}
kept = [m for m in manifest["models"] if m["id"] not in ids]
at = next(i for i, m in enumerate(kept) if m["id"] == parent_entry["id"]) + 1
manifest["models"] = kept[:at] + [e for _, e in entries] + kept[at:]
default = next((e["id"] for name, e in entries if name == rule_choice), parent_entry["id"])
manifest["default"] = default
with open(os.path.join(models_dir, "manifest.json"), "w") as f:
    json.dump({"version": manifest.get("version", 1), "default": default, "models": manifest["models"]}, f, indent=2)
    f.write("\n")
print(f"manifest default = {default} ({cmp['choice_rule']})")
