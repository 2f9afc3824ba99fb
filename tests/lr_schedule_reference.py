"""Learning rates of transformers' own schedules, update by update, for train_optimizer_test.

    lr_schedule_reference.py OUT.json

For each case, an AdamW over one parameter is stepped as Hugging Face Trainer steps it: the rate
of update k is the optimizer's lr when optimizer.step() runs, and scheduler.step() follows each
update. The schedules come from transformers.get_scheduler by name. Exits with status 77 when
transformers is not installed.
"""

import json
import sys

try:
    import torch
    from transformers import get_scheduler
except ImportError as error:
    print(f"missing Python package: {error}", file=sys.stderr)
    sys.exit(77)

PEAK = 2.0
# (corl's lr_scheduler_type, warmup_steps, total updates, min_lr_ratio)
CASES = [
    ("linear", 0, 702, 0.0),  # ULM-R1's unified stage: 702 updates, no warm-up
    ("linear", 0, 10, 0.0),
    ("linear", 3, 10, 0.0),
    ("linear", 12, 10, 0.0),  # a warm-up longer than the run
    ("cosine", 0, 10, 0.0),
    ("cosine", 4, 12, 0.0),
    ("cosine", 4, 12, 0.25),
    ("cosine", 5, 100, 1.0),
    ("constant", 0, 10, 0.0),
]


def rates(kind, warmup, total, min_lr_ratio):
    name, extra = kind, {}
    if kind == "cosine" and min_lr_ratio > 0:
        name, extra = "cosine_with_min_lr", {"min_lr_rate": min_lr_ratio}
    optimizer = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=PEAK)
    scheduler = get_scheduler(name, optimizer, num_warmup_steps=warmup,
                              num_training_steps=total, scheduler_specific_kwargs=extra)
    out = []
    for _ in range(total + 1):  # one past the run: corl's warm-up is theirs one update ahead
        out.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return out


def main(path):
    cases = [dict(lr_scheduler_type=k, warmup_steps=w, total_steps=t, min_lr_ratio=m,
                  learning_rate=PEAK, rates=rates(k, w, t, m)) for k, w, t, m in CASES]
    with open(path, "w", encoding="utf-8") as f:
        json.dump(cases, f)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
