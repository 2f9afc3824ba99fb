"""Recomputes a GRPO step from `corl train --dump-batch DIR`'s DIR/batch.json: with NumPy, the
format reward from the completions, each task's reward from the rewards by name and their
weights, the group advantages, the policy term's weights (entropy mask, sampler/trainer
correction) from the old log-probs, entropies and sampler log-probs, and each micro-batch's share
of the step's loss from its log-probs, masks and advantages (DESIGN section 4); then with the
installed `trl` package's own GRPOTrainer._compute_loss, the loss and its gradient with respect to
every log-prob: per micro-batch where TRL's definition is corl's (bnpo, dapo, and grpo and
dr_grpo when every micro-batch holds as many rollouts), else the whole step's as TRL computes
it in one micro-batch (corl's grpo and dr_grpo do not depend on the cut). Exits non-zero on a
mismatch."""
import json
import re
import sys
import types
from collections import defaultdict

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


def well_formed(text):
    """The format reward: <think>...</think><answer>...</answer>, one of each tag in that order,
    only blanks outside them, a non-blank answer."""
    tags = ["<think>", "</think>", "<answer>", "</answer>"]
    if any(text.count(t) != 1 for t in tags):
        return False
    at = [text.index(t) for t in tags]
    if at != sorted(at):
        return False
    blank = lambda a, b: text[a:b].strip() == ""  # noqa: E731
    return (blank(0, at[0]) and blank(at[1] + len(tags[1]), at[2]) and
            blank(at[3] + len(tags[3]), len(text)) and not blank(at[2] + len(tags[2]), at[3]))


def task_reward(batch, name):
    """sum_then_normalize: the weighted sum of the task's rewards; normalize_then_sum (TRL, GDPO):
    each reward normalised within its group (std ddof 1, + 1e-4), then the weighted sum."""
    g = batch["num_generations"]
    total = 0.0
    for func, weight in zip(batch["reward_funcs"], batch["reward_weights"]):
        if (func in IMAGE_REWARDS) == (name == "t2i"):
            r = np.asarray(batch["rewards"][func], dtype=np.float64)
            if batch["multi_objective_aggregation"] != "sum_then_normalize":
                r = advantages(r, g, "group")
            total = total + weight * r
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
        per_token = per_token + batch["beta"] * (np.exp(ref - logp) - (ref - logp) - 1)
    return per_token * mask, mask


def task_losses(parts, batch, length):
    """Each micro-batch's share of the step's loss, as corl spreads it (grpo/loss.h): grpo divides
    the sum of the rollouts' token means by the step's rollouts; dr_grpo the token sum by rollouts
    x max_completion_length; dapo the token sum by the step's tokens (TRL's num_items_in_batch);
    bnpo takes each micro-batch's token mean and divides it by the number of micro-batches (a
    world of one: TRL's local batch is the micro-batch)."""
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


class OneProcess:
    """What _compute_loss asks of accelerate's Accelerator in a world of one."""
    num_processes = 1
    sync_gradients = True

    def gather(self, x):
        return x

    def gather_for_metrics(self, x):
        return x

    def reduce(self, x, reduction="sum"):
        return x


def trl_loss(rows, batch, accumulation, num_items, length):
    """TRL's _compute_loss (the installed trl package's GRPOTrainer) on one micro-batch of one
    task: `rows` lists each rollout's (logp, old_logp, ref_logp, mask, advantage, policy weight).
    Returns the loss and its gradient with respect to the log-probs, [R, T]. corl's policy weights
    go in as TRL's importance_sampling_ratio (which multiplies the policy term, not the KL), and
    the KL is not weighted by the ratio (use_bias_correction_kl=False): corl's k3 term."""
    import torch
    from trl.trainer.grpo_trainer import GRPOTrainer

    width = max(len(r[0]) for r in rows)
    pad = lambda k: torch.tensor([list(r[k]) + [0.0] * (width - len(r[k])) for r in rows],  # noqa: E731
                                 dtype=torch.float64)
    logp = pad(0).requires_grad_()
    mask = pad(3)
    weights = pad(5) if rows[0][5] is not None else None
    n = len(rows)
    trainer = types.SimpleNamespace(
        _get_per_token_logps_and_entropies=lambda *a, **k: (logp, torch.zeros_like(logp), None),
        aux_loss_enabled=False, top_entropy_quantile=1.0, off_policy_mask_threshold=None,
        importance_sampling_level=batch.get("importance_sampling_level", "token"),
        beta=batch["beta"], loss_type=batch["loss_type"], epsilon_low=batch["epsilon"],
        epsilon_high=batch["epsilon_high"], use_vllm=weights is not None,
        vllm_importance_sampling_correction=weights is not None,
        args=types.SimpleNamespace(use_bias_correction_kl=False, delta=None,
                                   steps_per_generation=accumulation),
        model=types.SimpleNamespace(training=True), current_gradient_accumulation_steps=accumulation,
        max_completion_length=length, accelerator=OneProcess(), _entropy_bonus_enabled=False,
        _metrics=defaultdict(lambda: defaultdict(list)))
    inputs = {"prompt_ids": torch.zeros((n, 1), dtype=torch.long),
              "prompt_mask": torch.ones((n, 1), dtype=torch.long),
              "completion_ids": torch.zeros((n, width), dtype=torch.long),
              "completion_mask": mask,
              "advantages": torch.tensor([r[4] for r in rows], dtype=torch.float64),
              "old_per_token_logps": pad(1),
              "num_items_in_batch": torch.tensor(float(num_items), dtype=torch.float64)}
    if batch["beta"] > 0:
        inputs["ref_per_token_logps"] = pad(2)
    if weights is not None:
        inputs["importance_sampling_ratio"] = weights
    loss = GRPOTrainer._compute_loss(trainer, None, inputs)
    loss.backward()
    return loss.item(), logp.grad.numpy()


