"""Types every part of the workbook side shares: where tables come from, run options, a model's run.

Nothing here imports the rest of ``dmplan.addin`` but the table type, so entry points, the pipeline,
the model adapters and the writers all depend on this module and never on each other in a circle.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from dmplan.addin.sheets import SheetSpec
from dmplan.addin.tables import Table
from dmplan.solver.common import InputError, ProgressCallback, Status


class TableSource(Protocol):
    """Where input tables come from: a workbook file, a live workbook, a worksheet function's arguments."""

    def table(self, name: str) -> Table | None: ...

    def sheet_names(self) -> list[str]: ...


class NoModelError(InputError):
    """The workbook holds none of the contract's input tables."""


class WorkbookError(InputError):
    """The file or folder itself cannot be used (missing, not a workbook, locked, read-only ...)."""


class Deadline:
    """The time left of one model's run: the solve, its customer-level plan and its sweep share it."""

    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds
        self.start = time.perf_counter()

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def remaining(self) -> float | None:
        """Seconds left, or None without a limit."""
        if self.seconds is None:
            return None
        return max(0.0, self.seconds - self.elapsed())

    def expired(self, reserve: float = 0.0) -> bool:
        left = self.remaining()
        return left is not None and left <= reserve


@dataclass(frozen=True)
class RunOptions:
    """Options resolved once by the pipeline (command line, then the workbook's Settings, then the
    add-in's config). ``solver`` is an override that applies to the models it names a solver of."""

    time_limit: float | None = None
    solver: str | None = None
    progress: ProgressCallback | None = None
    customers_file: Path | None = None  #: customer list in CSV/Parquet files instead of a Customers table
    mailing_list_file: Path | None = None  #: where the customer-level mailing list goes (.csv/.parquet)
    folder: Path | None = None  #: the workbook's folder: Settings paths are relative to it
    dask_scheduler: str | None = None  #: plan a customers file on this Dask cluster ("local": this machine)

    def __post_init__(self) -> None:
        if self.time_limit is not None and not (math.isfinite(self.time_limit) and self.time_limit > 0):
            raise InputError(
                f"the time limit {self.time_limit:g} is not a positive number of seconds.",
                where="time limit",
                fix="Give the time limit in seconds, e.g. 60.",
            )


@dataclass
class ModelRun:
    """A model's outcome: its status, a JSON-ready summary, the result sheets and what to tell the user.

    ``reason`` says why there is no plan (infeasible, time limit); ``warnings`` what was read but
    deserves attention (skipped blank rows, hidden rows, a skipped sweep).
    """

    model: str
    status: Status
    summary: dict[str, Any]
    sheets: list[SheetSpec] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    reason: str | None = None


class ModelAdapter(Protocol):
    """One model on the workbook side: which tables mark it, how to run it, which sheets it writes."""

    name: str
    input_tables: tuple[str, ...]  #: any of them present means the workbook holds this model
    other_inputs: tuple[str, ...]  #: further tables it reads (never written to)
    legacy_sheets: dict[str, str]  #: usual result sheet name -> its title (earlier, unmarked results)
    solvers: tuple[str, ...]  #: solver names the model takes
    settings: tuple[str, ...]  #: Settings keys the model reads

    def run(self, source: TableSource, options: RunOptions) -> ModelRun: ...
