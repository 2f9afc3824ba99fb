"""Recomputes a GRPO step from `corl train --dump-batch DIR`'s DIR/batch.json with NumPy alone:
the group advantages from the rewards, and each micro-batch's share of the step's loss from its
log-probs, masks and advantages (DESIGN section 4), with each loss type's normaliser counted over
the whole step as TRL defines it. Exits non-zero on a mismatch."""
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


def per_token_loss(part, batch):
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
    return per_token * mask, mask


def task_losses(parts, batch, length):
    """Each micro-batch's share of the step's loss, as TRL's GRPOTrainer weighs the whole step
    (trl/trainer/grpo_trainer.py, _compute_loss): grpo divides the sum of the rollouts' token
    means by the step's rollouts; dr_grpo the token sum by rollouts x max_completion_length; dapo
    the token sum by the step's tokens (num_items_in_batch); bnpo takes each micro-batch's token
    mean and divides it by the number of micro-batches (gradient accumulation)."""
    terms = [per_token_loss(p, batch) for p in parts]
    rollouts = sum(mask.shape[0] for _, mask in terms)
    tokens = sum(mask.sum() for _, mask in terms)
    kind = batch["loss_type"]
    out = []
    for per_token, mask in terms:
        if kind == "grpo":
            value = (per_token.sum(axis=1) / np.maximum(mask.sum(axis=1), 1)).sum() / rollouts
        elif kind == "dr_grpo":
            value = per_token.sum() / (rollouts * length)
        elif kind == "dapo":
            value = per_token.sum() / tokens
        elif kind == "bnpo":
            value = per_token.sum() / max(1.0, mask.sum()) / len(terms)
        else:
            sys.exit(f"unknown loss_type {kind}")
        out.append(value)
    return out


def main(path):
    batch = json.load(open(path))
    g = batch["num_generations"]
    lam = batch["unify_lambda"]
    scale = batch["scale_rewards"]
    task = batch["task"]
    expected = {}
    if task == "unified" and batch["unify_reward"]:
        r = np.asarray(batch["reward_t2i"]) + lam * np.asarray(batch["reward_mm2t"])
        expected["t2i"] = expected["mm2t"] = advantages(r, g, scale)
    elif task == "unified" and batch["unify_advantage"]:
        expected["t2i"] = expected["mm2t"] = (advantages(batch["reward_t2i"], g, scale) +
                                              lam * advantages(batch["reward_mm2t"], g, scale))
    elif task == "unified":
        # Per-task advantages, unshared: images take A_t2i, answers lambda A_mm2t.
        expected["t2i"] = advantages(batch["reward_t2i"], g, scale)
        expected["mm2t"] = lam * advantages(batch["reward_mm2t"], g, scale)
    elif task == "t2i":
        expected["t2i"] = advantages(batch["reward_t2i"], g, scale)
    else:
        expected["mm2t"] = advantages(batch["reward_mm2t"], g, scale)
    for name, want in expected.items():
        got = np.asarray(batch[f"advantages_{name}"])
        if not np.allclose(want, got, rtol=1e-5, atol=1e-5):
            sys.exit(f"{name} advantages differ:\n{want}\n{got}")

    micro = batch["micro_batches"]
    totals = np.zeros(len(micro))
    for name in expected:
        parts = [m[name] for m in micro]
        length = len(parts[0]["logp"][0]) if name == "t2i" else batch["max_completion_length"]
        weight = batch["mm2t_loss_weight"] if name == "mm2t" and "t2i" in expected else 1.0
        for i, (part, value) in enumerate(zip(parts, task_losses(parts, batch, length))):
            if not np.isclose(value, part["loss"], rtol=1e-4, atol=1e-6):
                sys.exit(f"micro-batch {i} {name}: loss {part['loss']} recomputed as {value}")
            idx = np.asarray(part["rollouts"], dtype=int)
            if not np.allclose(np.asarray(part["advantages"]), expected[name][idx], atol=1e-5):
                sys.exit(f"micro-batch {i} {name}: advantages not those of its rollouts")
            totals[i] += weight * value
    for i, m in enumerate(micro):
        if not np.isclose(totals[i], m["loss"], rtol=1e-4, atol=1e-6):
            sys.exit(f"micro-batch {i}: total {m['loss']} recomputed as {totals[i]}")
    print(f"loss recomputed for {len(micro)} micro-batches ({batch['loss_type']}, the step's "
          f"normalisers); advantages match")


if __name__ == "__main__":
    main(sys.argv[1])
