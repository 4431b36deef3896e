"""The ``dmplan`` command line: solve a workbook, write templates, run the demo and benchmarks.

Exit codes: 0 solved; 1 internal error; 2 bad input (tables, settings, options, an unusable file or
folder); 3 infeasible; 4 time limit without a plan. No traceback reaches the user unless ``--debug``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import traceback
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_INTERNAL, EXIT_INPUT, EXIT_INFEASIBLE, EXIT_NO_PLAN = 0, 1, 2, 3, 4


def _console(stderr: bool = True) -> Any:
    from rich.console import Console

    return Console(stderr=stderr, highlight=False)


def exit_code(runs: Sequence[Any]) -> int:
    from dmplan.solver.common import Status

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
    from rich.progress import Progress as Bar
    from rich.progress import SpinnerColumn, TextColumn, TimeElapsedColumn

    with Bar(
        SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=_console(), transient=True
    ) as bar:
        task = bar.add_task("solving", total=None)

        def report(event: Any) -> None:
            text = event.message
            if event.objective is not None:
                text += f"  objective {event.objective:,.2f}"
            if event.bound is not None:
                text += f"  bound {event.bound:,.2f}"
            if event.gap is not None:
                text += f"  gap {100 * event.gap:.4f}%"
            bar.update(task, description=text)

        yield report


def print_summary(result: Any) -> None:
    from rich.markup import escape
    from rich.table import Table as RichTable

    table = RichTable(title=f"DMPlan results written to {result.target}")
    for column in ("model", "status", "objective", "bound", "gap", "seconds"):
        table.add_column(column)
    notes = []
    for run in result.runs:
        s = run.summary
        gap = s.get("gap")
        if run.reason:
            notes.append(f"{run.model}: no plan: {run.reason}")
        elif run.model == "coupon":
            details = f"budget used {s['budget_used']:,.2f} of {s['budget']:,.2f}; shadow price {s['shadow_price']:.6g}"
            if s.get("customer_objective") is not None:
                details += f"; customer-level {s['customer_objective']:,.2f} (gap {100 * s['customer_gap']:.4f}%)"
            notes.append(f"coupon: {details}")
        elif run.model == "mix":
            notes.append(f"mix: {s.get('changes')} of {s.get('activities')} activities changed")
        table.add_row(
            run.model,
            run.status.value,
            _fmt(s.get("objective")),
            _fmt(s.get("bound")),
            "" if gap is None else f"{100 * gap:.4f}%",
            f"{s.get('seconds', 0):.2f}",
        )
    out = _console(stderr=False)
    out.print(table)
    for note in notes:
        out.print(escape(note))
    out.print(escape("sheets written: " + ", ".join(result.sheets)))


def say(text: str) -> None:
    """A message on stderr, unwrapped (a message names cells; a terminal may wrap it, we do not)."""
    print(text, file=sys.stderr, flush=True)


def print_warnings(warnings: Sequence[str]) -> None:
    for text in warnings:
        say(f"Warning: {text}")


def _fmt(value: Any) -> str:
    return "" if value is None else f"{value:,.2f}"


def seconds(text: str) -> float:
    """argparse type of --time-limit: a positive, finite number of seconds."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text} is not a positive number of seconds (e.g. 60)")
    return value


