#!/usr/bin/env python3
"""Markdown table of a `corl eval` results.json: one row per checkpoint, the three benchmarks with
their standard errors, and each row's change from a baseline row in standard errors of the
difference (taken as independent, which is conservative: every row answers the same suites).

  scripts/results_table.py runs/ablation/eval/results.json [--baseline pretrain]
"""
import argparse
import json
import math


def figure(entry, suite):
    if suite == "geneval":
        return entry["geneval"]["overall"], entry["geneval"]["se"]["overall"]
    return entry[suite]["accuracy"], entry[suite]["se"]["accuracy"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results")
    parser.add_argument("--baseline", default=None, help="row the changes are measured from")
    parser.add_argument("--labels", default=None,
                        help="comma-separated row=label pairs for the table's first column")
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
    for name, entry in results.items():
        cells = []
        for s in suites:
            value, se = figure(entry, s)
            cell = f"{value:.3f} ± {se:.3f}"
            if base is not None and entry is not base:
                b, bse = figure(base, s)
                z = (value - b) / math.sqrt(se * se + bse * bse) if se + bse > 0 else 0.0
                cell += f" ({value - b:+.3f}, {z:+.1f} s.e.)"
            cells.append(cell)
        print(f"| {labels.get(name, name)} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
