#!/usr/bin/env python3
"""Packs a finished `scripts/base.sh` run into a release folder (models/shapeworld-base): the
base's weights and tokenizers, the resolved recipes that made them, its learning curve and
held-out figures, SHA256SUMS over every file, and a model card (README.md) saying how it was
made, on which machine, in how long, and what it scores.

  scripts/release_base.py runs/base models/shapeworld-base

`sha256sum -c SHA256SUMS` inside the folder checks a copy.
"""
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys

FILES = {  # release name -> path in the run folder
    "model.safetensors": "pretrain/final/model.safetensors",
    "text.model": "pretrain/final/text.model",
    "vq.safetensors": "pretrain/final/vq.safetensors",
    "trainer.json": "pretrain/final/trainer.json",
    "world.yaml": "data/recipe.yaml",
    "tokenizers.yaml": "tokenizer/recipe.yaml",
    "base.yaml": "pretrain/recipe.yaml",
}


def cpu_model():
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    return platform.processor() or "unknown CPU"


def seconds(metrics_path):
    """Wall time of a run from its metrics' "time" (seconds the run has run; a resumed run's
    clock goes on from its checkpoint's line). Where "time" falls back, as in files whose resumed
    runs started their clock again from 0, the segments are added up."""
    total, last = 0.0, 0.0
    with open(metrics_path) as f:
        for row in map(json.loads, f):
            t = row.get("time")
            if t is None:
                continue
            if t < last:
                total += last
            last = t
    return total + last


def tokenizers(run):
    """How the run came by its tokenizers: trained (and in how long), or copied from a release
    (scripts/base.sh with BASE_TOKENIZER)."""
    metrics = os.path.join(run, "tokenizer/metrics.jsonl")
    if os.path.exists(metrics):
        return f"tokenizers {seconds(metrics) / 60:.1f} min."
    return "tokenizers not retrained: those of the release named in BASE_TOKENIZER."


def figures(entry):
    g, m, o = entry["geneval"], entry["mcq"], entry["oe"]
    return g, m, o


def card(run, results, curve):
    base = next(iter(results.values()))
    g, m, o = figures(base)
    categories = [c for c in g["se"] if c != "overall"]
    lines = [
        "# ShapeWorld base",
        "",
        "The base unified model that corl's embedded default starts CoRL from: a Janus-shaped "
        "model (LLaMA decoder, SigLIP-style encoder, LlamaGen VQ) pretrained on ShapeWorld by "
        "`scripts/base.sh` (configs/base.yaml).",
        "",
        "## How it was made",
        "",
        f"- Machine: {cpu_model()}, {os.cpu_count()} cores (LibTorch threads as in base.yaml).",
        f"- Pretraining: {seconds(os.path.join(run, 'pretrain/metrics.jsonl')) / 3600:.2f} h; "
        + tokenizers(run),
        "- Reproduce: `scripts/base.sh`; the recipes it resolved (with the run's own paths) are "
        "world.yaml, tokenizers.yaml and base.yaml here. The time above is wall time, including "
        "any time the machine spent on other work beside the run.",
        "",
        "## What it scores (default held-out suites, configs/eval.yaml)",
        "",
        "| suite | figure | s.e. |",
        "|---|---|---|",
        f"| GenEval-style overall | {g['overall']:.3f} | {g['se']['overall']:.3f} |",
    ]
    lines += [f"| GenEval {c} | {g[c]:.3f} | {g['se'][c]:.3f} |" for c in categories]
    lines += [f"| MCQ | {m['accuracy']:.3f} | {m['se']['accuracy']:.3f} |",
              f"| OE | {o['accuracy']:.3f} | {o['se']['accuracy']:.3f} |"]
    for suite, s in (("MCQ", m), ("OE", o)):
        lines += [f"| {suite} {k} | {v['accuracy']:.3f} | {v['se']:.3f} |"
                  for k, v in sorted(s.get("by_type", {}).items())]
    lines += ["", "## Learning curve (smaller suites: 480 images, 600 MC, 1,200 OE)", "",
              "| checkpoint | GenEval | MCQ | OE |", "|---|---|---|---|"]
    def step(name):  # "pretrain@step-00002000" -> 2000; the final base last
        return int(name.rsplit("step-", 1)[1]) if "@step-" in name else float("inf")

    for name, entry in sorted(curve.items(), key=lambda item: step(item[0])):
        cg, cm, co = figures(entry)
        lines.append(f"| {name} | {cg['overall']:.3f} | {cm['accuracy']:.3f} | "
                     f"{co['accuracy']:.3f} |")
    return "\n".join(lines) + "\n"


def main(run, out):
    os.makedirs(out, exist_ok=True)
    for name, source in FILES.items():
        shutil.copyfile(os.path.join(run, source), os.path.join(out, name))
    results = json.load(open(os.path.join(run, "eval/results.json")))
    curve = json.load(open(os.path.join(run, "curve/results.json")))
    with open(os.path.join(out, "README.md"), "w") as f:
        f.write(card(run, results, curve))
    sums = []
    for name in sorted(os.listdir(out)):
        if name == "SHA256SUMS":
            continue
        with open(os.path.join(out, name), "rb") as f:
            sums.append(f"{hashlib.sha256(f.read()).hexdigest()}  {name}\n")
    with open(os.path.join(out, "SHA256SUMS"), "w") as f:
        f.writelines(sums)
    print(f"release_base: {out} ({len(sums)} files, SHA256SUMS beside them)")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(*sys.argv[1:])
