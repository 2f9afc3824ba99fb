#!/usr/bin/env python3
"""Plots a training run's curves from its metrics.jsonl: every reward's mean, the KL, and the
completion lengths, one panel each. Used by `corl eval` for its report.

    scripts/plot_curves.py --out curves.png [--title NAME] RUN/metrics.jsonl
"""
import argparse
import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def smooth(values, window=10):
    out, total = [], 0.0
    for i, v in enumerate(values):
        total += v
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("metrics")
    parser.add_argument("--out", required=True)
    parser.add_argument("--title", default="")
    args = parser.parse_args()
    steps = {}
    for line in open(args.metrics):
        row = json.loads(line)
        if "step" in row and "geneval" not in row:
            steps[row["step"]] = row  # a resumed run logs a step again: the last one counts
    rows = [steps[s] for s in sorted(steps)]
    x = [r["step"] for r in rows]

    def series(key, field=None):
        return [(r[key][field] if field else r[key]) for r in rows if key in r]

    panels = []
    rewards = sorted({k for r in rows for k, v in r.items()
                      if k.startswith("reward") and isinstance(v, dict) and "mean" in v})
    if rewards:
        panels.append(("reward (mean; smoothed over 10 steps)", [(k, series(k, "mean")) for k in rewards]))
    kl = [(k, series(k)) for k in ("kl_t2i", "kl_mm2t") if any(k in r for r in rows)]
    losses = [(k, series(k)) for k in ("loss_t2i", "loss_mm2t", "loss_text", "loss_image")
              if any(k in r for r in rows)]
    entropy = [(k, series(k)) for k in ("entropy_t2i", "entropy_mm2t") if any(k in r for r in rows)]
    if kl or entropy:
        panels.append(("KL to the reference" if kl else "token entropy", kl or entropy))
    lengths = [("completion length", series("completion_length", "mean"))] if any(
        "completion_length" in r for r in rows) else []
    panels.append(("completion length (tokens)" if lengths else "loss", lengths or losses))

    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.6))
    if len(panels) == 1:
        axes = [axes]
    for ax, (title, lines) in zip(axes, panels):
        for label, values in lines:
            if values:
                ax.plot(x[:len(values)], smooth(values) if title.startswith("reward") else values,
                        label=label, linewidth=1.2)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("step")
        if lines:
            ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    if args.title:
        fig.suptitle(args.title)
    fig.tight_layout()
    fig.savefig(args.out, dpi=90)


if __name__ == "__main__":
    main()