def check_summary_path(path: Path) -> None:
    """Fail before solving when the summary JSON cannot be written."""
    from dmplan.addin.contract import WorkbookError

    if not path.parent.is_dir():
        raise WorkbookError(f"the folder {path.parent} of --summary-json does not exist.", fix="Create it first.")
    if path.is_dir():
        raise WorkbookError(f"--summary-json {path} is a folder.", fix="Name a file, e.g. summary.json.")
    if not os.access(path.parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise WorkbookError(f"--summary-json {path} cannot be written (read-only).", fix="Choose another path.")


def write_json(path: Path, data: Any) -> None:
    """Write through a temporary file in the same folder, so a failure leaves no partial file."""
    from dmplan.addin.workbook import new_file_mode  # loaded already: the workbook was just written

    fd, tmp = tempfile.mkstemp(prefix=f".~{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2, default=float)
        os.chmod(tmp, new_file_mode())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def cmd_solve(args: argparse.Namespace) -> int:
    from dmplan.addin.contract import RunOptions
    from dmplan.addin.pipeline import solve_file

    book = Path(args.book)
    out = Path(args.output) if args.output else None
    summary_path = Path(args.summary_json) if args.summary_json else None
    if summary_path is not None:
        check_summary_path(summary_path)
    with progress_bar(not args.quiet) as report:
        options = RunOptions(
            time_limit=args.time_limit,
            solver=args.solver,
            progress=report,
            customers_file=Path(args.customers).resolve() if args.customers else None,
            mailing_list_file=Path(args.mailing_list).resolve() if args.mailing_list else None,
            dask_scheduler=args.dask,
        )
        result = solve_file(book, out, options)
    if summary_path is not None:
        write_json(summary_path, {"models": [r.summary for r in result.runs], "warnings": result.warnings})
    print_warnings(result.warnings)
    if not args.quiet:
        print_summary(result)
    else:
        for run in result.runs:
            if run.reason:
                say(f"{run.model}: no plan: {run.reason}")
    return exit_code(result.runs)


def cmd_template(args: argparse.Namespace) -> int:
    from dmplan.addin.templates import write_template

    path = write_template(args.model, Path(args.output), replace=args.force)
    say(f"wrote the {args.model} template to {path}")
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    from dmplan.addin.templates import write_template

    path = Path(args.output)
    write_template("demo", path, replace=True)
    say(f"built the demo workbook {path}; solving it")
    # solve it as `dmplan solve` would: every solve option at its default, the demo's own ones kept
    solve = build_parser().parse_args(["solve", str(path)])
    solve.time_limit, solve.summary_json, solve.quiet = args.time_limit, args.summary_json, args.quiet
    return cmd_solve(solve)


def cmd_curves(args: argparse.Namespace) -> int:
    """``dmplan curves robyn DIR --solid ID [--periods N] -o BOOK``: Robyn's curves into a workbook."""
    from dmplan.addin.mmm import import_robyn, write_book

    imported = import_robyn(
        Path(args.folder), args.solid, periods=args.periods, window_start=args.window_start, window_end=args.window_end
    )
    written = write_book(imported, Path(args.output))
    say(imported.summary())
    say(f"wrote {', '.join(written)} to {args.output}")
    return EXIT_OK


def periods(text: str) -> int:
    """argparse type of --periods: a whole number of periods, 1 or more."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of periods") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not 1 or more")
    return value


def cmd_bench(args: argparse.Namespace) -> int:
    return int(args.bench_run(args))


BENCHMARKS = {
    "coupon": ("dmplan.bench.coupon", "segment LP and customer lists"),
    "mix": ("dmplan.bench.mix", "MISOCP vs MIQP, backends, Pareto"),
    "udf": ("dmplan.bench.udf", "worksheet functions: time per call in-process"),
    "retailer-book": ("dmplan.bench.retailer_book", "dmplan solve --time-limit T on the retailer workbook"),
    "startup": ("dmplan.bench.startup", "start-up: dmplan --help, import dmplan, the button's first message"),
    "curves": ("dmplan.bench.curves", "plans on fitted response curves: share of the true optimum's lift"),
    "workbook": ("dmplan.bench.workbook", "a large Customers workbook end to end: openpyxl path vs package path"),
}


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dmplan", description="Exact marketing-budget optimisation for workbooks.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of unexpected errors")
    sub = parser.add_subparsers(dest="command", required=True)

    solve = sub.add_parser("solve", help="solve every model whose input tables the workbook holds")
    solve.add_argument("book", help="workbook (.xlsx or .xlsm)")
    solve.add_argument("-o", "--output", help="write the result here instead of back into BOOK")
    solve.add_argument("--summary-json", help="write a JSON summary of every model to this path")
    solve.add_argument(
        "--time-limit", type=seconds, help="seconds for each model's whole run, sweep included (overrides Settings)"
    )
    solve.add_argument("--solver", help="solver backend (overrides the Settings table)")
    solve.add_argument(
        "--customers",
        metavar="PATH",
        help="customer list: a CSV/Parquet file, a folder or a glob (instead of a Customers table)",
    )
    solve.add_argument(
        "--mailing-list", metavar="PATH", help="write the customer-level mailing list to this .csv/.parquet file"
    )
    solve.add_argument(
        "--dask",
        metavar="ADDRESS",
        help="plan the --customers files on this Dask scheduler (tcp://host:8786, or 'local' for this machine)",
    )
    solve.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary table")
    solve.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    solve.set_defaults(func=cmd_solve)

    template = sub.add_parser("template", help="write a workbook template")
    template.add_argument("model", choices=("coupon", "mix", "demo"))
    template.add_argument("-o", "--output", required=True)
    template.add_argument("--force", action="store_true", help="replace an existing file")
    template.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    template.set_defaults(func=cmd_template)

    demo = sub.add_parser("demo", help="build the default workbook, solve it and print a summary")
    demo.add_argument("-o", "--output", default="dmplan-demo.xlsx")
    demo.add_argument("--time-limit", type=seconds)
    demo.add_argument("--summary-json")
    demo.add_argument("-q", "--quiet", action="store_true")
    demo.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    demo.set_defaults(func=cmd_demo)

    curves = sub.add_parser("curves", help="import response curves from a marketing-mix model into a workbook")
    curves_sub = curves.add_subparsers(dest="tool", required=True)
    robyn = curves_sub.add_parser("robyn", help="a finished Robyn run's CSV exports (pareto_*.csv)")
    robyn.add_argument("folder", help="the run's export folder (OutputCollect$plot_folder)")
    robyn.add_argument("--solid", required=True, help="the model id (solID), e.g. 1_100_5")
    robyn.add_argument("--periods", type=periods, help="periods in the planning horizon (default: the model window)")
    robyn.add_argument("--window-start", help="first ds of the model window (Robyn <= 3.11 without its JSON)")
    robyn.add_argument("--window-end", help="last ds of the model window")
    robyn.add_argument("-o", "--output", required=True, help="workbook to write the Curves (and Activities) into")
    robyn.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    robyn.set_defaults(func=cmd_curves)

    bench = sub.add_parser("bench", help="benchmarks (print tables of times and gaps)")
    bench_sub = bench.add_subparsers(dest="model", required=True)
    wanted = list(argv or [])
    for name, (module, help_text) in BENCHMARKS.items():
        bench_parser = bench_sub.add_parser(name, help=help_text)
        if "bench" in wanted and name in wanted:  # import a benchmark only when it runs
            import importlib

            loaded = importlib.import_module(module)
            loaded.add_arguments(bench_parser)
            bench_parser.set_defaults(func=cmd_bench, bench_run=loaded.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(argv).parse_args(argv)
    debug = bool(getattr(args, "debug", False))
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        say("Stopped (Ctrl+C); no file was changed.")
        return 130
    except Exception as error:
        from dmplan.solver.common import InputError

        if debug:
            traceback.print_exc()
        if isinstance(error, InputError):
            from dmplan.addin.contract import NoModelError

            label = "Nothing to solve" if isinstance(error, NoModelError) else "Bad input"
            say(f"{label}: {error}")
            return EXIT_INPUT
        say(
            f"DMPlan stopped with an unexpected error ({type(error).__name__}: {error}). No file was changed. "
            "Run again with --debug for details."
        )
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
