"""Data parallel against one process: run A (one process, batch 2b) and run B (2 ranks, batch b
each) must log the same rewards and losses step by step and end with the same weights, within
float tolerance (the ranks sum their shares in another order and batch their forward passes
differently, so bits may differ).

    dp_compare.py RUN_A RUN_B INIT_MODEL
"""
import json
import sys

import numpy as np
from safetensors.numpy import load_file


def rows(run):
    with open(f"{run}/metrics.jsonl") as f:
        return [r for r in map(json.loads, f) if "loss" in r or "updates" in r]


def close(a, b, rel, what, floor=1e-8):
    """|a - b| <= rel * max(|a|, |b|, floor): a loss near 0 (the surrogate at ratio 1 is minus
    the mean advantage) is compared at the scale `floor`."""
    scale = max(abs(a), abs(b), floor)
    if abs(a - b) > rel * scale:
        sys.exit(f"{what}: {a!r} vs {b!r} (relative difference {abs(a - b) / scale:.2e})")


def main(run_a, run_b, init):
    a, b = rows(run_a), rows(run_b)
    assert len(a) == len(b) and a, (len(a), len(b))
    for ra, rb in zip(a, b):
        step = ra["step"]
        assert ra["updates"] == rb["updates"], (step, ra["updates"], rb["updates"])
        assert ra["groups_kept"] == rb["groups_kept"], step
        # Identical rollouts: the same rewards, to float noise (tim reads hidden states, which
        # differ in the last bits when a rank's forward pass batches other prompts).
        for key in [k for k in ra if k.startswith("reward")]:
            close(ra[key]["mean"], rb[key]["mean"], 1e-6, f"step {step} {key} mean")
            close(ra[key]["std"], rb[key]["std"], 1e-6, f"step {step} {key} std")
        close(ra["completion_length"]["mean"], rb["completion_length"]["mean"], 1e-12,
              f"step {step} completion length")
        if ra["updates"]:
            for key in ("loss", "loss_t2i", "loss_mm2t"):
                close(ra[key], rb[key], 1e-3, f"step {step} {key}", floor=1e-4)
            close(ra["grad_norm"], rb["grad_norm"], 1e-4, f"step {step} grad_norm")
    wa = load_file(f"{run_a}/final/model.safetensors")
    wb = load_file(f"{run_b}/final/model.safetensors")
    w0 = load_file(init)
    assert wa.keys() == wb.keys()
    moved = max(float(np.abs(wa[k].astype(np.float64) - w0[k]).max()) for k in wa)
    worst, where = 0.0, ""
    for k in wa:
        d = float(np.abs(wa[k].astype(np.float64) - wb[k]).max())
        if d > worst:
            worst, where = d, k
    # The runs' difference must be small against how far training moved the weights.
    if not moved > 0 or worst > 5e-2 * moved:
        sys.exit(f"weights differ by {worst:.3e} ({where}); training moved them {moved:.3e}")
    print(f"data parallel matches one process over {len(a)} steps: weights differ by at most "
          f"{worst:.2e} (training moved them {moved:.2e})")


if __name__ == "__main__":
    main(*sys.argv[1:])
