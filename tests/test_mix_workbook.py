"""The mix model's workbook path: template -> problem, solve_file -> result sheets, formulas and charts."""

from __future__ import annotations

import itertools
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from openpyxl import load_workbook

from dmplan.addin import mix_model, templates, workbook
from dmplan.addin.contract import ModelRun, RunOptions
from dmplan.addin.pipeline import resolve_options, solve_file
from dmplan.solver.common import Status
from dmplan.solver.mix import check_plan
from tests import libreoffice

N = len(templates.CHANNELS) * len(templates.REGIONS) * templates.WEEKS


def _read(path: Path) -> mix_model.MixInput:
    return mix_model.read_input(workbook.FileSource(workbook.load(path, data_only=True)))


@pytest.fixture(scope="module")
def solved(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, ModelRun]:
    folder = tmp_path_factory.mktemp("mix")
    book = templates.write_template("mix", folder / "mix.xlsx")
    out = folder / "mix-solved.xlsx"
    runs = solve_file(book, out).runs
    assert [r.model for r in runs] == ["mix"]
    return book, out, runs[0]


def _table(ws: Any, name: str) -> list[list[Any]]:
    return [[c.value for c in row] for row in ws[ws.tables[name].ref]]


def _kpis(ws: Any) -> dict[str, Any]:
    out = {}
    for row in ws.iter_rows(min_row=5, max_row=40, max_col=2, values_only=True):
        if row[0] == "Plan per activity":
            break
        if row[0] is not None:
            out[row[0]] = row[1]
    return out


# ----------------------------------------------------------------------------- reading
def test_template_reads_to_the_expected_problem(tmp_path: Path) -> None:
    template = templates.write_template("mix", tmp_path / "mix.xlsx")
    data = _read(template)
    p = data.problem
    rows = templates.example_activities()
    assert p.n == N == len(rows) == 224
    assert p.activity[0] == "TV-North-W01" and p.activity[-1] == f"Email-West-W{templates.WEEKS:02d}"
    baseline = np.array([r[5] for r in rows])
    np.testing.assert_allclose(p.baseline, baseline)
    np.testing.assert_allclose(p.min_change, 0.1 * baseline, atol=0.006)
    assert np.all(p.a < 0) and np.all(p.min_spend <= p.baseline) and np.all(p.baseline <= p.max_spend)
    assert p.budget_min == pytest.approx(0.99 * baseline.sum(), rel=1e-12)
    assert p.budget_max == pytest.approx(1.01 * baseline.sum(), rel=1e-12)
    assert p.max_changes == round(0.25 * N) == 56
    assert (data.formulation, data.solver, data.gap, data.pareto_points) == ("misocp", "auto", 1e-4, 20)
    source = workbook.FileSource(workbook.load(template, data_only=True))
    assert resolve_options(source, RunOptions()).time_limit == 60
    assert list(data.attributes) == ["channel", "region", "week", "brand_weight"]
    assert data.text_attributes == ["channel", "region"]
    names = [r.name for r in p.rules]
    assert names == [f"{c} total" for c in templates.CHANNELS] + [f"{r} total" for r in templates.REGIONS] + [
        "Brand reach kept"
    ]
    tv = p.rules[0]
    assert tv.weights.sum() == len(templates.REGIONS) * templates.WEEKS and tv.on == "spend"
    tv_base = float(tv.weights @ p.baseline)
    assert tv.lower == pytest.approx(0.8 * tv_base, abs=0.01) and tv.upper == pytest.approx(1.2 * tv_base, abs=0.01)
    brand = p.rules[-1]
    np.testing.assert_allclose(brand.weights, [r[4] for r in rows])
    assert brand.upper is None and brand.lower == pytest.approx(0.97 * float(brand.weights @ p.baseline), abs=0.01)


def test_demo_workbook_holds_both_models_with_one_settings_table(tmp_path: Path) -> None:
    from dmplan.addin import coupon_model

    path = templates.write_template("demo", tmp_path / "demo.xlsx")
    wb = load_workbook(path)
    ws = wb["Settings"]
    rows = _table(ws, "Settings")
    keys = [r[0] for r in rows[1:]]
    assert rows[0] == ["setting", "value", "help"]
    assert len(keys) == len(set(keys)) and ws.max_row == len(rows)
    assert {"budget", "baseline_mailing", "budget_min_ratio", "max_changes_ratio", "formulation"} <= set(keys)
    assert keys.count("pareto_points") == 1 and keys.count("time_limit") == 1
    assert "max_changes_ratio" in wb.defined_names
    source = workbook.FileSource(workbook.load(path, data_only=True))
    assert coupon_model.read_input(source).problem.budget == 1_000_000
    assert _read(path).problem.n == N
    assert "Marketing-mix adjustment" in [c.value for c in wb["Instructions"]["A"]]


