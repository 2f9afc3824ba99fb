#!/usr/bin/env python3
"""Writes TensorBoard event files from runs' metrics.jsonl, so that training and eval curves can
be watched where researchers watch them:

    scripts/tensorboard_events.py runs/pretrain runs/unified runs/eval --out runs/tensorboard
    .venv/bin/tensorboard --logdir runs/tensorboard

Each run becomes OUT/<run name>/. A line with a "step" (pretraining, the GRPO stages) gives one
scalar per number in it at that step, nested objects joined by "/" (reward_t2i/mean); its
"time" (seconds the run has run, resumes included) is the event's wall time, so TensorBoard's relative axis
reads as the run's own clock. A step logged twice (a resumed run) counts once, the last time. A
line of `corl eval` ({"checkpoint", "suite", "figures"}) gives eval/<suite>/<figure> scalars,
one step per checkpoint in the order evaluated, and the checkpoint names as text. Writing goes
through torch.utils.tensorboard (PyTorch's SummaryWriter; the tensorboard package).
"""
import argparse
import json
import math
import os
import sys

from torch.utils.tensorboard import SummaryWriter


def scalars(value, prefix=""):
    """(tag, number) for every finite number in a JSON value; lists and strings are skipped."""
    if isinstance(value, bool):
        return
    if isinstance(value, (int, float)):
        if math.isfinite(value):
            yield prefix, float(value)
    elif isinstance(value, dict):
        for key, inner in value.items():
            yield from scalars(inner, f"{prefix}/{key}" if prefix else str(key))


def read_rows(path):
    rows = []
    with open(path) as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                # A run killed mid-write leaves a cut last line; corl's resume drops it too.
                print(f"{path}:{number}: not JSON, skipped", file=sys.stderr)
    return rows


def convert(run, out):
    """Writes the events of one run folder (or metrics.jsonl) into `out`; returns scalars written."""
    path = run if run.endswith(".jsonl") else os.path.join(run, "metrics.jsonl")
    if not os.path.isfile(path):
        raise SystemExit(f"{path}: no metrics.jsonl")
    rows = read_rows(path)
    steps = {}
    evals = []
    for row in rows:
        if isinstance(row.get("step"), int):
            steps[row["step"]] = row
        elif "suite" in row and "figures" in row:
            evals.append(row)
    # Converting again replaces the run's events rather than adding a second copy of them.
    if os.path.isdir(out):
        for old in os.listdir(out):
            if old.startswith("events.out.tfevents."):
                os.remove(os.path.join(out, old))
    written = 0
    with SummaryWriter(log_dir=out) as writer:
        for step in sorted(steps):
            row = steps[step]
            wall = row.get("time")
            for tag, value in scalars({k: v for k, v in row.items() if k != "step"}):
                writer.add_scalar(tag, value, step, walltime=wall)
                written += 1
        checkpoints = []
        for row in evals:
            if row.get("checkpoint") not in checkpoints:
                checkpoints.append(row.get("checkpoint"))
            step = checkpoints.index(row.get("checkpoint"))
            figures = {k: v for k, v in row["figures"].items() if k != "items"}
            for tag, value in scalars(figures, f"eval/{row['suite']}"):
                writer.add_scalar(tag, value, step)
                written += 1
        if checkpoints:
            writer.add_text("eval/checkpoints",
                            "\n".join(f"{i}: {name}" for i, name in enumerate(checkpoints)))
    return written


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="run folders (or their metrics.jsonl)")
    parser.add_argument("--out", default="runs/tensorboard", help="TensorBoard's --logdir")
    args = parser.parse_args()
    for run in args.runs:
        name = os.path.basename(os.path.normpath(os.path.dirname(run) if run.endswith(".jsonl")
                                                 else run))
        target = os.path.join(args.out, name)
        print(f"{run}: {convert(run, target)} scalars -> {target}")


if __name__ == "__main__":
    main()
