"""scripts/tensorboard_events.py: a hand-written metrics.jsonl converted to event files and read
back with TensorBoard's own reader (EventAccumulator), value by value."""
import json
import os
import subprocess
import sys
import tempfile

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts",
                      "tensorboard_events.py")

ROWS = [
    {"step": 1, "time": 2.0, "loss_t2i": 0.5, "reward_t2i": {"mean": 0.25, "std": 0.1}, "lr": 1e-6},
    {"step": 2, "time": 4.0, "loss_t2i": 0.75, "reward_t2i": {"mean": 0.5, "std": 0.2}, "lr": 1e-6},
    # A resumed run logged step 2 again: the last one counts.
    {"step": 2, "time": 9.0, "loss_t2i": 0.625, "reward_t2i": {"mean": 0.375, "std": 0.2},
     "lr": 1e-6, "note": "text is skipped", "flags": [1, 2]},
    {"checkpoint": "pre", "suite": "geneval", "figures": {"overall": 0.25, "se": {"overall": 0.05},
                                                          "items": {"colors": [1, 0]}}},
    {"checkpoint": "uni", "suite": "geneval", "figures": {"overall": 0.5, "se": {"overall": 0.04}}},
]


def scalar_values(accumulator, tag):
    return [(e.step, e.value) for e in accumulator.Scalars(tag)]


def main():
    with tempfile.TemporaryDirectory() as work:
        run = os.path.join(work, "unified")
        os.makedirs(run)
        with open(os.path.join(run, "metrics.jsonl"), "w") as out:
            for row in ROWS:
                out.write(json.dumps(row) + "\n")
            out.write('{"step": 3, "loss')  # a write cut short by a kill
        logdir = os.path.join(work, "tb")
        for _ in range(2):  # converting twice leaves one copy of each event
            subprocess.run([sys.executable, SCRIPT, run, "--out", logdir], check=True)
        accumulator = EventAccumulator(os.path.join(logdir, "unified"))
        accumulator.Reload()
        tags = set(accumulator.Tags()["scalars"])
        expected = {"loss_t2i", "reward_t2i/mean", "reward_t2i/std", "lr", "time",
                    "eval/geneval/overall", "eval/geneval/se/overall"}
        assert tags == expected, tags
        assert scalar_values(accumulator, "loss_t2i") == [(1, 0.5), (2, 0.625)]
        assert scalar_values(accumulator, "reward_t2i/mean") == [(1, 0.25), (2, 0.375)]
        assert [e.wall_time for e in accumulator.Scalars("loss_t2i")] == [2.0, 9.0]
        assert scalar_values(accumulator, "eval/geneval/overall") == [(0, 0.25), (1, 0.5)]
        overall_se = scalar_values(accumulator, "eval/geneval/se/overall")
        assert [s for s, _ in overall_se] == [0, 1]
        assert abs(overall_se[0][1] - 0.05) < 1e-7 and abs(overall_se[1][1] - 0.04) < 1e-7
    print("tensorboard_events: ok")


if __name__ == "__main__":
    main()
