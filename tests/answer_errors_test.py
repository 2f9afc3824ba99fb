"""scripts/answer_errors.py: per-kind accuracy, object-list agreement and one-object colour and
shape reading, worked out by hand for four answers."""
import json
import os
import subprocess
import sys
import tempfile

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts", "answer_errors.py")

def row(question_kind, gold, completion, right):
    return {"question": "q", "kind": question_kind, "gold": gold, "completion": completion,
            "right": right}

rows = [
    # One object: colour right, shape wrong, answer right.
    row("color", "<think>The image shows a red circle. It is red.</think><answer>red</answer>",
        "<think>The image shows a red square. It is red.</think><answer>red</answer>", True),
    # One object: both wrong, answer wrong.
    row("color", "<think>The image shows a blue diamond. It is blue.</think><answer>blue</answer>",
        "<think>The image shows a green circle. It is green.</think><answer>green</answer>", False),
    # Two objects listed right in another order; answer wrong.
    row("count", "<think>The image shows a red circle and an orange square. That is two objects "
        "in all.</think><answer>2</answer>",
        "<think>The image shows an orange square and a red circle. Counting gives one.</think>"
        "<answer>1</answer>", False),
    # Three objects, one missing from the list; answer right.
    row("count", "<think>The image shows a red circle, a red circle and a blue square. That is "
        "three.</think><answer>3</answer>",
        "<think>The image shows a red circle and a blue square. That is three.</think>"
        "<answer>3</answer>", True),
]

with tempfile.TemporaryDirectory() as tmp:
    path = os.path.join(tmp, "oe.jsonl")
    with open(path, "w") as f:
        f.write("".join(json.dumps(r) + "\n" for r in rows))
    table = subprocess.run([sys.executable, SCRIPT, path], check=True, capture_output=True,
                           text=True).stdout
lines = {line.split("|")[2].strip(): line for line in table.splitlines()[2:]}
# color: 1 of 2 right; no list right; one-object colour 1/2, shape 0/2.
assert "| color | 2 | 0.500 | 0.000 | – | 0.500 | 0.000 |" in lines["color"], lines["color"]
# count: 1 of 2 right; the first list is right (order ignored) and its answer wrong.
assert "| count | 2 | 0.500 | 0.500 | 0.000 | – | – |" in lines["count"], lines["count"]
# all: 2 of 4 right, 1 of 4 lists right.
assert "| all | 4 | 0.500 | 0.250 | 0.000 | 0.500 | 0.000 |" in lines["all"], lines["all"]

# A file that is not JSON lines is refused with its path.
with tempfile.TemporaryDirectory() as tmp:
    bad = os.path.join(tmp, "bad.jsonl")
    open(bad, "w").write("not json\n")
    run = subprocess.run([sys.executable, SCRIPT, bad], capture_output=True, text=True)
    assert run.returncode != 0 and "bad.jsonl" in run.stderr, run
print("answer_errors_test: ok")
