"""``dmplan bench startup``: how long users wait before DMPlan answers (issue 12's start-up targets).

Every figure is measured in fresh interpreters (``-X importtime`` aside, nothing is cached between
runs except the OS's file cache) and printed beside its reference measured in the same run:

* ``python -c pass``: the interpreter alone, which no DMPlan change can avoid;
* ``dmplan --help`` (``python -m dmplan --help``), target under 0.5 s;
* ``import xlwings`` and ``import xlwings, dmplan`` (what the ribbon button and the function server
  import), target: DMPlan adds at most 0.3 s to xlwings alone;
* the ribbon button: from ``dmplan.main()`` to the first status-bar message, target under 1 s.
  There is no Excel here, so the button runs on xlwings' remote engine (``xw.Book(json=...)``,
  with the free ``noncommercial`` key set in that subprocess only) on the coupon template's data,
  ``xw.Book.caller`` returning that book, and the status bar replaced by a recorder that stops the
  run at the first message (the remote engine has no status bar).

Usage: ``dmplan bench startup [--repeat N]`` (or ``python -m dmplan.bench.startup``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

BUTTON = "button: main() to first status"
TARGET_HELP = 0.5
TARGET_IMPORT_OVER_XLWINGS = 0.3
TARGET_FIRST_STATUS = 1.0

#: Run in a fresh interpreter: prints the seconds from dmplan.main() to the first status-bar message.
BUTTON_CODE = r"""
import json, sys, time
import xlwings as xw
import dmplan

class FirstMessage(BaseException):
    "Stops the run at the first status-bar message (not an Exception: main() must not catch it)."

book = xw.Book(json=json.load(open(sys.argv[1], encoding="utf-8")))
seen = []

def record(app, text):
    seen.append((time.perf_counter(), text))
    raise FirstMessage

type(book.app).status_bar = property(lambda app: None, record)
xw.Book.caller = staticmethod(lambda: book)
start = time.perf_counter()
try:
    dmplan.main()
except FirstMessage:
    pass
if not seen:
    raise SystemExit("dmplan.main() returned without a status-bar message")
print(json.dumps({"seconds": seen[0][0] - start, "message": seen[0][1]}))
"""


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("XLWINGS_LICENSE_KEY", None)
    return env


def timed(args: list[str], env: dict[str, str] | None = None) -> float:
    """Wall time of one fresh process (seconds); raises when it fails."""
    import time

    start = time.perf_counter()
    proc = subprocess.run(args, capture_output=True, text=True, env=env or _env(), stdin=subprocess.DEVNULL)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:4])} ... failed: {proc.stderr[-2000:]}")
    return seconds


def book_payload(path: Path) -> dict[str, Any]:
    """What xlwings' Office Scripts client sends for ``path``: values from A1 and the Excel tables."""
    import openpyxl
    import xlwings as xw

    wb = openpyxl.load_workbook(path, data_only=True)
    sheets = []
    for ws in wb.worksheets:
        rows = ws.iter_rows(min_row=1, min_col=1, max_row=ws.max_row, max_col=ws.max_column, values_only=True)
        values = [["" if v is None else v for v in row] for row in rows] or [[]]
        tables = []
        for table in ws.tables.values():
            first, last = table.ref.split(":")
            first_col = "".join(c for c in first if c.isalpha())
            first_row = int("".join(c for c in first if c.isdigit()))
            last_col = "".join(c for c in last if c.isalpha())
            tables.append(
                {
                    "name": table.displayName,
                    "range_address": table.ref,
                    "header_row_range_address": f"{first}:{last_col}{first_row}",
                    "data_body_range_address": f"{first_col}{first_row + 1}:{last}",
                    "total_row_range_address": None,
                    "show_headers": True,
                    "show_totals": False,
                    "table_style": "TableStyleMedium2",
                    "show_autofilter": True,
                }
            )
        sheets.append(
            {"name": ws.title, "values": values, "pictures": [], "tables": tables, "charts": [], "shapes": []}
        )
    book = {"name": path.name, "active_sheet_index": 0, "selection": "A1"}
    return {
        "client": "Microsoft Office Scripts",
        "version": xw.__version__,
        "book": book,
        "names": [],
        "sheets": sheets,
    }


