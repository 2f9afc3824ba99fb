#!/usr/bin/env python3
"""Markdown table of a `corl eval` results.json: one row per checkpoint, the three benchmarks with
their standard errors, and each row's change from a baseline row: its standard error, the change
in standard errors of the difference, and the change relative to the baseline's figure (as the
paper quotes its gains).

Every row answers the same suites, so the difference is paired item by item where results.json
holds each item's score (GenEval: per category, the mean of the prompts' differences, the overall
being the mean of the categories; questions: the mean of the 0/1 differences). Older results
without item scores fall back to independent errors, which overstate the error.

  scripts/results_table.py runs/ablation/eval/results.json [--baseline pretrain]
"""
import argparse
import json
import math


def figure(entry, suite):
    if suite == "geneval":
        return entry["geneval"]["overall"], entry["geneval"]["se"]["overall"]
    return entry[suite]["accuracy"], entry[suite]["se"]["accuracy"]


def mean_se(values):
    n = len(values)
    mean = sum(values) / n
    var = sum((v - mean) ** 2 for v in values) / (n - 1) if n > 1 else 0.0
    return mean, math.sqrt(var / n)


def paired_se(entry, base, suite):
    """Standard error of entry - base over the same items, or None without item scores."""
    a, b = entry[suite].get("items"), base[suite].get("items")
    if not a or not b:
        return None
    if suite != "geneval":
        if len(a) != len(b):
            return None
        return mean_se([x - y for x, y in zip(a, b)])[1]
    if set(a) != set(b) or any(len(a[c]) != len(b[c]) for c in a):
        return None
    errors = [mean_se([x - y for x, y in zip(a[c], b[c])])[1] for c in a]
    return math.sqrt(sum(e * e for e in errors)) / len(errors)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results")
    parser.add_argument("--baseline", default=None, help="row the changes are measured from")
    parser.add_argument("--labels", default=None,
                        help="comma-separated row=label pairs for the table's first column; "
                             "the rows follow their order (results.json lists names sorted)")
    args = parser.parse_args()
    with open(args.results) as f:
        results = json.load(f)
    labels = dict(pair.split("=", 1) for pair in args.labels.split(",")) if args.labels else {}
    base = results.get(args.baseline) if args.baseline else None
    suites = [s for s in ("geneval", "mcq", "oe") if all(s in r for r in results.values())]
    header = "| model | " + " | ".join(
        {"geneval": "GenEval overall", "mcq": "MCQ accuracy", "oe": "OE accuracy"}[s]
        for s in suites) + " |"
    print(header)
    print("|---" * (len(suites) + 1) + "|")
    order = [name for name in labels if name in results]
    order += [name for name in results if name not in order]
    for name in order:
        entry = results[name]
        cells = []
        for s in suites:
            value, se = figure(entry, s)
            cell = f"{value:.3f} ± {se:.3f}"
            if base is not None and entry is not base:
                b, bse = figure(base, s)
                dse = paired_se(entry, base, s)
                if dse is None:
                    dse = math.sqrt(se * se + bse * bse)
                z = (value - b) / dse if dse > 0 else 0.0
                relative = f", {100 * (value - b) / b:+.1f}%" if b > 0 else ""
                cell += f" ({value - b:+.3f} ± {dse:.3f}, {z:+.1f} s.e.{relative})"
            cells.append(cell)
        print(f"| {labels.get(name, name)} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
