"""scripts/results_table.py: the change from the baseline and its paired standard error, worked
out by hand for a small results.json."""
import json
import os
import subprocess
import sys
import tempfile

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts", "results_table.py")


def entry(mcq_items, geneval_items):
    accuracy = sum(mcq_items) / len(mcq_items)
    overall = sum(sum(v) / len(v) for v in geneval_items.values()) / len(geneval_items)
    return {
        "mcq": {"accuracy": accuracy, "se": {"accuracy": 0.25}, "items": mcq_items},
        "geneval": {"overall": overall, "se": {"overall": 0.25}, "items": geneval_items},
    }


results = {
    "base": entry([0, 0, 1, 0], {"a": [0.0, 0.5], "b": [0.25, 0.25]}),
    "tuned": entry([1, 0, 1, 1], {"a": [0.5, 0.5], "b": [0.25, 0.75]}),
}


def tuned_row(results):
    """The table's row of the "tuned" model, against "base"."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "results.json")
        with open(path, "w") as f:
            json.dump(results, f)
        table = subprocess.run([sys.executable, SCRIPT, path, "--baseline", "base"], check=True,
                               capture_output=True, text=True).stdout
    return next(line for line in table.splitlines() if line.startswith("| tuned"))


row = tuned_row(results)
# MCQ: differences 1, 0, 0, 1: mean 0.5, sample s.d. sqrt(1/3), s.e. sqrt(1/3)/2 = 0.289.
# Relative to the base's 0.25: +0.5 / 0.25 = +200%.
assert "0.750 ± 0.250 (+0.500 ± 0.289, +1.7 s.e., +200.0%)" in row, row
# GenEval: category a differences 0.5, 0 (s.e. 0.25); b 0, 0.5 (s.e. 0.25); overall change
# (0.25 + 0.25) / 2 = 0.25 with s.e. sqrt(0.25² + 0.25²) / 2 = 0.177; the base's overall is
# (0.25 + 0.25) / 2 = 0.25, so +100%.
assert "(+0.250 ± 0.177, +1.4 s.e., +100.0%)" in row, row

# Without item scores the errors are taken as independent: sqrt(0.25² + 0.25²) = 0.354.
for name in results:
    for suite in results[name].values():
        del suite["items"]
row = tuned_row(results)
assert "(+0.500 ± 0.354, +1.4 s.e., +200.0%)" in row, row

# A baseline figure of 0 has no relative change.
results["base"]["mcq"]["accuracy"] = 0.0
assert "(+0.750 ± 0.354, +2.1 s.e.)" in tuned_row(results), tuned_row(results)
print("results_table_test: ok")
