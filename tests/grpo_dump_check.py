"""Recomputes a GRPO step from `corl train --dump-batch DIR`'s DIR/batch.json with NumPy alone:
the group advantages from the rewards, the policy term's weights (entropy mask, sampler/trainer
correction) from the old log-probs, entropies and sampler log-probs, and each micro-batch's share
of the step's loss from its log-probs, masks and advantages (DESIGN section 4), with each loss
type's normaliser counted over the whole step, each option as TRL's GRPOTrainer defines it
(trl/trainer/grpo_trainer.py 1.x). Exits non-zero on a mismatch."""
import json
import sys

import numpy as np


IMAGE_REWARDS = {"cycle", "tim", "geneval"}


def advantages(rewards, group_size, scale):
    r = np.asarray(rewards, dtype=np.float64).reshape(-1, group_size)
    centred = r - r.mean(axis=1, keepdims=True)
    if scale == "none":
        return centred.reshape(-1)
    if scale == "batch":  # TRL: std over the whole batch, mean still per group
        std = r.std(ddof=1) if r.size > 1 else 0.0
    else:
        std = r.std(axis=1, ddof=1, keepdims=True) if group_size > 1 else np.zeros_like(centred)
    return (centred / (std + 1e-4)).reshape(-1)


def task_reward(batch, name):
    """sum_then_normalize: the dumped weighted sum; normalize_then_sum (TRL, GDPO): each reward
    normalised within its group (std ddof 1, + 1e-4), then the weighted sum."""
    if batch["multi_objective_aggregation"] == "sum_then_normalize":
        return np.asarray(batch[f"reward_{name}"], dtype=np.float64)
    g = batch["num_generations"]
    total = 0.0
    for func, weight in zip(batch["reward_funcs"], batch["reward_weights"]):
        if (func in IMAGE_REWARDS) == (name == "t2i"):
            total = total + weight * advantages(batch["rewards"][func], g, "group")
    return total


def step_advantages(r, batch):
    """normalize_then_sum ends with the whole batch's mean and std, whatever scale_rewards says."""
    if batch["multi_objective_aggregation"] == "normalize_then_sum":
        r = np.asarray(r, dtype=np.float64)
        return (r - r.mean()) / ((r.std(ddof=1) if r.size > 1 else 0.0) + 1e-4)
    return advantages(r, batch["num_generations"], batch["scale_rewards"])


def policy_weights(parts, batch):
    """The entropy mask (TRL get_high_entropy_mask: entropy >= the (1 - rho) quantile of the
    masked tokens) times the sampler/trainer ratio (TRL vllm_importance_sampling_mode) of every
    part of one task, or None when neither is on."""
    rho = batch["top_entropy_quantile"]
    correction = batch["importance_sampling_correction"]
    if rho >= 1.0 and not correction:
        return None
    masks = [np.asarray(p["mask"], dtype=np.float64) for p in parts]
    weights = [np.ones_like(m) for m in masks]
    if correction:
        mode, cap = batch["importance_sampling_mode"], batch["importance_sampling_cap"]
        for k, p in enumerate(parts):
            diff = (np.asarray(p["old_logp"]) - np.asarray(p["sampler_logp"])) * masks[k]
            ratio = np.exp(diff.sum(axis=1, keepdims=True) if mode.startswith("sequence") else diff)
            ratio = np.minimum(ratio, cap) if mode.endswith("truncate") else np.where(ratio > cap, 0.0, ratio)
            weights[k] = weights[k] * ratio
    if rho < 1.0:
        entropies = [np.asarray(p["old_entropy"], dtype=np.float64) for p in parts]
        pooled = np.concatenate([e[m > 0] for e, m in zip(entropies, masks)])
        for k in range(len(parts)):
            keep = np.zeros_like(masks[k]) if pooled.size == 0 else \
                ((entropies[k] >= np.quantile(pooled, 1 - rho)) & (masks[k] > 0)).astype(float)
            weights[k] = weights[k] * keep
    return weights


