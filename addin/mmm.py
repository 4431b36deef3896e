"""Response curves from a finished Robyn run's CSV exports (no R, no Robyn, no pandas needed).

Robyn (facebookexperimental/Robyn) writes ``pareto_hyperparameters.csv`` (per model ``solID``:
``<channel>_alphas``, ``<channel>_gammas`` and, from 3.12 on, ``<channel>_inflexion``),
``pareto_aggregated.csv`` (per model and variable ``rn``: ``coef``, ``mean_spend``, ``mean_carryover``,
``mean_response``) and ``pareto_media_transform_matrix.csv`` (time series by ``type``, among them the
``adstockedMedia`` series). Its allocator's response of a channel at mean spend ``x`` per period is

    r(x) = coef / (1 + (inflexion / (x + carryover))^alpha)

with the carryover frozen at its historical mean (``mean_carryover``). The inflexion is
``gamma * max(adstocked)`` from Robyn 3.12 on, exported as ``<channel>_inflexion``, and
``(1 - gamma) * min + gamma * max`` of the adstocked series over the modelling window up to 3.11 (computed
here from the transform matrix). Over a horizon of ``N`` periods with total spend ``S`` the response is
``N r(S / N)``; :func:`import_robyn` returns those points per channel for the ``Curves`` table, and the
``Activities`` rows Robyn's allocator would start from (baseline = mean spend x N, bounds 0.5x and 2x, no
minimum change).

Checks: up to 3.11 ``mean_response`` is exactly ``r(mean_spend)`` (Robyn computes it with the same formula),
so the import verifies that identity and stops when it fails (the window or the files do not belong
together). From 3.12 on ``mean_response`` is the mean of the historical responses, which is not the curve at
the mean spend (Jensen); its difference is reported, not enforced.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dmplan.solver.common import InputError
from dmplan.solver.mix.curves import CurvePoints

HYPERPARAMETERS = "pareto_hyperparameters.csv"
AGGREGATED = "pareto_aggregated.csv"
TRANSFORMS = "pareto_media_transform_matrix.csv"
#: bounds of Robyn's allocator by default (``channel_constr_low`` / ``_up`` for max_response)
LOWER_SHARE, UPPER_SHARE = 0.5, 2.0
#: the curve points run from 0 to this multiple of the baseline, so they cover the bounds with room
POINTS_UP_TO = 2.5
POINTS = 201
#: relative tolerance of the 3.11 identity mean_response = r(mean_spend) (CSV numbers carry 15 digits)
IDENTITY_TOLERANCE = 1e-6

CONVENTION_312 = "Robyn >= 3.12: inflexion from the <channel>_inflexion columns"
CONVENTION_311 = "Robyn <= 3.11: inflexion = (1 - gamma) min + gamma max of adstockedMedia over the window"


@dataclass(frozen=True)
class RobynChannel:
    """One channel's response-curve parameters as read from the exports (per period)."""

    name: str
    coef: float
    alpha: float
    gamma: float
    inflexion: float
    carryover: float
    mean_spend: float
    mean_response: float | None

    def response(self, spend_per_period: np.ndarray | float) -> np.ndarray:
        """Robyn's response per period at a mean spend per period (``fx_objective``)."""
        x = np.asarray(spend_per_period, dtype=float) + self.carryover
        with np.errstate(divide="ignore"):
            ratio = np.where(x > 0, self.inflexion / np.where(x > 0, x, 1.0), np.inf)
        return np.where(np.isfinite(ratio), self.coef / (1.0 + ratio**self.alpha), 0.0)