# ----------------------------------------------------------------------------- results
def test_result_sheets_tables_and_charts(solved: tuple[Path, Path, ModelRun]) -> None:
    _, out, run = solved
    wb = load_workbook(out)
    assert {"Mix Plan", "Mix Budget", "Mix Pareto"} <= set(wb.sheetnames)
    assert run.status == Status.OPTIMAL
    plan = wb["Mix Plan"]
    table = _table(plan, "Mix_Plan")
    assert table[0][:5] == ["activity", "channel", "region", "week", "brand_weight"]
    assert table[0][-4:] == ["b", "c", "revenue_before", "revenue_after"]
    assert len(table) == N + 1
    top, bottom = plan.tables["Mix_Plan"].ref.split(":")
    header_row = int(top[1:])
    assert top[0] == "A" and bottom == f"R{header_row + N}"  # 18 columns, one row per activity
    first, header = table[1], table[0]
    row_no = header_row + 1
    assert first[header.index("change")] == f"=J{row_no}-F{row_no}"  # change = new_spend - baseline, live

    budget = wb["Mix Budget"]
    channel = _table(budget, "Mix_BudgetByChannel")
    assert [r[0] for r in channel[1:]] == list(templates.CHANNELS)
    charts = budget._charts
    assert len(charts) == 2
    bar = charts[0]
    assert bar.tagname == "barChart" and bar.type == "col" and bar.grouping == "clustered"
    refs = [(s.val.numRef.f, s.cat.numRef.f if s.cat.numRef else s.cat.strRef.f) for s in bar.series]
    assert refs == [
        ("'Mix Budget'!$D$5:$D$11", "'Mix Budget'!$A$5:$A$11"),
        ("'Mix Budget'!$E$5:$E$11", "'Mix Budget'!$A$5:$A$11"),
    ]
    assert [s.tx.v for s in bar.series] == ["Before (baseline)", "After (plan)"]

    pareto = wb["Mix Pareto"]
    rows = _table(pareto, "Mix_Pareto")
    assert len(rows) == 1 + 20 + 1  # header, 20 points, this plan
    header = rows[0]
    assert header[:4] == ["point", "k", "k_pct_of_n", "revenue_pct_of_best"]
    assert rows[1][1] == 0 and rows[20][1] == N and rows[20][3] == pytest.approx(100.0)
    knees = [r for r in rows[1:21] if r[0] == "knee"]
    assert len(knees) == 1 and knees[0][header.index("knee_point")] == knees[0][3]
    scatter = pareto._charts[0]
    assert scatter.tagname == "scatterChart"
    f = [(s.xVal.numRef.f, s.yVal.numRef.f) for s in scatter.series]
    assert f == [
        ("'Mix Pareto'!$C$6:$C$25", "'Mix Pareto'!$D$6:$D$25"),
        ("'Mix Pareto'!$C$6:$C$26", "'Mix Pareto'!$J$6:$J$26"),
        ("'Mix Pareto'!$C$6:$C$26", "'Mix Pareto'!$K$6:$K$26"),
    ]
    shares = [r[3] for r in rows[1:21]]
    assert all(b >= a - 1e-9 for a, b in itertools.pairwise(shares))  # more changes never hurt


def test_plan_on_the_sheet_rechecks_feasible_with_the_summary_objective(
    solved: tuple[Path, Path, ModelRun],
) -> None:
    book, out, run = solved
    problem = _read(book).problem
    table = _table(load_workbook(out)["Mix Plan"], "Mix_Plan")
    header = table[0]
    by_id = {r[0]: r[header.index("new_spend")] for r in table[1:]}
    spend = np.array([by_id[a] for a in problem.activity])
    change = spend - problem.baseline
    check = check_plan(problem, change)
    assert check.ok, check.violations
    s = run.summary
    assert problem.revenue(change) == pytest.approx(s["objective"], rel=1e-9)
    assert s["model"] == "mix" and s["status"] == "optimal" and s["feasible"] is True
    assert s["gap"] <= 1e-4 and s["bound"] >= s["objective"]
    assert s["changes"] == int(np.count_nonzero(change)) <= problem.k
    assert s["plan"] == pytest.approx(dict(zip(problem.activity, spend, strict=True)), rel=1e-12)
    assert problem.budget_min is not None and problem.budget_max is not None
    assert problem.budget_min - 1e-6 <= s["budget_used"] <= problem.budget_max + 1e-6


