"""One solve path for every entry point: the command line, the ribbon button, the templates' buttons.

The pipeline resolves the run options once (an entry point's overrides, then the workbook's Settings
table, then the add-in's config), runs every model whose input tables the workbook holds, and plans the
result sheets' places (:func:`dmplan.addin.results.plan_writes`). :func:`solve_file` is the file path
around it: check the files, read, solve, write atomically.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dmplan.addin import workbook
from dmplan.addin.cells import TextNumberError, as_number, display, normalize
from dmplan.addin.contract import ModelAdapter, ModelRun, NoModelError, RunOptions, TableSource
from dmplan.addin.models import ADAPTERS, COMMON_SETTINGS
from dmplan.addin.results import ExistingSheet, WritePlan, plan_writes
from dmplan.addin.tables import Settings
from dmplan.solver.common import InputError

if TYPE_CHECKING:
    from dmplan.addin.xlsx_read import Package


def models_present(source: TableSource) -> list[ModelAdapter]:
    """Models with at least one input table; their readers name whatever else is missing."""
    return [a for a in ADAPTERS if any(source.table(t) is not None for t in a.input_tables)]


def input_table_names(models: Sequence[ModelAdapter]) -> set[str]:
    return {t for a in models for t in (*a.input_tables, *a.other_inputs)}


def input_sheets(source: TableSource) -> list[str]:
    """Sheets holding the input tables of the models ``source`` holds: never written to."""
    tables = (source.table(name) for name in sorted(input_table_names(models_present(source))))
    return [table.sheet for table in tables if table is not None]


@dataclass(frozen=True)
class Defaults:
    """Values from the add-in's config (xlwings config layers): used when the workbook gives none.

    ``where`` names the place each value came from, for messages.
    """

    time_limit: Any = None
    solver: str | None = None
    where: dict[str, str] = field(default_factory=dict)


def resolve_options(source: TableSource, overrides: RunOptions, defaults: Defaults | None = None) -> RunOptions:
    """The options of this run: ``overrides`` (command line) first, then the workbook's Settings table
    (``time_limit``), then ``defaults`` (the add-in's config). The solver override must name a solver of
    at least one model the workbook holds."""
    defaults = defaults or Defaults()
    time_limit = overrides.time_limit
    settings = Settings(source.table("Settings"))
    if time_limit is None and settings.has("time_limit"):
        time_limit = settings.number("time_limit", minimum=0)
        if not time_limit:
            raise settings.error(
                "time_limit",
                "a time limit of 0 seconds leaves no time to solve.",
                fix="Enter the time limit in seconds, e.g. 60, or clear it for no limit.",
            )
    if time_limit is None and defaults.time_limit is not None:
        time_limit = _config_time_limit(defaults)
    solver = overrides.solver
    if solver is not None:
        _check_solver(models_present(source) or list(ADAPTERS), solver, None)
    elif defaults.solver and not settings.has("solver"):
        # a config default serves every workbook: it must be some model's solver, not this one's
        _check_solver(list(ADAPTERS), defaults.solver, defaults.where.get("solver"))
        solver = defaults.solver
    return replace(
        overrides,
        time_limit=time_limit,
        solver=solver,
        customers_file=overrides.customers_file or _settings_path(settings, "customers_file", overrides.folder),
        mailing_list_file=overrides.mailing_list_file
        or _settings_path(settings, "mailing_list_file", overrides.folder),
        dask_scheduler=overrides.dask_scheduler or settings.text("dask_scheduler") or None,
    )


def _settings_path(settings: Settings, key: str, folder: Path | None) -> Path | None:
    """A file path from Settings: absolute, or relative to the workbook's folder."""
    text = settings.text(key)
    if not text:
        return None
    path = Path(text).expanduser()
    return path if path.is_absolute() or folder is None else folder / path


def _config_time_limit(defaults: Defaults) -> float:
    try:
        number = as_number(defaults.time_limit)
    except TextNumberError:
        number = None
    if number is None or number <= 0:
        raise InputError(
            f"time_limit {display(defaults.time_limit)} is not a positive number of seconds.",
            where=defaults.where.get("time_limit", "the add-in's config"),
            fix="Enter the time limit in seconds, e.g. 60.",
        )
    return number


def _check_solver(models: Sequence[ModelAdapter], solver: str, where: str | None) -> None:
    if any(normalize(solver) in a.solvers for a in models):
        return
    names = "; ".join(f"{a.name}: {', '.join(a.solvers)}" for a in models)
    raise InputError(
        f"{display(solver)} is not a solver of the models in this workbook.",
        where=where or "--solver option",
        fix=f"Use one of ({names}).",
    )


def solve_source(
    source: TableSource, options: RunOptions | None = None, defaults: Defaults | None = None
) -> list[ModelRun]:
    """Solve every model whose input tables ``source`` holds. Raises InputError on bad input."""
    present = models_present(source)
    if not present:
        wanted = "; ".join(f"{a.name}: {', '.join(a.input_tables)}" for a in ADAPTERS)
        raise NoModelError(
            f"the workbook has none of DMPlan's input tables ({wanted}).",
            fix="Start from a template: dmplan template coupon -o FILE.xlsx, or dmplan template mix -o FILE.xlsx.",
        )
    resolved = resolve_options(source, options or RunOptions(), defaults)
    settings_table = source.table("Settings")
    if settings_table is not None:  # a Settings table's warnings reach every model's summary and sheets
        new = [w for w in unknown_settings(Settings(settings_table)) if w not in settings_table.warnings]
        settings_table.warnings.extend(new)
    return [adapter.run(source, resolved) for adapter in present]


def unknown_settings(settings: Settings) -> list[str]:
    """A warning for every Settings key no model reads (a typo would otherwise go unnoticed)."""
    known = {normalize(k) for a in ADAPTERS for k in a.settings} | {normalize(k) for k in COMMON_SETTINGS}
    out = []
    for key in settings.typed_keys():
        if normalize(key) in known:
            continue
        close = difflib.get_close_matches(normalize(key), sorted(known), n=1)
        hint = f" Did you mean {close[0]}?" if close else ""
        out.append(f"{settings.where(key)}: {display(key)} is not a DMPlan setting; it was ignored.{hint}")
    return out


def write_plan(
    runs: Sequence[ModelRun], existing: Sequence[ExistingSheet], taken_tables: Sequence[str], protected: Sequence[str]
) -> WritePlan:
    """Where every run's result sheets go (the same plan for the file and for live Excel)."""
    legacy = {a.name: a.legacy_sheets for a in ADAPTERS}
    return plan_writes(
        existing, [(run.model, run.sheets, legacy.get(run.model, {})) for run in runs], taken_tables, protected
    )


@dataclass
class FileRun:
    """The outcome of :func:`solve_file`: the model runs, where the result went, what to tell the user."""

    runs: list[ModelRun]
    target: Path
    sheets: list[str]
    warnings: list[str]


def solve_file(
    path: Path, out: Path | None = None, options: RunOptions | None = None, *, package: bool = True
) -> FileRun:
    """Read ``path``, solve, and write the result sheets to ``out`` (default: ``path`` itself).

    The target is checked before anything is solved (folder, lock file, read-only file) and written
    through a temporary file renamed into place, so a failed run leaves every file untouched.

    By default the package path reads and writes (:mod:`dmplan.addin.package_io`: the input tables
    streamed from the zip, the result sheets spliced in while every input part is copied as it is);
    the openpyxl path (:mod:`dmplan.addin.workbook`) reads a package that path cannot open, and writes
    results it cannot graft. ``package=False`` forces the openpyxl path.
    """
    target = out or path
    workbook.check_source(path)
    workbook.check_target(target)
    options = replace(options or RunOptions(), folder=path.resolve().parent)  # Settings paths start here
    if package:
        from dmplan.addin import package_io  # lxml and calamine: only the file path needs them

        opened = package_io.open_package(path)
        if opened is not None:
            with opened:
                return _solve_package(opened, path, target, options)
    formulas = workbook.load(path, data_only=False)
    values = workbook.load(path, data_only=True)
    source = workbook.FileSource(values, formulas)
    runs = solve_source(source, options)
    plan = write_plan(runs, workbook.existing_sheets(formulas), workbook.taken_names(formulas), input_sheets(source))
    workbook.apply_plan(formulas, plan)
    report = workbook.save_atomically(formulas, target, buttons=workbook.source_buttons(path))
    return _file_run(runs, target, plan, report.warnings)


def _file_run(runs: list[ModelRun], target: Path, plan: WritePlan, save_warnings: list[str]) -> FileRun:
    """The models' warnings once each, then the writer's."""
    warnings = list(dict.fromkeys(w for run in runs for w in run.warnings)) + save_warnings
    return FileRun(runs, target, [p.name for p in plan.placements], warnings)


def _solve_package(package: Package, path: Path, target: Path, options: RunOptions | None) -> FileRun:
    """:func:`solve_file` on the package path (the files are checked already)."""
    from dmplan.addin import package_io
    from dmplan.addin.xlsx_graft import GraftError

    progress = options.progress if options is not None else None
    source = package_io.PackageSource(package, progress)
    runs = solve_source(source, options)
    existing, taken = package_io.existing_sheets(package), package_io.taken_names(package)
    plan = write_plan(runs, existing, taken, input_sheets(source))
    try:
        warnings = package_io.write_plan(path, plan, target, progress)
    except GraftError:  # a result the graft cannot take (conditional formats): openpyxl writes the same plan
        formulas = workbook.load(path, data_only=False)
        workbook.apply_plan(formulas, plan)
        warnings = workbook.save_atomically(formulas, target, buttons=workbook.source_buttons(path)).warnings
    return _file_run(runs, target, plan, warnings)