def button_seconds(payload_file: Path) -> tuple[float, str]:
    env = {**_env(), "XLWINGS_LICENSE_KEY": "noncommercial"}
    proc = subprocess.run(
        [sys.executable, "-c", BUTTON_CODE, str(payload_file)],
        capture_output=True,
        text=True,
        env=env,
        stdin=subprocess.DEVNULL,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"the button run failed: {proc.stderr[-2000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    return float(result["seconds"]), str(result["message"])


def template_file() -> Path:
    from dmplan.addin.templates import TEMPLATE_FILES

    here = Path(__file__).resolve().parent
    for folder in (here.parent / "addin" / "data" / "templates", here.parent / "templates"):
        if (folder / TEMPLATE_FILES["coupon"]).exists():
            return folder / TEMPLATE_FILES["coupon"]
    raise FileNotFoundError(f"no {TEMPLATE_FILES['coupon']} beside DMPlan")


def measure(repeat: int) -> dict[str, list[float]]:
    """Every figure ``repeat`` times, interleaved so machine load hits all of them alike."""
    py = sys.executable
    commands = {
        "python -c pass": [py, "-c", "pass"],
        "dmplan --help": [py, "-m", "dmplan", "--help"],
        "import xlwings": [py, "-c", "import xlwings"],
        "import xlwings, dmplan": [py, "-c", "import xlwings, dmplan"],
        "import dmplan": [py, "-c", "import dmplan"],
    }
    results: dict[str, list[float]] = {name: [] for name in [*commands, BUTTON]}
    with tempfile.TemporaryDirectory() as tmp:
        payload_file = Path(tmp) / "book.json"
        payload_file.write_text(json.dumps(book_payload(template_file()), default=str), encoding="utf-8")
        for _ in range(repeat):
            for name, args in commands.items():
                results[name].append(timed(args))
            results[BUTTON].append(button_seconds(payload_file)[0])
    return results


def report(results: dict[str, list[float]]) -> list[tuple[str, float, float, float, str, str]]:
    """Rows (what, median, min, max, target, met) of the table."""
    med = {name: statistics.median(values) for name, values in results.items()}
    over = med["import xlwings, dmplan"] - med["import xlwings"]
    targets = {
        "dmplan --help": (f"< {TARGET_HELP} s", med["dmplan --help"] < TARGET_HELP),
        "import xlwings, dmplan": (
            f"<= import xlwings + {TARGET_IMPORT_OVER_XLWINGS} s (measured +{over:.3f} s)",
            over <= TARGET_IMPORT_OVER_XLWINGS,
        ),
        BUTTON: (f"< {TARGET_FIRST_STATUS} s", med[BUTTON] < TARGET_FIRST_STATUS),
    }
    rows = []
    for name, values in results.items():
        target, met = targets.get(name, ("reference", None))
        rows.append(
            (name, med[name], min(values), max(values), target, "" if met is None else ("yes" if met else "NO"))
        )
    return rows


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--repeat", type=int, default=5, help="fresh processes per figure (median reported)")
    parser.add_argument("--json", type=Path, help="also write the raw timings here")


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    results = measure(args.repeat)
    table = Table(title=f"DMPlan start-up, {args.repeat} fresh processes each (seconds, wall time)")
    for column in ("what", "median", "min", "max", "target", "met"):
        table.add_column(column)
    for name, median, low, high, target, met in report(results):
        table.add_row(name, f"{median:.3f}", f"{low:.3f}", f"{high:.3f}", target, met)
    Console().print(table)
    print(f"interpreter {sys.executable}; button measured on xlwings' remote engine (no Excel here)")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1), encoding="utf-8")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
