#!/usr/bin/env python3
"""Where a model's ShapeWorld answers go wrong: perception (the objects its reasoning lists) or
reasoning (the answer drawn from that list).

Reads the answers/<model>/<suite>.jsonl files that `corl eval` writes and prints, per question
kind: accuracy; how often the reasoning's "The image shows …" list names exactly the scene's
objects (as the gold reasoning lists them, in any order); the accuracy when the list is right;
and, on scenes of one object, how often its colour and its shape are read right.

    scripts/answer_errors.py runs/eval/answers/pretrain/oe.jsonl runs/eval/answers/unified/oe.jsonl
"""
import argparse
import json
import re
import sys

KINDS = ("count", "color", "shape", "position", "existence")
_LIST = re.compile(r"The image shows (.*?)\.")
_SPLIT = re.compile(r", | and ")


def objects(text):
    """The objects a reasoning lists, as (colour, shape) pairs in its order; None when it lists none."""
    found = _LIST.search(text)
    if not found:
        return None
    pairs = []
    for phrase in _SPLIT.split(found.group(1)):
        words = phrase.split()
        pairs.append((words[-2], words[-1]) if len(words) >= 2 else (None, phrase))
    return pairs


def summarise(rows):
    """Per kind (and "all"): n, accuracy, list_right, accuracy_given_list, and on one-object scenes
    n_single, colour, shape."""
    # Each answer read once: (kind, right, gold's objects, the completion's objects).
    read = [(r.get("kind"), bool(r["right"]), objects(r["gold"]), objects(r["completion"]))
            for r in rows]
    table = {}
    for kind in KINDS + ("all",):
        chosen = [a for a in read if kind == "all" or a[0] == kind]
        if not chosen:
            continue
        n = len(chosen)
        listed_right = [right for _, right, gold, seen in chosen
                        if gold is not None and sorted(gold) == sorted(seen or [])]
        single = [(gold[0], seen[0]) for _, _, gold, seen in chosen
                  if gold and len(gold) == 1 and seen]
        entry = {"n": n, "accuracy": sum(a[1] for a in chosen) / n,
                 "list_right": len(listed_right) / n,
                 "accuracy_given_list": (sum(listed_right) / len(listed_right)
                                         if listed_right else None),
                 "n_single": len(single)}
        if single:
            entry["colour"] = sum(g[0] == c[0] for g, c in single) / len(single)
            entry["shape"] = sum(g[1] == c[1] for g, c in single) / len(single)
        table[kind] = entry
    return table


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="+", help="answers/<model>/<suite>.jsonl from corl eval")
    args = parser.parse_args(argv)
    fmt = lambda v: "–" if v is None else f"{v:.3f}"
    print("| file | kind | n | accuracy | list right | accuracy if list right "
          "| one object: colour | one object: shape |")
    print("|---|---|---|---|---|---|---|---|")
    for path in args.files:
        try:
            rows = [json.loads(line) for line in open(path) if line.strip()]
        except (OSError, json.JSONDecodeError) as error:
            sys.exit(f"answer_errors: {path}: {error}")
        for kind, e in summarise(rows).items():
            print(f"| {path} | {kind} | {e['n']} | {fmt(e['accuracy'])} | {fmt(e['list_right'])} "
                  f"| {fmt(e['accuracy_given_list'])} | {fmt(e.get('colour'))} "
                  f"| {fmt(e.get('shape'))} |")


if __name__ == "__main__":
    main()
