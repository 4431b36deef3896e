"""``dmplan bench udf``: how long one recalculation of each worksheet function takes, in-process.

Not a test: prints a table. Each function is called as xlwings calls it (2-D lists of floats and
text, empty cells as None) from this process, like Excel's UDF server does; the median and the 90th
percentile of many calls are shown. Target for DMPLAN on the book's 16 segments: under 50 ms.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

# The functions (xlwings, pandas, solvers) load when the benchmark runs, not for ``dmplan --help``.

TARGET_MS = 50.0


def book_arguments() -> tuple[list[list[Any]], list[list[Any]]]:
    """The book's 16 segments (with customer counts) and 3 mailings, shaped as Excel passes them."""
    from dmplan.addin.templates import COUPON_MAILINGS
    from dmplan.solver.coupon.book import book_csv

    counts = Counter((r["age_cat"], r["freq_cat"]) for r in book_csv("customers.csv"))
    segments: list[list[Any]] = [["segment_id", "age_cat", "freq_cat", "customers", "prob_dm1", "prob_dm2", "prob_dm3"]]
    for r in book_csv("visit_probability.csv"):
        key = (r["age_cat"], r["freq_cat"])
        segments.append(
            [float(r["segment_id"]), *key, float(counts[key]), *[float(r[f"prob_dm{d}"]) for d in (1, 2, 3)]]
        )
    mailings: list[list[Any]] = [["mailing", "label", "coupon_value", "cost_per_piece", "min_share"]]
    mailings += [[m, label, float(v), float(c), float(s)] for m, label, v, c, s in COUPON_MAILINGS]
    return segments, mailings


def activities_argument(n: int, seed: int = 0) -> tuple[list[list[Any]], float, float, float]:
    """A paper-style mix instance of ``n`` activities as an Activities range (budget_max, max_changes, budget_min)."""
    from dmplan.solver.mix.generator import InstanceSpec, paper_instance

    p = paper_instance(InstanceSpec(n, "weak", 0.10, 0.5, seed))
    grid: list[list[Any]] = [["activity", "baseline", "min_spend", "max_spend", "min_change", "a", "b", "c"]]
    for i, name in enumerate(p.activity):
        grid.append(
            [
                name,
                *(
                    float(getattr(p, col)[i])
                    for col in ("baseline", "min_spend", "max_spend", "min_change", "a", "b", "c")
                ),
            ]
        )
    return grid, float(p.budget_max or 0), float(p.k), float(p.budget_min or 0)


def timings(call: Callable[[], list[list[Any]]], repeats: int) -> tuple[list[float], list[list[Any]]]:
    out = call()  # warm-up: imports and first-call caches
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = call()
        times.append(1000 * (time.perf_counter() - start))
    return times, out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--repeats", type=int, default=200, help="calls of DMPLAN to time")
    parser.add_argument("--mix-repeats", type=int, default=10, help="calls of MIXPLAN to time")
    parser.add_argument("--activities", type=int, default=200, help="activities of the MIXPLAN instance")


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from dmplan.addin import udf

    console = Console(width=max(160, Console().width))  # tables stay readable in a log file
    segments, mailings = book_arguments()
    table = Table(title="Worksheet functions, one call in-process (milliseconds)")
    for col in ("call", "input", "calls", "median ms", "p90 ms", "result"):
        table.add_column(col, justify="right")
    cases: list[tuple[str, str, Callable[[], list[list[Any]]], int]] = [
        ("DMPLAN", "16 segments x 3 mailings", lambda: udf.dmplan_udf(segments, mailings, 1_000_000.0), args.repeats),
        (
            "DMPARETO",
            "16 x 3, 20 budgets",
            lambda: udf.dmpareto_udf(segments, mailings, None, None, 20.0),
            max(5, args.repeats // 10),
        ),
    ]
    grid, budget_max, max_changes, budget_min = activities_argument(args.activities)
    cases.append(
        (
            "MIXPLAN",
            f"{args.activities} activities, K={max_changes:.0f}",
            lambda: udf.mixplan_udf(grid, budget_max, max_changes, None, budget_min),
            args.mix_repeats,
        )
    )
    from dmplan.addin import templates

    # the mix template's own tables
    rows = templates.example_activities()
    activities = [list(templates.MIX_HEADER), *[[float(v) if isinstance(v, int) else v for v in r] for r in rows]]
    rules = [["rule", "column", "match", "lower", "upper", "on"], *templates.example_rules(rows)]
    total = sum(r[5] for r in rows)
    cases.append(
        (
            "MIXPLAN",
            f"mix template: {len(rows)} activities, {len(rules) - 1} rules, K=25%",
            lambda: udf.mixplan_udf(activities, 1.01 * total, float(len(rows) // 4), rules, 0.99 * total),
            args.mix_repeats,
        )
    )
    failed = False
    for name, what, call, repeats in cases:
        times, out = timings(call, repeats)
        first = str(out[0][0]) if out and out[0] else ""
        if first.startswith(udf.PREFIX):
            result, failed = first[:80], failed or name == "DMPLAN"
        else:
            result = f"{len(out)} x {len(out[0])} spilled"
            if name == "MIXPLAN":
                result += f", {out[-1][1]}, gap {out[-1][3]:.2e}" if out[-1][3] != "" else f", {out[-1][1]}"
        median = statistics.median(times)
        p90 = sorted(times)[int(0.9 * (len(times) - 1))]
        table.add_row(name, what, str(repeats), f"{median:.1f}", f"{p90:.1f}", result)
        if name == "DMPLAN" and median > TARGET_MS:
            console.print(f"[red]DMPLAN median {median:.1f} ms is above the {TARGET_MS:.0f} ms target[/]")
    console.print(table)
    return 1 if failed else 0
