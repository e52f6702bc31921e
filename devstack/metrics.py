"""The app's CloudWatch metrics, offline: the dev stack keeps every EMF line its services
print in `.devstack/metrics.jsonl` (one file per run), and this sums them.

    python -m devstack.metrics [FILE]      (make metrics)

Each row is one metric under one set of dimensions, as CloudWatch would aggregate it:
samples, sum, and for durations the average and the largest.
"""
import argparse
import collections
import json
import os
import sys
import threading

from devstack.run import ROOT

DEFAULT_FILE = os.path.join(ROOT, ".devstack", "metrics.jsonl")


class MetricsFile:
    """Where the dev stack writes the EMF lines of this run (emptied at start)."""

    def __init__(self, path):
        self.path = path
        os.makedirs(os.path.dirname(path), exist_ok=True)
        self._lock = threading.Lock()
        with open(path, "w"):
            pass

    def offer(self, line):
        """Keep `line` if it is an EMF line; the services' other output is not metrics."""
        if not line.startswith('{"_aws"'):
            return
        with self._lock, open(self.path, "a") as handle:
            handle.write(line.rstrip("\n") + "\n")


def datapoints(lines):
    """(metric, dimensions, value, unit) for each metric and dimension set of each EMF line."""
    for line in lines:
        try:
            emf = json.loads(line)
            directives = emf["_aws"]["CloudWatchMetrics"]
        except (ValueError, KeyError, TypeError):
            continue
        for directive in directives:
            for dimension_set in directive["Dimensions"]:
                dims = tuple((key, emf[key]) for key in dimension_set)
                for metric in directive["Metrics"]:
                    yield metric["Name"], dims, emf[metric["Name"]], metric.get("Unit", "None")


def summarize(lines):
    """{(metric, dimensions): {"samples", "sum", "max", "unit"}} over every dimension set."""
    table = collections.defaultdict(lambda: {"samples": 0, "sum": 0.0, "max": None, "unit": None})
    for name, dims, value, unit in datapoints(lines):
        row = table[(name, dims)]
        row["samples"] += 1
        row["sum"] += value
        row["max"] = value if row["max"] is None else max(row["max"], value)
        row["unit"] = unit
    return dict(table)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m devstack.metrics", description=__doc__.split("\n")[0])
    parser.add_argument("file", nargs="?", default=DEFAULT_FILE)
    args = parser.parse_args(argv)
    if not os.path.exists(args.file):
        print(f"No metrics yet: {args.file} does not exist. Run `make dev`, sign in on the page, then this.",
              file=sys.stderr)
        return 1
    with open(args.file) as handle:
        table = summarize(handle)
    if not table:
        print("No metrics recorded in this run yet: sign in on the page, then run this again.")
        return 0
    print(f"{'metric':<26} {'dimensions':<52} {'samples':>7} {'sum':>10} {'avg':>9} {'max':>9}")
    for (name, dims), row in sorted(table.items()):
        where = ", ".join(f"{k}={v}" for k, v in dims if k != "Stage") or "(all)"
        if row["unit"] == "Milliseconds":
            avg = row["sum"] / row["samples"]
            print(f"{name:<26} {where:<52} {row['samples']:>7} {row['sum']:>10.1f} {avg:>9.1f} {row['max']:>9.1f}")
        else:
            print(f"{name:<26} {where:<52} {row['samples']:>7} {row['sum']:>10g} {'':>9} {'':>9}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
