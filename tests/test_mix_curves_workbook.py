"""Curves in a workbook: `dmplan solve` plans on points (own Curves table or Meridian's), writes Mix Curves and
the lifts on the points and the band; bad points give a located error and leave the file untouched."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from openpyxl import Workbook, load_workbook

from dmplan.addin import cli
from tests import libreoffice

BASE = {"tv": 100.0, "radio": 60.0, "search": 80.0}


def response(name: str, spend: np.ndarray) -> np.ndarray:
    top, half = {"tv": (900.0, 120.0), "radio": (400.0, 40.0), "search": (700.0, 60.0)}[name]
    return top * spend / (spend + half)


def book(
    path: Path,
    *,
    meridian: bool = False,
    band: bool = False,
    settings: dict[str, Any] | None = None,
    abc_for: tuple[str, ...] = (),
    edit: Any = None,
) -> Path:
    wb = Workbook()
    acts = wb.active
    acts.title = "Activities"
    header = ["activity", "baseline", "min_spend", "max_spend", "min_change"]
    if abc_for:
        header += ["a", "b", "c"]
    acts.append(header)
    for name, s in BASE.items():
        row: list[Any] = [name, s, 0.5 * s, 2 * s, 0.1 * s]
        if abc_for:
            row += [-0.001, 1.0, 50.0] if name in abc_for else [None, None, None]
        acts.append(row)
    curves = wb.create_sheet("Curves")
    curves.append(
        ["Group ID", "Channel", "Spend", "Incremental Outcome"]
        if meridian
        else ["activity", "spend", "response"] + (["response_lo", "response_hi"] if band else [])
    )
    for name, s in BASE.items():
        if name in abc_for:
            continue
        for spend in np.linspace(0.4 * s, 2.2 * s, 41):
            r = float(response(name, np.array(spend)))
            if meridian:
                curves.append(["all", name, float(spend), r])
            else:
                curves.append([name, float(spend), r] + ([0.8 * r, 1.1 * r] if band else []))
    ws = wb.create_sheet("Settings")
    ws.append(["setting", "value"])
    for key, value in {"budget_min_ratio": 1.0, "budget_max_ratio": 1.0, **(settings or {})}.items():
        ws.append([key, value])
    if edit is not None:
        edit(wb)
    wb.save(path)
    return path


def solve(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, dict[str, Any] | None]:
    summary = path.with_suffix(".json")
    code = cli.main(["solve", str(path), "-q", "--summary-json", str(summary)])
    err = " ".join(capsys.readouterr().err.split())
    data = json.loads(summary.read_text())["models"][0] if summary.exists() else None
    return code, err, data


@pytest.mark.parametrize("model", ["quadratic", "piecewise"])
def test_plan_on_points_writes_mix_curves_and_the_lifts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], model: str
) -> None:
    path = book(tmp_path / "b.xlsx", band=True, settings={"revenue_model": model, "curve_segments": 16})
    code, err, s = solve(path, capsys)
    assert code == 0, err
    assert s is not None and s["revenue_model"] == model and len(s["curves"]) == 3
    assert s["lift_points"] is not None and s["lift_fitted"] is not None
    assert s["lift_band_low"] == pytest.approx(0.8 * s["lift_points"], rel=1e-9)
    assert s["lift_band_high"] == pytest.approx(1.1 * s["lift_points"], rel=1e-9)
    # the fitted lift is the objective minus the revenue at the baseline
    assert s["lift_fitted"] == pytest.approx(s["objective"] - s["baseline_revenue"], rel=1e-9, abs=1e-9)
    # the lift on the points is their linear interpolation at the planned spend, less at the baseline
    plan = s["plan"]

    def on_points(name: str, spend: float) -> float:
        grid = np.linspace(0.4 * BASE[name], 2.2 * BASE[name], 41)
        return float(np.interp(spend, grid, response(name, grid)))

    expected = sum(on_points(k, v) - on_points(k, BASE[k]) for k, v in plan.items())
    assert s["lift_points"] == pytest.approx(expected, rel=1e-9)
    wb = load_workbook(path)
    assert "Mix Curves" in wb.sheetnames
    ws = wb["Mix Curves"]
    assert ws._charts, "a native chart of points against the fit"
    assert "Mix_Curves" in ws.tables
    labels = [ws.cell(row=r, column=1).value for r in range(1, 40)]
    plan_ws = wb["Mix Plan"]
    kpis = [plan_ws.cell(row=r, column=1).value for r in range(1, 40)]
    assert "Lift on the curve points" in kpis and "Lift on response_lo" in kpis
    assert "tv" in labels


def test_meridian_headers_paste_in_as_they_are(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = book(tmp_path / "m.xlsx", meridian=True, settings={"revenue_model": "piecewise"})
    code, err, s = solve(path, capsys)
    assert code == 0, err
    assert s is not None and {c["activity"] for c in s["curves"]} == set(BASE)
    assert s["lift_band_low"] is None


def test_activities_without_points_keep_their_abc(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = book(tmp_path / "abc.xlsx", abc_for=("radio",), settings={"revenue_model": "piecewise"})
    code, err, s = solve(path, capsys)
    assert code == 0, err
    assert s is not None and {c["activity"] for c in s["curves"]} == {"tv", "search"}


def test_piecewise_revenue_formula_on_mix_plan_recomputes_the_revenue(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = book(tmp_path / "f.xlsx", settings={"revenue_model": "piecewise"})
    code, err, _ = solve(path, capsys)
    assert code == 0, err
    ws = load_workbook(path)["Mix Plan"]
    header_row = next(r for r in range(1, 80) if ws.cell(row=r, column=1).value == "activity")
    header = [ws.cell(row=header_row, column=j).value for j in range(1, 30)]
    formula = ws.cell(row=header_row + 1, column=header.index("revenue_after") + 1).value
    assert isinstance(formula, str) and "MIN(" in formula and "np." not in formula


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda wb: wb["Curves"].cell(row=3, column=2, value="lots"), "'lots' is not a number"),
        (
            lambda wb: wb["Curves"].cell(row=3, column=2, value=wb["Curves"].cell(row=2, column=2).value),
            "two points at spend",
        ),
        (lambda wb: [wb["Curves"].delete_rows(4, 39)], "a curve needs at least 3"),
        (lambda wb: [wb["Curves"].cell(row=r, column=2, value=1000.0 + r) for r in range(2, 43)], "entirely outside"),
        (
            lambda wb: [wb["Curves"].cell(row=r, column=3, value=100.0 - r) for r in range(2, 43)],
            "decreases at every point",
        ),
        (lambda wb: wb["Curves"].cell(row=2, column=1, value="cinema"), "not in the Activities table"),
    ],
)
def test_bad_points_are_located_and_nothing_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], edit: Any, expected: str
) -> None:
    path = book(tmp_path / "bad.xlsx", edit=edit)
    before = path.read_bytes()
    code, err, s = solve(path, capsys)
    assert code == 2, err
    assert expected in err and "sheet 'Curves'" in err and "row " in err, err
    assert path.read_bytes() == before and s is None


@pytest.mark.skipif(not libreoffice.available(), reason="LibreOffice (soffice) is not installed")
@pytest.mark.libreoffice
def test_piecewise_revenue_formulas_recalculated_by_libreoffice_equal_the_solver(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = book(tmp_path / "lo.xlsx", settings={"revenue_model": "piecewise", "curve_segments": 16})
    code, err, s = solve(path, capsys)
    assert code == 0 and s is not None, err
    converted = libreoffice.convert(path, "xlsx", tmp_path / "lo", tmp_path)
    ws = load_workbook(converted, data_only=True)["Mix Plan"]
    header_row = next(r for r in range(1, 80) if ws.cell(row=r, column=1).value == "activity")
    header = [ws.cell(row=header_row, column=j).value for j in range(1, 30)]
    after = {
        ws.cell(row=r, column=1).value: ws.cell(row=r, column=header.index("revenue_after") + 1).value
        for r in range(header_row + 1, header_row + 1 + len(BASE))
    }
    fits = {c["activity"]: c for c in s["curves"]}
    for name, spend in s["plan"].items():
        fit = fits[name]
        expected = float(np.interp(spend, fit["knots_spend"], fit["knots_response"]))
        assert after[name] == pytest.approx(expected, rel=1e-9)