def check_against_trl(name, parts, batch, length, weight):
    """corl's loss and d loss / d logp of one task against TRL's, per micro-batch where TRL's
    definition is corl's, else for the whole step in one micro-batch."""
    rows = []
    for p in parts:
        w = p.get("policy_weight")
        for i in range(len(p["logp"])):
            rows.append((p["logp"][i], p["old_logp"][i], p["ref_logp"][i] if "ref_logp" in p else
                         p["logp"][i], p["mask"][i], p["advantages"][i], w[i] if w else None))
    tokens = sum(float(np.sum(p["mask"])) for p in parts)
    sizes = {len(p["logp"]) for p in parts}
    per_micro = batch["loss_type"] in ("bnpo", "dapo") or len(sizes) == 1
    if per_micro:
        start = 0
        for i, p in enumerate(parts):
            n = len(p["logp"])
            value, grad = trl_loss(rows[start:start + n], batch, len(parts), tokens, length)
            start += n
            if not np.isclose(value, p["loss"], rtol=1e-4, atol=1e-6):
                sys.exit(f"micro-batch {i} {name}: loss {p['loss']}, TRL's {value}")
            got = np.asarray(p["logp_grad"]) / weight
            if not np.allclose(got, grad[:, :got.shape[1]], rtol=1e-4, atol=1e-7):
                sys.exit(f"micro-batch {i} {name}: d loss / d logp differs from TRL's")
        return "per micro-batch"
    value, grad = trl_loss(rows, batch, 1, tokens, length)
    total = sum(p["loss"] for p in parts)
    if not np.isclose(value, total, rtol=1e-4, atol=1e-6):
        sys.exit(f"{name}: the step's loss {total}, TRL's in one micro-batch {value}")
    start = 0
    for i, p in enumerate(parts):
        got = np.asarray(p["logp_grad"]) / weight
        if not np.allclose(got, grad[start:start + len(got), :got.shape[1]], rtol=1e-4, atol=1e-7):
            sys.exit(f"micro-batch {i} {name}: d loss / d logp differs from TRL's whole step")
        start += len(got)
    return "for the whole step"


def main(path):
    batch = json.load(open(path))
    g = batch["num_generations"]
    lam = batch["unify_lambda"]
    batch.setdefault("multi_objective_aggregation", "sum_then_normalize")
    task = batch["task"]
    if "format" in batch.get("rewards", {}):
        want = [1.0 if well_formed(c) else 0.0 for c in batch["completions"]]
        if want != list(batch["rewards"]["format"]):
            sys.exit(f"format rewards differ:\n{want}\n{batch['rewards']['format']}")
        checked_format = True
    else:
        checked_format = False
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
    trl_checked = []
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
        trl_checked.append(f"{name} loss and gradient match TRL's "
                           f"{check_against_trl(name, parts, batch, length, weight)}")
    for i, m in enumerate(micro):
        if not np.isclose(totals[i], m["loss"], rtol=1e-4, atol=1e-6):
            sys.exit(f"micro-batch {i}: total {m['loss']} recomputed as {totals[i]}")
    print(f"loss recomputed for {len(micro)} micro-batches ({batch['loss_type']}, the step's "
          f"normalisers, {batch.get('importance_sampling_level', 'token')}-level ratio); "
          f"advantages match" + ("; format rewards match" if checked_format else "") +
          "".join(f"; {c} match" for c in checked) + "".join(f"; {c}" for c in trl_checked))


if __name__ == "__main__":
    main(sys.argv[1])
