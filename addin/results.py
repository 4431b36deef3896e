"""Where result sheets go: one plan for both writers (the workbook file and live Excel).

DMPlan marks every result sheet with a hidden sheet-scoped defined name ``DMPlanResult`` whose value
names the model and the sheet's role (``"coupon/plan"``). A run finds its earlier result sheets by that
marker, not by their names, and :func:`plan_writes` decides, for all writers alike:

* a model's earlier result sheets are all removed, and its new ones written, together;
* a new sheet takes the place (position and name) of the earlier sheet with the same role, so a
  result sheet the user renamed keeps the user's name; otherwise it gets its usual name, or
  ``Name (2)`` when a sheet of the user's already has that name (any case);
* input sheets and sheets without a marker are never touched; a sheet named like a result sheet
  without a marker counts as an earlier result only when its title cell (A1) is that sheet's title
  (workbooks written before the marker existed);
* table names are unique in the workbook and never equal a worksheet function's name.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from dmplan.addin.cells import normalize
from dmplan.addin.sheets import SheetSpec

MARKER = "DMPlanResult"
#: Names the add-in's worksheet functions take; no table or defined name DMPlan writes may equal one.
FUNCTION_NAMES = ("DMPLAN", "DMPARETO", "MIXPLAN")
#: Excel's limit on sheet names.
MAX_SHEET_NAME = 31


def marker_value(model: str, role: str) -> str:
    return f"{model}/{role}"


def parse_marker(text: str | None) -> tuple[str, str] | None:
    """``(model, role)`` from a marker's defined-name text (``"coupon/plan"`` with its quotes)."""
    if not text:
        return None
    value = text.strip().lstrip("=").strip().strip('"')
    model, _, role = value.partition("/")
    return (model, role) if model and role else None


@dataclass(frozen=True)
class ExistingSheet:
    """A sheet of the workbook before the run: its position, name, marker and title cell."""

    index: int
    name: str
    marker: tuple[str, str] | None = None
    title: str | None = None


@dataclass(frozen=True)
class Placement:
    """One new result sheet: its spec, final name, the sheet it replaces and its table names."""

    spec: SheetSpec
    model: str
    name: str
    replaces: str | None  #: the earlier sheet whose position it takes (removed in the same step)
    tables: dict[str, str] = field(default_factory=dict)  #: table name in the spec -> final name

    @property
    def marker(self) -> str:
        return marker_value(self.model, self.spec.role)


@dataclass(frozen=True)
class WritePlan:
    """What a writer does: remove these sheets, write these placements (in order)."""

    remove: tuple[str, ...]
    placements: tuple[Placement, ...]

    @property
    def names(self) -> dict[tuple[str, str], str]:
        """(model, role) -> final sheet name, for formulas that refer to another result sheet."""
        return {(p.model, p.spec.role): p.name for p in self.placements}


class ResultPlacementError(ValueError):
    """A result cannot be placed (a result sheet's name is one of the input sheets, and so on)."""


def _is_earlier_result(sheet: ExistingSheet, model: str, legacy: dict[str, str]) -> bool:
    if sheet.marker is not None:
        return sheet.marker[0] == model
    title = legacy.get(normalize(sheet.name))
    return title is not None and sheet.title is not None and sheet.title.strip() == title


def plan_writes(
    existing: Sequence[ExistingSheet],
    runs: Sequence[tuple[str, Sequence[SheetSpec], dict[str, str]]],
    taken_tables: Sequence[str] = (),
    protected: Sequence[str] = (),
) -> WritePlan:
    """Plan the writes of ``runs``: (model, its result sheets, {usual sheet name: title} of every result
    sheet the model can write, for unmarked sheets of earlier versions).

    ``taken_tables`` are the table and defined names of the workbook; ``protected`` the input sheets.
    """
    guarded = {normalize(n) for n in protected}
    remove: list[ExistingSheet] = []
    for model, _specs, legacy in runs:
        legacy_titles = {normalize(name): title for name, title in legacy.items()}
        for sheet in existing:
            if normalize(sheet.name) in guarded:
                continue
            if _is_earlier_result(sheet, model, legacy_titles) and sheet not in remove:
                remove.append(sheet)
    removed = {s.name for s in remove}
    staying = {s.name.casefold() for s in existing if s.name not in removed}
    used_names = set(staying)
    tables_used = {t.casefold() for t in taken_tables} | {f.casefold() for f in FUNCTION_NAMES}
    tables_used.add(MARKER.casefold())
    placements: list[Placement] = []
    for model, specs, _legacy in runs:
        earlier = {s.marker[1]: s for s in remove if s.marker is not None and s.marker[0] == model}
        by_name = {normalize(s.name): s for s in remove if s.marker is None}
        for spec in specs:
            old = earlier.pop(spec.role, None) or by_name.pop(normalize(spec.name), None)
            if old is not None and old.name.casefold() not in used_names:
                name = old.name
            else:
                name = _free_name(spec.name, used_names)
            used_names.add(name.casefold())
            tables = {}
            for block in spec.blocks:
                if block.table_name:
                    final = _free_table_name(block.table_name, tables_used)
                    tables_used.add(final.casefold())
                    tables[block.table_name] = final
            placements.append(Placement(spec, model, name, old.name if old is not None else None, tables))
    return WritePlan(tuple(s.name for s in remove), tuple(placements))


def _free_name(name: str, used: set[str]) -> str:
    if name.casefold() not in used:
        return name
    n = 2
    while True:
        suffix = f" ({n})"
        candidate = name[: MAX_SHEET_NAME - len(suffix)] + suffix
        if candidate.casefold() not in used:
            return candidate
        n += 1


def _free_table_name(name: str, used: set[str]) -> str:
    if name.casefold() not in used:
        return name
    n = 2
    while f"{name}{n}".casefold() in used:
        n += 1
    return f"{name}{n}"