# ----------------------------------------------------------------------------- LibreOffice
lo = pytest.mark.skipif(not libreoffice.available(), reason="LibreOffice (soffice) is not installed")


@lo
@pytest.mark.libreoffice
def test_live_formulas_recalculated_by_libreoffice_equal_the_solver(
    solved: tuple[Path, Path, ModelRun], tmp_path: Path
) -> None:
    book, out, run = solved
    problem = _read(book).problem
    copy = tmp_path / "recalc-src.xlsx"
    shutil.copy(out, copy)
    converted = libreoffice.convert(copy, "xlsx", tmp_path / "lo", tmp_path)
    wb = load_workbook(converted, data_only=True)
    kpi = _kpis(wb["Mix Plan"])
    s = run.summary
    assert kpi["Revenue after (objective)"] == pytest.approx(s["objective"], rel=1e-9)
    assert kpi["Revenue before"] == pytest.approx(s["baseline_revenue"], rel=1e-12)
    assert kpi["Revenue gain"] == pytest.approx(s["objective"] - s["baseline_revenue"], rel=1e-6)
    assert kpi["Changes used"] == s["changes"]
    assert kpi["Budget used (spend after)"] == pytest.approx(s["budget_used"], rel=1e-12)
    assert kpi["Spend before"] == pytest.approx(float(problem.baseline.sum()), rel=1e-12)
    table = _table(wb["Mix Plan"], "Mix_Plan")
    header = table[0]
    for row in table[1:]:
        i = problem.activity.index(row[0])
        x = s["plan"][row[0]] - problem.baseline[i]
        assert row[header.index("change")] == pytest.approx(x, abs=1e-6)
        assert row[header.index("change_region")] == ("increase" if x > 1e-9 else "decrease" if x < -1e-9 else "keep")
        revenue = problem.a[i] * x * x + problem.b[i] * x + problem.c[i]
        assert row[header.index("revenue_after")] == pytest.approx(revenue, rel=1e-9, abs=1e-6)
    rules = _table(wb["Mix Budget"], "Mix_RuleCheck")
    spend = problem.baseline + np.array([s["plan"][a] for a in problem.activity]) - problem.baseline
    for row, rule in zip(rules[1:], problem.rules, strict=True):
        assert row[0] == rule.name
        assert row[6] == pytest.approx(float(rule.weights @ spend), rel=1e-9)
        assert row[8] == "ok"
    groups = _table(wb["Mix Budget"], "Mix_BudgetByChannel")
    for row in groups[1:]:
        assert row[5] == pytest.approx(row[4] - row[3], abs=1e-6)


def _page_of(pdf: Path, text: str) -> int:
    pages = int(
        next(
            line.split()[-1]
            for line in subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True).stdout.splitlines()
            if line.startswith("Pages:")
        )
    )
    for page in range(1, pages + 1):
        words = subprocess.run(
            ["pdftotext", "-f", str(page), "-l", str(page), str(pdf), "-"], capture_output=True, text=True
        ).stdout
        if text in words:
            return page
    raise AssertionError(f"{text!r} is on no page")


@lo
@pytest.mark.libreoffice
def test_libreoffice_renders_the_result_with_charts(solved: tuple[Path, Path, ModelRun], tmp_path: Path) -> None:
    from PIL import Image

    _, out, _ = solved
    wb = load_workbook(out)
    for name in list(wb.sheetnames):
        if not name.startswith("Mix "):
            del wb[name]
    results = tmp_path / "results.xlsx"
    wb.save(results)
    pdf = libreoffice.convert(results, "pdf", tmp_path / "pdf", tmp_path)
    pngs = libreoffice.pdf_to_png(pdf, tmp_path / "png", resolution=60)
    assert len(pngs) >= 3
    for title in ("Spend before and after", "Pareto: revenue against the number of changes"):
        page = _page_of(pdf, title)
        image = np.asarray(Image.open(pngs[page - 1]).convert("L"), dtype=float)
        h, w = image.shape
        chart = image[int(0.08 * h) : int(0.5 * h), int(0.55 * w) :]  # charts sit right of the tables
        assert chart.std() > 20, f"{title}: chart region looks blank (std {chart.std():.1f})"
        assert (chart < 200).mean() > 0.02, f"{title}: too few drawn pixels in the chart region"
