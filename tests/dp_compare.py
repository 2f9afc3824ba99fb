"""Data parallel against one process: run A (one process, batch 2b) and run B (2 ranks, batch b
each), both with --dump-batch RUN/dump, must agree on their first step where only float
reassociation separates them: the same rollouts and rewards, the same losses, and the same
gradient summed over ranks before clipping and the optimizer.

Later steps are not compared: AdamW's first update is about lr * sign(g) per weight, so a
near-zero gradient element whose last bits differ moves a weight by a whole step either way,
and the runs' rollouts may part from there on.

Tolerances come from float32 arithmetic, not from a machine: u = 2**-24 is the unit roundoff,
and a gradient element is a sum of a few thousand per-token contributions carried back through
about ten layers, so reordering its sums moves it by at most a few hundred u relative to the
step's largest gradient (sqrt(n) u per reduction of length n, times the depth). The bound below
is 1e-4 of that scale (about 1700 u), and the losses', a function of the same sums, likewise.

    dp_compare.py RUN_A RUN_B
"""
import json
import sys

import numpy as np
from safetensors.numpy import load_file

U = 2.0 ** -24
REL = 1e-4  # ~1700 u: see above


def first_step(run):
    with open(f"{run}/metrics.jsonl") as f:
        rows = [r for r in map(json.loads, f) if "updates" in r]
    assert rows, f"{run}: no step in metrics.jsonl"
    return rows[0]


def close(a, b, rel, what, scale):
    if abs(a - b) > rel * scale:
        sys.exit(f"{what}: {a!r} vs {b!r} (difference {abs(a - b):.3e}, allowed "
                 f"{rel * scale:.3e})")


def main(run_a, run_b):
    ra, rb = first_step(run_a), first_step(run_b)
    assert ra["updates"] == rb["updates"] and ra["updates"] > 0, (ra["updates"], rb["updates"])
    assert ra["groups_kept"] == rb["groups_kept"], (ra["groups_kept"], rb["groups_kept"])
    # Identical rollouts: the same rewards, to float noise (tim reads hidden states, which
    # differ in the last bits when a rank's forward pass batches other prompts).
    for key in [k for k in ra if k.startswith("reward")]:
        for stat in ("mean", "std"):
            close(ra[key][stat], rb[key][stat], REL, f"{key} {stat}",
                  max(abs(ra[key]["mean"]), ra[key]["std"], U))
    close(ra["completion_length"]["mean"], rb["completion_length"]["mean"], 0.0,
          "completion length", 1.0)
    # A surrogate loss is a sum of terms of either sign (at ratio 1 it is minus a mean advantage,
    # near 0): its scale is the KL term's or the advantages' size, not its own value.
    scale = max(abs(ra["loss"]), ra["advantage"]["abs_mean"], ra.get("kl_t2i", 0.0), U)
    for key in ("loss", "loss_t2i", "loss_mm2t"):
        close(ra[key], rb[key], REL, key, scale)

    # TRL's options' figures over the whole step (present when a recipe turns them on): the
    # entropy mask's kept share may differ by a token sitting on the quantile, whose entropy
    # differs in the last bits; the correction's weights are 1 to within the cache's rounding.
    for key in sorted(k for k in ra if k.startswith("entropy_mask_kept")):
        close(ra[key], rb[key], 0.01, key, 1.0)
    for key in sorted(k for k in ra if k.startswith("importance_sampling_ratio")):
        close(ra[key]["mean"], rb[key]["mean"], REL, f"{key} mean", 1.0)

    ga = load_file(f"{run_a}/dump/grad.safetensors")
    gb = load_file(f"{run_b}/dump/grad.safetensors")
    assert ga.keys() == gb.keys(), sorted(set(ga) ^ set(gb))
    largest = max(float(np.abs(g).max()) for g in ga.values())
    assert largest > 0, "the first step's gradient is zero: nothing was compared"
    worst, where = 0.0, ""
    for k in ga:
        d = float(np.abs(ga[k].astype(np.float64) - gb[k]).max())
        if d > worst:
            worst, where = d, k
    if worst > REL * largest:
        sys.exit(f"gradients differ by {worst:.3e} ({where}); allowed {REL * largest:.3e} "
                 f"(1e-4 of the largest element, {largest:.3e})")
    print(f"data parallel matches one process on the first step: gradients differ by at most "
          f"{worst:.2e} ({worst / largest / U:.0f} u of the largest element {largest:.2e})")


if __name__ == "__main__":
    main(*sys.argv[1:])
