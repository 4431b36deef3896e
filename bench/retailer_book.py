"""``dmplan bench retailer-book``: the wall time of ``dmplan solve --time-limit T`` on the retailer case.

The retailer-sized marketing-mix case (3,000 activities, about 2,600 group rules,
:func:`dmplan.solver.mix.generator.retailer_instance`) is written as a real workbook: an Activities
table with one attribute column per rule family and a Rules table whose rules match those columns, as
a user would build it. Each run is the command a user types, in a fresh process, timed from outside;
the table shows the limit, the wall time, and the part of it spent outside the model run (start-up,
reading, writing).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from openpyxl import Workbook
from rich.console import Console
from rich.table import Table

from dmplan.solver.mix.generator import retailer_instance


def write_retailer_book(path: Path, seed: int = 0) -> int:
    """The retailer case as a workbook; returns the number of rules."""
    case = retailer_instance(seed)
    p = case.problem
    families = sorted({rule.name.rsplit(" ", 1)[0] for rule in p.rules})
    labels: dict[str, list[str]] = {family: [""] * p.n for family in families}
    rule_rows = []
    for rule in p.rules:
        family, label = rule.name.rsplit(" ", 1)
        for row in np.flatnonzero(rule.weights).tolist():
            labels[family][row] = label
        rule_rows.append([rule.name, family, label, rule.lower, rule.upper, rule.on])
    wb = Workbook()
    acts = wb.active
    acts.title = "Activities"
    acts.append(["activity", *families, "baseline", "min_spend", "max_spend", "min_change", "a", "b", "c"])
    for i in range(p.n):
        acts.append(
            [
                p.activity[i],
                *[labels[f][i] for f in families],
                float(p.baseline[i]),
                float(p.min_spend[i]),
                float(p.max_spend[i]),
                float(p.min_change[i]),
                float(p.a[i]),
                float(p.b[i]),
                float(p.c[i]),
            ]
        )
    rules = wb.create_sheet("Rules")
    rules.append(["rule", "column", "match", "lower", "upper", "on"])
    for rule_row in rule_rows:
        rules.append(rule_row)
    settings = wb.create_sheet("Settings")
    settings.append(["setting", "value"])
    for key, value in (
        ("budget_max", p.budget_max),
        ("budget_min", p.budget_min),
        ("max_changes", p.k),
        ("pareto_points", 20),
    ):
        settings.append([key, value])
    wb.save(path)
    return len(rule_rows)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--limits", default="10,30", help="time limits in seconds (comma separated)")
    parser.add_argument("--seed", type=int, default=0)


def run(args: argparse.Namespace) -> int:
    console = Console(width=max(140, Console().width))
    folder = Path(tempfile.mkdtemp(prefix="dmplan-retailer-"))
    book = folder / "retailer.xlsx"
    start = time.perf_counter()
    rules = write_retailer_book(book, args.seed)
    console.print(
        f"retailer workbook: 3,000 activities, {rules:,} rules, written in {time.perf_counter() - start:.1f} s"
    )
    table = Table(title="dmplan solve --time-limit T on the retailer workbook (fresh process, wall time)")
    for column in ("T s", "wall s", "over T s", "model run s", "status", "gap", "pareto points with a plan", "exit"):
        table.add_column(column, justify="right")
    for limit in [float(x) for x in args.limits.split(",")]:
        out, summary = folder / f"out-{limit:g}.xlsx", folder / f"summary-{limit:g}.json"
        command = [sys.executable, "-m", "dmplan", "solve", str(book), "-o", str(out), "-q"]
        command += ["--time-limit", f"{limit:g}", "--summary-json", str(summary)]
        start = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, stdin=subprocess.DEVNULL)
        wall = time.perf_counter() - start
        model = json.loads(summary.read_text())["models"][0] if summary.exists() else {}
        points = model.get("pareto", [])
        table.add_row(
            f"{limit:g}",
            f"{wall:.1f}",
            f"{wall - limit:+.1f}",
            f"{model.get('seconds', float('nan')):.1f}",
            str(model.get("status")),
            "" if model.get("gap") is None else f"{100 * model['gap']:.3f}%",
            f"{sum(1 for pt in points if pt.get('has_plan'))} of {len(points)}",
            str(done.returncode),
        )
        if done.returncode not in (0, 4):
            console.print(done.stderr[-2000:])
    console.print(table)
    return 0