@dataclass
class RobynImport:
    """What :func:`import_robyn` read: the channels, the horizon, the convention and the checks."""

    folder: Path
    solid: str
    periods: int
    periods_from: str
    convention: str
    channels: list[RobynChannel]
    checks: dict[str, float | None] = field(default_factory=dict)  #: relative difference to mean_response
    identity: bool = False  #: whether ``checks`` are exact identities (3.11) or loose (3.12)
    notes: list[str] = field(default_factory=list)

    def curves(self, points: int = POINTS) -> dict[str, CurvePoints]:
        """Points of every channel over the horizon: total spend 0 .. 2.5x the baseline, total response."""
        out = {}
        for channel in self.channels:
            baseline = channel.mean_spend * self.periods
            spend = np.linspace(0.0, POINTS_UP_TO * baseline, points)
            response = self.periods * channel.response(spend / self.periods)
            out[channel.name] = CurvePoints(channel.name, spend, response)
        return out

    def activities(self) -> list[dict[str, Any]]:
        """``Activities`` rows like Robyn's allocator defaults: bounds 0.5x and 2x of the baseline, no minimum."""
        rows = []
        for channel in self.channels:
            baseline = channel.mean_spend * self.periods
            rows.append(
                {
                    "activity": channel.name,
                    "baseline": baseline,
                    "min_spend": LOWER_SHARE * baseline,
                    "max_spend": UPPER_SHARE * baseline,
                    "min_change": 0.0,
                    "channel": channel.name,
                }
            )
        return rows

    def summary(self) -> str:
        lines = [
            f"Robyn model {self.solid} from {self.folder}",
            f"convention: {self.convention}",
            f"horizon: {self.periods} periods ({self.periods_from})",
        ]
        for channel in self.channels:
            check = self.checks.get(channel.name)
            what = "identity" if self.identity else "mean of history, loose"
            text = "no mean_response" if check is None else f"mean_response differs by {check:.2e} ({what})"
            lines.append(
                f"  {channel.name}: coef {channel.coef:g}, alpha {channel.alpha:g}, inflexion {channel.inflexion:g}, "
                f"carryover {channel.carryover:g}, mean spend {channel.mean_spend:g}; {text}"
            )
        lines += [f"note: {note}" for note in self.notes]
        return "\n".join(lines)


def _error(path: Path, message: str, fix: str, row: int | None = None, column: str | None = None) -> InputError:
    where = f"file {path.name}"
    if row is not None:
        where += f", line {row}"
    if column is not None:
        where += f", column {column!r}"
    return InputError(message, table=path.name, column=column, fix=fix, where=where)


def _read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    if not path.exists():
        raise _error(path, "file is missing.", f"Point to the folder holding Robyn's exports ({path.name}).")
    with path.open(newline="", encoding="utf-8-sig") as file:
        reader = csv.DictReader(file)
        rows = list(reader)
        return list(reader.fieldnames or []), rows


def _number(path: Path, row: dict[str, str], column: str, line: int, required: bool = True) -> float | None:
    text = (row.get(column) or "").strip()
    if not text or text.upper() in ("NA", "NAN"):
        if required:
            raise _error(path, "value is missing.", "Re-export the run from Robyn.", line, column)
        return None
    try:
        value = float(text)
    except ValueError:
        raise _error(path, f"{text!r} is not a number.", "Re-export the run from Robyn.", line, column) from None
    if not math.isfinite(value):
        if required:
            raise _error(path, f"{text!r} is not a finite number.", "Re-export the run from Robyn.", line, column)
        return None
    return value


