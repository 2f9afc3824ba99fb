#!/usr/bin/env python3
"""Start and end of a training run's reward curves: the mean of each reward over the first and the
last WINDOW steps of RUN/metrics.jsonl, with the change and its standard error.

    scripts/run_summary.py runs/unified [--window 20] [--against runs/control]

With --against, also the paired difference from another run of the same seed, step by step: a
step's rows and rollout seeds follow from (seed, step) alone, so a run at learning rate ~0 is a
control that shares every prompt and question, and the paired difference removes their noise.
"""
import argparse
import json
import math


def read(run):
    steps, final = {}, None
    with open(f"{run}/metrics.jsonl") as f:
        for line in f:
            row = json.loads(line)
            if "geneval" in row:
                final = row
            elif "step" in row:
                steps[row["step"]] = row  # a resumed run logs a step again: the last one counts
    return steps, final


def paired(steps, other, keys, thirds=3):
    shared = sorted(set(steps) & set(other))
    print(f"paired with the control, {len(shared)} shared steps, in {thirds} parts: mean difference ± s.e.")
    for key in keys:
        parts = []
        for k in range(thirds):
            part = shared[k * len(shared) // thirds:(k + 1) * len(shared) // thirds]
            d = [steps[s][key]["mean"] - other[s][key]["mean"] for s in part
                 if key in steps[s] and key in other[s]]
            if len(d) < 2:
                continue
            m = sum(d) / len(d)
            se = math.sqrt(sum((x - m) ** 2 for x in d) / (len(d) - 1) / len(d))
            parts.append(f"{m:+.3f} ± {se:.3f}")
        print(f"{key:24} " + "   ".join(parts))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run")
    parser.add_argument("--window", type=int, default=20)
    parser.add_argument("--against", help="a run of the same seed to compare step by step")
    args = parser.parse_args()
    steps, final = read(args.run)
    rows = [steps[s] for s in sorted(steps)]
    if not rows:
        raise SystemExit(f"{args.run}/metrics.jsonl has no step rows")
    w = min(args.window, len(rows) // 2) or 1
    keys = sorted({k for r in rows for k, v in r.items()
                   if k.startswith("reward") and isinstance(v, dict) and "mean" in v})
    print(f"{args.run}: {len(rows)} steps; mean over the first and last {w} steps")
    print(f"{'reward':24} {'first':>8} {'last':>8} {'change':>8} {'± s.e.':>8}")
    for key in keys:
        def window(part):
            return [r[key]["mean"] for r in part if key in r]
        a, b = window(rows[:w]), window(rows[-w:])
        if not a or not b:
            continue
        ma, mb = sum(a) / len(a), sum(b) / len(b)
        var = lambda xs, m: sum((x - m) ** 2 for x in xs) / max(1, len(xs) - 1)
        se = math.sqrt(var(a, ma) / len(a) + var(b, mb) / len(b))
        print(f"{key:24} {ma:8.3f} {mb:8.3f} {mb - ma:+8.3f} {se:8.3f}")
    seconds = sum(r.get("time_rollout", 0) + r.get("time_reward", 0) + r.get("time_update", 0)
                  for r in rows)
    print(f"step time {seconds / len(rows):.2f} s "
          f"(rollout {sum(r.get('time_rollout', 0) for r in rows) / seconds:.0%})")
    if args.against:
        paired(steps, read(args.against)[0], keys)
    if final:
        print(f"held-out: geneval {final['geneval']:.3f} (n = {final['prompts']}), answer accuracy "
              f"{final['answer_accuracy']:.3f} (n = {final['questions']})")


if __name__ == "__main__":
    main()
