"""Recomputes a GRPO step from `corl train --dump-batch DIR`'s DIR/batch.json with NumPy alone:
the group advantages from the rewards, and each micro-batch's loss from its log-probs, masks and
advantages (DESIGN section 4). Exits non-zero on a mismatch."""
import json
import sys

import numpy as np


def advantages(rewards, group_size, scale):
    r = np.asarray(rewards, dtype=np.float64).reshape(-1, group_size)
    centred = r - r.mean(axis=1, keepdims=True)
    if scale == "none":
        return centred.reshape(-1)
    std = r.std(axis=1, ddof=1, keepdims=True) if group_size > 1 else np.zeros_like(centred)
    return (centred / (std + 1e-4)).reshape(-1)


def loss(part, batch):
    logp = np.asarray(part["logp"], dtype=np.float64)
    old = np.asarray(part["old_logp"], dtype=np.float64)
    mask = np.asarray(part["mask"], dtype=np.float64)
    adv = np.asarray(part["advantages"], dtype=np.float64)[:, None]
    ratio = np.exp(logp - old)
    clipped = np.clip(ratio, 1 - batch["epsilon"], 1 + batch["epsilon_high"])
    per_token = -np.minimum(ratio * adv, clipped * adv)
    if batch["beta"] > 0:
        ref = np.asarray(part["ref_logp"], dtype=np.float64)
        per_token += batch["beta"] * (np.exp(ref - logp) - (ref - logp) - 1)
    per_token *= mask
    kind = batch["loss_type"]
    if kind == "dapo":
        return per_token.sum() / max(1.0, mask.sum())
    if kind == "dr_grpo":
        return per_token.sum() / (logp.shape[0] * part["norm_length"])
    counts = mask.sum(axis=1)
    rows = counts > 0
    return (per_token.sum(axis=1)[rows] / counts[rows]).mean() if rows.any() else 0.0


def main(path):
    batch = json.load(open(path))
    g = batch["num_generations"]
    lam = batch["unify_lambda"]
    scale = batch["scale_rewards"]
    if batch["task"] == "unified" and batch["unify_reward"]:
        r = np.asarray(batch["reward_t2i"]) + lam * np.asarray(batch["reward_mm2t"])
        expected = advantages(r, g, scale)
    elif batch["task"] == "unified" and batch["unify_advantage"]:
        expected = (advantages(batch["reward_t2i"], g, scale) +
                    lam * advantages(batch["reward_mm2t"], g, scale))
    elif batch["task"] == "unified":
        # Per-task advantages, unshared: images take A_t2i, answers lambda A_mm2t.
        expected = advantages(batch["reward_t2i"], g, scale)
        expected_mm2t = lam * advantages(batch["reward_mm2t"], g, scale)
        if not np.allclose(expected_mm2t, batch["advantages_mm2t"], rtol=1e-5, atol=1e-5):
            sys.exit(f"answer advantages differ:\n{expected_mm2t}\n{batch['advantages_mm2t']}")
    else:
        r = batch["reward_t2i"] if batch["task"] == "t2i" else batch["reward_mm2t"]
        expected = advantages(r, g, scale)
    got = np.asarray(batch["advantages"])
    if not np.allclose(expected, got, rtol=1e-5, atol=1e-5):
        sys.exit(f"advantages differ:\n{expected}\n{got}")
    for i, micro in enumerate(batch["micro_batches"]):
        total = 0.0
        for task in ("t2i", "mm2t"):
            if task not in micro:
                continue
            part = micro[task]
            part["norm_length"] = (
                len(part["logp"][0]) if task == "t2i" else batch["max_completion_length"])
            value = loss(part, batch)
            if not np.isclose(value, part["loss"], rtol=1e-4, atol=1e-6):
                sys.exit(f"micro-batch {i} {task}: loss {part['loss']} recomputed as {value}")
            idx = np.asarray(part["rollouts"], dtype=int)
            own = (np.asarray(batch["advantages_mm2t"])
                   if task == "mm2t" and "advantages_mm2t" in batch else got)
            if not np.allclose(np.asarray(part["advantages"]), own[idx], atol=1e-6):
                sys.exit(f"micro-batch {i} {task}: advantages not those of its rollouts")
            weight = batch["mm2t_loss_weight"] if task == "mm2t" and "t2i" in micro else 1.0
            total += weight * value
        if not np.isclose(total, micro["loss"], rtol=1e-4, atol=1e-6):
            sys.exit(f"micro-batch {i}: total {micro['loss']} recomputed as {total}")
    print(f"loss recomputed for {len(batch['micro_batches'])} micro-batches; advantages match")


if __name__ == "__main__":
    main(sys.argv[1])
