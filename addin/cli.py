"""The ``dmplan`` command line: solve a workbook, write templates, run the demo and benchmarks.

Exit codes: 0 solved; 2 bad input; 3 infeasible; 4 time limit without a plan.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import Progress as Bar
from rich.progress import SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table as RichTable

from dmplan.addin.run import ModelRun, NoModelError, RunOptions, solve_file
from dmplan.solver.common import InputError, Progress, Status

EXIT_OK, EXIT_INPUT, EXIT_INFEASIBLE, EXIT_NO_PLAN = 0, 2, 3, 4
console = Console(stderr=True)


def exit_code(runs: Sequence[ModelRun]) -> int:
    statuses = {run.status for run in runs}
    if Status.INFEASIBLE in statuses:
        return EXIT_INFEASIBLE
    if Status.TIME_LIMIT in statuses or Status.ERROR in statuses:
        return EXIT_NO_PLAN
    return EXIT_OK


@contextmanager
def progress_bar(enabled: bool = True) -> Iterator[Any]:
    """A spinner line with elapsed time, objective, bound and gap of long solves (stderr)."""
    if not enabled:
        yield None
        return
    with Bar(
        SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console, transient=True
    ) as bar:
        task = bar.add_task("solving", total=None)

        def report(event: Progress) -> None:
            text = event.message
            if event.objective is not None:
                text += f"  objective {event.objective:,.2f}"
            if event.bound is not None:
                text += f"  bound {event.bound:,.2f}"
            if event.gap is not None:
                text += f"  gap {100 * event.gap:.4f}%"
            bar.update(task, description=text)

        yield report


def print_summary(runs: Sequence[ModelRun], target: Path) -> None:
    table = RichTable(title=f"DMPlan results written to {target}")
    for column in ("model", "status", "objective", "bound", "gap", "seconds"):
        table.add_column(column)
    notes = []
    for run in runs:
        s = run.summary
        gap = s.get("gap")
        details = ""
        if run.model == "coupon":
            details = f"budget used {s['budget_used']:,.2f} of {s['budget']:,.2f}; shadow price {s['shadow_price']:.6g}"
            if "customer_objective" in s and s["customer_objective"] is not None:
                details += f"; customer-level {s['customer_objective']:,.2f} (gap {100 * s['customer_gap']:.4f}%)"
        elif run.model == "mix":
            details = f"{s.get('changes')} activities changed"
        notes.append(f"{run.model}: {details}")
        table.add_row(
            run.model,
            run.status.value,
            _fmt(s.get("objective")),
            _fmt(s.get("bound")),
            "" if gap is None else f"{100 * gap:.4f}%",
            f"{s.get('seconds', 0):.2f}",
        )
    out = Console()
    out.print(table)
    for note in notes:
        out.print(note, highlight=False)
    out.print("sheets written: " + ", ".join(sheet.name for run in runs for sheet in run.sheets), highlight=False)


def _fmt(value: Any) -> str:
    return "" if value is None else f"{value:,.2f}"


def cmd_solve(args: argparse.Namespace) -> int:
    book = Path(args.book)
    out = Path(args.output) if args.output else None
    with progress_bar(not args.quiet) as report:
        options = RunOptions(time_limit=args.time_limit, solver=args.solver, progress=report)
        runs = solve_file(book, out, options)
    if args.summary_json:
        Path(args.summary_json).write_text(json.dumps({"models": [r.summary for r in runs]}, indent=2, default=float))
    if not args.quiet:
        print_summary(runs, out or book)
    return exit_code(runs)


def cmd_template(args: argparse.Namespace) -> int:
    from dmplan.addin.templates import write_template

    path = write_template(args.model, Path(args.output))
    console.print(f"wrote the {args.model} template to {path}")
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    from dmplan.addin.templates import write_template

    path = Path(args.output)
    write_template("demo", path)
    console.print(f"built the demo workbook {path}; solving it")
    args.book, args.output, args.solver = str(path), None, None
    return cmd_solve(args)


def cmd_bench(args: argparse.Namespace) -> int:
    if args.model == "coupon":
        from dmplan.bench import coupon as bench_coupon

        return bench_coupon.run(args)
    if args.model == "udf":
        from dmplan.bench import udf as bench_udf

        return bench_udf.run(args)
    from dmplan.bench import mix as bench_mix

    return bench_mix.run(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dmplan", description="Exact marketing-budget optimisation for workbooks.")
    sub = parser.add_subparsers(dest="command", required=True)

    solve = sub.add_parser("solve", help="solve every model whose input tables the workbook holds")
    solve.add_argument("book", help="workbook (.xlsx or .xlsm)")
    solve.add_argument("-o", "--output", help="write the result here instead of back into BOOK")
    solve.add_argument("--summary-json", help="write a JSON summary of every model to this path")
    solve.add_argument("--time-limit", type=float, help="seconds per model (overrides the Settings table)")
    solve.add_argument("--solver", help="solver backend (overrides the Settings table)")
    solve.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary table")
    solve.set_defaults(func=cmd_solve)

    template = sub.add_parser("template", help="write a workbook template")
    template.add_argument("model", choices=("coupon", "mix", "demo"))
    template.add_argument("-o", "--output", required=True)
    template.set_defaults(func=cmd_template)

    demo = sub.add_parser("demo", help="build the default workbook, solve it and print a summary")
    demo.add_argument("-o", "--output", default="dmplan-demo.xlsx")
    demo.add_argument("--time-limit", type=float)
    demo.add_argument("--summary-json")
    demo.add_argument("-q", "--quiet", action="store_true")
    demo.set_defaults(func=cmd_demo)

    bench = sub.add_parser("bench", help="benchmarks (print tables of times and gaps)")
    bench_sub = bench.add_subparsers(dest="model", required=True)
    from dmplan.bench import coupon as bench_coupon

    bench_coupon.add_arguments(bench_sub.add_parser("coupon", help="segment LP and customer lists"))
    from dmplan.bench import udf as bench_udf

    bench_udf.add_arguments(bench_sub.add_parser("udf", help="worksheet functions: time per call in-process"))
    try:
        from dmplan.bench import mix as bench_mix
    except ImportError:
        pass
    else:
        bench_mix.add_arguments(bench_sub.add_parser("mix", help="MISOCP vs MIQP, backends, Pareto"))
    bench.set_defaults(func=cmd_bench)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except InputError as error:
        console.print(f"[bold red]Bad input:[/] {escape(str(error))}", highlight=False)
        return EXIT_INPUT
    except NoModelError as error:
        console.print(f"[bold red]Nothing to solve:[/] {escape(str(error))}", highlight=False)
        return EXIT_INPUT


if __name__ == "__main__":
    sys.exit(main())