def per_token_loss(part, batch):
    logp = np.asarray(part["logp"], dtype=np.float64)
    old = np.asarray(part["old_logp"], dtype=np.float64)
    mask = np.asarray(part["mask"], dtype=np.float64)
    adv = np.asarray(part["advantages"], dtype=np.float64)[:, None]
    log_ratio = (logp - old) * mask
    if batch.get("importance_sampling_level") == "sequence":  # GSPO, TRL: masked mean per row
        log_ratio = log_ratio.sum(axis=1, keepdims=True) / np.maximum(mask.sum(axis=1, keepdims=True), 1)
    ratio = np.exp(log_ratio)
    clipped = np.clip(ratio, 1 - batch["epsilon"], 1 + batch["epsilon_high"])
    per_token = -np.minimum(ratio * adv, clipped * adv)
    if "policy_weight" in part:  # entropy mask x sampler/trainer ratio, the policy term only
        per_token = per_token * np.asarray(part["policy_weight"], dtype=np.float64)
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
    tokens = max(1.0, sum(mask.sum() for _, mask in terms))  # TRL clamps it to >= 1
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
    batch.setdefault("multi_objective_aggregation", "sum_then_normalize")
    task = batch["task"]
    adv = lambda r: step_advantages(r, batch)  # noqa: E731
    expected = {}
    if task == "unified" and batch["unify_reward"]:
        r = task_reward(batch, "t2i") + lam * task_reward(batch, "mm2t")
        expected["t2i"] = expected["mm2t"] = adv(r)
    elif task == "unified" and batch["unify_advantage"]:
        expected["t2i"] = expected["mm2t"] = (adv(task_reward(batch, "t2i")) +
                                              lam * adv(task_reward(batch, "mm2t")))
    elif task == "unified":
        # Per-task advantages, unshared: images take A_t2i, answers lambda A_mm2t.
        expected["t2i"] = adv(task_reward(batch, "t2i"))
        expected["mm2t"] = lam * adv(task_reward(batch, "mm2t"))
    elif task == "t2i":
        expected["t2i"] = adv(task_reward(batch, "t2i"))
    else:
        expected["mm2t"] = adv(task_reward(batch, "mm2t"))
    for name, want in expected.items():
        got = np.asarray(batch[f"advantages_{name}"])
        if not np.allclose(want, got, rtol=1e-5, atol=1e-5):
            sys.exit(f"{name} advantages differ:\n{want}\n{got}")

    micro = batch["micro_batches"]
    totals = np.zeros(len(micro))
    checked = []
    for name in expected:
        parts = [m[name] for m in micro]
        if name == "mm2t" and "lengths" in batch:
            # The loss mask: each answer's sampled tokens, none of a truncated one's under
            # mask_truncated_completions (TRL: completions without EOS leave the loss).
            for i, part in enumerate(parts):
                for row, r in zip(np.asarray(part["mask"]), part["rollouts"]):
                    cut = batch.get("mask_truncated_completions") and batch["truncated"][r]
                    if row.sum() != (0 if cut else batch["lengths"][r]):
                        sys.exit(f"micro-batch {i} mm2t: rollout {r}'s mask holds {row.sum()} tokens")
        want = policy_weights(parts, batch)
        if want is not None:
            for i, (part, w) in enumerate(zip(parts, want)):
                if not np.allclose(np.asarray(part["policy_weight"]), w, rtol=1e-5, atol=1e-6):
                    sys.exit(f"micro-batch {i} {name}: policy weights differ:\n{w}\n{part['policy_weight']}")
            checked.append(f"{name} policy weights")
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
          f"normalisers, {batch.get('importance_sampling_level', 'token')}-level ratio); "
          f"advantages match" + "".join(f"; {c} match" for c in checked))


if __name__ == "__main__":
    main(sys.argv[1])