def _window(folder: Path, solid: str, start: str | None, end: str | None) -> tuple[str | None, str | None, str]:
    """The modelling window: given, else from ``RobynModel-<solID>.json`` (InputCollect window_start/end)."""
    if start or end:
        return start, end, "given"
    for path in sorted(folder.glob("RobynModel-*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        selected = data.get("ExportedModel", {}).get("select_model")
        if isinstance(selected, list):
            selected = selected[0] if selected else None
        if selected is not None and str(selected) != solid:
            continue
        inputs = data.get("InputCollect", {})

        def first(value: Any) -> str | None:
            if isinstance(value, list):
                value = value[0] if value else None
            return None if value is None else str(value)

        window = (first(inputs.get("window_start")), first(inputs.get("window_end")))
        if window[0] or window[1]:
            return window[0], window[1], path.name
    return None, None, "all rows"


def import_robyn(
    folder: Path | str,
    solid: str,
    periods: int | None = None,
    window_start: str | None = None,
    window_end: str | None = None,
) -> RobynImport:
    """Read one Robyn model's curves from a run's export folder.

    Parameters
    ----------
    folder:
        The folder holding Robyn's CSV exports (``OutputCollect$plot_folder``).
    solid:
        The model id (``solID``), e.g. ``"1_100_5"``.
    periods:
        Periods in the planning horizon (default: the modelling window's length in the transform matrix).
    window_start, window_end:
        The modelling window's first and last ``ds`` (default: from ``RobynModel-<solID>.json`` when present,
        else every row of the transform matrix). Used for the 3.11 inflexion and the default horizon.

    Raises
    ------
    InputError
        A missing file, model or column, a value that is not a number, or a failed 3.11 identity check; the
        message names the file, line and column.
    """
    root = Path(folder)
    hyper_path, agg_path = root / HYPERPARAMETERS, root / AGGREGATED
    hyper_columns, hyper_rows = _read_csv(hyper_path)
    hyper = [(line, row) for line, row in enumerate(hyper_rows, start=2) if row.get("solID") == solid]
    if not hyper:
        known = sorted({row.get("solID", "") for row in hyper_rows})
        raise _error(
            hyper_path,
            f"model {solid!r} is not in the file (it has {len(known)} models, e.g. {', '.join(known[:5])}).",
            "Give --solid one of the model ids Robyn exported.",
        )
    hyper_line, hyper_row = hyper[0]
    _, agg_rows = _read_csv(agg_path)
    aggregated = {
        row.get("rn", ""): (line, row) for line, row in enumerate(agg_rows, start=2) if row.get("solID") == solid
    }
    names = [column[: -len("_alphas")] for column in hyper_columns if column.endswith("_alphas")]
    has_inflexion = all(f"{name}_inflexion" in hyper_columns for name in names) and bool(names)
    notes: list[str] = []
    start, end, window_from = _window(root, solid, window_start, window_end)
    matrix = _adstocked(root / TRANSFORMS, solid, start, end) if (root / TRANSFORMS).exists() else None
    if not has_inflexion and matrix is None:
        raise _error(
            root / TRANSFORMS,
            "file is missing, and pareto_hyperparameters.csv has no <channel>_inflexion columns (Robyn <= 3.11), "
            "so the inflexion must be computed from the adstocked media.",
            "Copy pareto_media_transform_matrix.csv from the Robyn run into the folder.",
        )
    channels: list[RobynChannel] = []
    checks: dict[str, float | None] = {}
    for name in names:
        if name not in aggregated:
            notes.append(f"{name}: no row in {AGGREGATED} for the model; skipped")
            continue
        line, row = aggregated[name]
        mean_spend = _number(agg_path, row, "mean_spend", line, required=False)
        if mean_spend is None or mean_spend <= 0:
            notes.append(f"{name}: no spend (organic or unused channel); skipped")
            continue
        coef = _number(agg_path, row, "coef", line)
        assert coef is not None
        if coef == 0:
            notes.append(f"{name}: coefficient 0 (Robyn's allocator drops it too); skipped")
            continue
        alpha = _number(hyper_path, hyper_row, f"{name}_alphas", hyper_line)
        gamma = _number(hyper_path, hyper_row, f"{name}_gammas", hyper_line)
        assert alpha is not None and gamma is not None
        carryover = _number(agg_path, row, "mean_carryover", line, required=False)
        if carryover is None:
            carryover = 0.0
            notes.append(f"{name}: no mean_carryover column; carryover taken as 0")
        if has_inflexion:
            inflexion = _number(hyper_path, hyper_row, f"{name}_inflexion", hyper_line)
            assert inflexion is not None
        else:
            assert matrix is not None
            series = matrix.get(name)
            if series is None or series.size == 0:
                raise _error(
                    root / TRANSFORMS,
                    f"has no adstockedMedia column {name!r} for model {solid!r}.",
                    "Re-export the run from Robyn.",
                )
            inflexion = float((1 - gamma) * series.min() + gamma * series.max())
        channel = RobynChannel(
            name,
            coef,
            alpha,
            gamma,
            inflexion,
            carryover,
            mean_spend,
            _number(agg_path, row, "mean_response", line, False),
        )
        if channel.mean_response is not None:
            at_mean = float(channel.response(mean_spend))
            difference = abs(at_mean - channel.mean_response) / max(abs(channel.mean_response), 1e-300)
            checks[name] = difference
            if not has_inflexion and difference > IDENTITY_TOLERANCE:
                raise _error(
                    agg_path,
                    f"channel {name}: the curve at mean spend gives {at_mean:.10g} but Robyn's mean_response is "
                    f"{channel.mean_response:.10g}; for Robyn <= 3.11 they are the same number, so the modelling "
                    f"window used for the inflexion ({window_from}: {start or 'first row'} to {end or 'last row'}) "
                    "is not the model's, or the files come from different runs.",
                    "Give the window with --window-start/--window-end (the ds values of the model's window), or put "
                    "RobynModel-<solID>.json from the same run into the folder.",
                    line,
                    "mean_response",
                )
        else:
            checks[name] = None
        channels.append(channel)
    if not channels:
        raise _error(hyper_path, f"model {solid!r} has no paid channel with spend.", "Check the export folder.")
    if periods is None:
        if matrix is None or not matrix:
            raise _error(
                root / TRANSFORMS,
                "is missing, so the horizon's number of periods is unknown.",
                "Give --periods N (periods in the planning horizon).",
            )
        periods = int(next(iter(matrix.values())).size)
        periods_from = f"modelling window in {TRANSFORMS} ({window_from})"
    else:
        periods_from = "given"
    if periods < 1:
        raise InputError(f"periods = {periods} is not a positive whole number.", fix="Use --periods 1 or more.")
    if has_inflexion:
        notes.append("mean_response is the mean of the historical responses (Robyn >= 3.12), a loose check only")
    return RobynImport(
        root,
        solid,
        int(periods),
        periods_from,
        CONVENTION_312 if has_inflexion else CONVENTION_311,
        channels,
        checks,
        identity=not has_inflexion,
        notes=notes,
    )


def _adstocked(path: Path, solid: str, start: str | None, end: str | None) -> dict[str, np.ndarray] | None:
    """The model's adstockedMedia series per channel over the window (``ds`` from ``start`` to ``end``)."""
    columns, rows = _read_csv(path)
    chosen = [(line, row) for line, row in enumerate(rows, start=2) if row.get("type") == "adstockedMedia"]
    if "solID" in columns:
        chosen = [(line, row) for line, row in chosen if row.get("solID") == solid]
    if not chosen:
        return None
    if "ds" in columns and (start or end):
        chosen = [
            (line, row)
            for line, row in chosen
            if (start is None or row["ds"] >= start) and (end is None or row["ds"] <= end)
        ]  # ISO dates compare as text
        if not chosen:
            raise _error(
                path,
                f"no adstockedMedia row of model {solid!r} lies in the window {start} to {end}.",
                "Check the window dates (the ds column's format, e.g. 2016-11-21).",
            )
    skip = {"ds", "type", "solID"}
    out = {}
    for column in columns:
        if column in skip:
            continue
        values = [_number(path, row, column, line, required=False) for line, row in chosen]
        if all(v is not None for v in values):
            out[column] = np.asarray(values, dtype=float)
    return out


def curves_rows(curves: dict[str, CurvePoints]) -> list[list[Any]]:
    """The ``Curves`` table (header row first): activity, spend, response."""
    rows: list[list[Any]] = [["activity", "spend", "response"]]
    for name, points in curves.items():
        rows += [[name, float(s), float(r)] for s, r in zip(points.spend, points.response, strict=True)]
    return rows


def activities_rows(imported: RobynImport) -> list[list[Any]]:
    """The ``Activities`` table (header row first); a, b, c stay out (every activity has points)."""
    header = ["activity", "baseline", "min_spend", "max_spend", "min_change", "channel"]
    return [header] + [[row[h] for h in header] for row in imported.activities()]


SETTINGS_ROWS: Sequence[tuple[str, Any]] = (
    ("budget_min_ratio", 1.0),
    ("budget_max_ratio", 1.0),
    ("revenue_model", "piecewise"),
    ("curve_segments", 16),
)


def robyn_sheets(
    imported: RobynImport, sheet_names: Sequence[str], table_names: Sequence[str]
) -> list[tuple[str, list[list[Any]]]]:
    """The sheets an import writes, header row first: ``Curves`` always (replacing an old one), and
    ``Activities`` and ``Settings`` where the book has no sheet or table of that name. The file path
    (:func:`write_book`) and the ribbon button (:func:`dmplan.addin.xl.import_robyn`) both write these."""
    existing = {name.lower() for name in (*sheet_names, *table_names)}
    sheets: list[tuple[str, list[list[Any]]]] = [("Curves", curves_rows(imported.curves()))]
    if "activities" not in existing:
        sheets.append(("Activities", activities_rows(imported)))
    if "settings" not in existing:
        sheets.append(("Settings", [["setting", "value"], *[list(row) for row in SETTINGS_ROWS]]))
    return sheets


def write_book(imported: RobynImport, target: Path | str) -> list[str]:
    """Write the ``Curves`` sheet into ``target`` (replacing an old one), plus ``Activities`` and ``Settings``
    sheets where the book has none; returns the sheets written. Atomic: a failure leaves the file as it was."""
    from openpyxl import Workbook

    from dmplan.addin.ooxml import form_buttons
    from dmplan.addin.workbook import check_target, load, save_atomically

    path = Path(target)
    check_target(path)  # before reading anything: a refusal costs nothing
    buttons = None
    if path.exists():
        book = load(path, data_only=False)
        buttons = form_buttons(path)
    else:
        book = Workbook()
        book.remove(book.active)
    written = []
    tables = [name for ws in book.worksheets for name in ws.tables]
    sheets = robyn_sheets(imported, book.sheetnames, tables)
    for name, rows in sheets:
        if name in book.sheetnames:
            del book[name]
        ws = book.create_sheet(name)
        for row in rows:
            ws.append(row)
        written.append(name)
    save_atomically(book, path, buttons)
    return written
