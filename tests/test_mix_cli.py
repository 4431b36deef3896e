"""`dmplan` on mix workbooks: templates, bad input (exit 2, file untouched), summaries and exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook

from dmplan.addin import cli, templates

Edit = Callable[[Any], None]


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return templates.write_template("mix", tmp_path_factory.mktemp("tpl") / "mix.xlsx")


def _settings_row(wb: Any, key: str) -> int:
    ws = wb["Settings"]
    for row in range(2, ws.max_row + 1):
        if ws.cell(row=row, column=1).value == key:
            return row
    raise KeyError(key)


def _set(wb: Any, key: str, value: Any) -> None:
    wb["Settings"].cell(row=_settings_row(wb, key), column=2).value = value  # cell(value=None) would keep it


def _edited(template: Path, folder: Path, edit: Edit, name: str = "book.xlsx") -> Path:
    wb = load_workbook(template)
    edit(wb)
    path = folder / name
    wb.save(path)
    return path


def _solve(path: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str]:
    code = cli.main(["solve", str(path), "-q", *extra])
    err = " ".join(capsys.readouterr().err.split())  # rich wraps long lines
    return code, err


def _cell(sheet: str, cell: str, value: Any) -> Edit:
    def edit(wb: Any) -> None:
        wb[sheet][cell] = value

    return edit


def _cells(*edits: Edit) -> Edit:
    def edit(wb: Any) -> None:
        for e in edits:
            e(wb)

    return edit


def _setting(key: str, value: Any, clear: str | None = None) -> Edit:
    def edit(wb: Any) -> None:
        _set(wb, key, value)
        if clear:
            _set(wb, clear, None)

    return edit


# Activities columns: A activity, B channel, C region, D week, E brand_weight, F baseline, G min_spend,
# H max_spend, I min_change, J a, K b, L c. Rules: A rule, B column, C match, D lower, E upper, F on.
BAD_INPUTS: list[tuple[str, Edit, list[str]]] = [
    (
        "baseline above max_spend",
        _cell("Activities", "F4", 1e9),
        [
            "sheet 'Activities'",
            "row 4",
            "column 'baseline'",
            "outside [min_spend, max_spend]",
            "Move the baseline",
        ],
    ),
    (
        "min above max",
        _cells(_cell("Activities", "G6", 50_000), _cell("Activities", "H6", 40_000)),
        ["sheet 'Activities'", "row 6", "column 'min_spend'", "above the maximum", "min_spend <= max_spend"],
    ),
    (
        "convex revenue names the rows",
        _cells(_cell("Activities", "J3", 0.001), _cell("Activities", "J9", 0.002)),
        ["sheet 'Activities'", "row 3", "column 'a'", "not concave", "rows 3 (TV-North-W02), 9 (TV-North-W08)"],
    ),
    (
        "negative minimum change",
        _cell("Activities", "I5", -10),
        [
            "sheet 'Activities'",
            "row 5",
            "column 'min_change'",
            "below the smallest value allowed, 0",
            "minimum change of 0 or more",
        ],
    ),
    (
        "max_changes above n",
        _setting("max_changes", 1000, clear="max_changes_ratio"),
        ["sheet 'Settings'", "column 'value'", "not a whole number between 0 and 224", "whole number from 0 to 224"],
    ),
    (
        "max_changes negative",
        _setting("max_changes", -1, clear="max_changes_ratio"),
        ["sheet 'Settings'", "column 'value'", "not a whole number between 0 and 224"],
    ),
    (
        "max_changes_ratio above 1",
        _setting("max_changes_ratio", 1.5),
        ["sheet 'Settings'", "column 'value'", "max_changes_ratio 1.5 is not between 0 and 1"],
    ),
    (
        "rule names a missing column",
        _cell("Rules", "B3", "colour"),
        ["sheet 'Rules'", "row 3", "column 'column'", "'colour'", "does not have", "brand_weight"],
    ),
    (
        "rule lower above upper",
        _cell("Rules", "D2", 1e9),
        ["sheet 'Rules'", "row 2", "column 'lower'", "above upper", "lower <= upper"],
    ),
    (
        "rule match found nowhere",
        _cell("Rules", "C2", "Cinema"),
        ["sheet 'Rules'", "row 2", "column 'match'", "no activity has channel = 'Cinema'"],
    ),
    (
        "rule on neither spend nor change",
        _cell("Rules", "F2", "revenue"),
        ["sheet 'Rules'", "row 2", "column 'on'", "spend or change"],
    ),
    (
        "non-numeric cell",
        _cell("Activities", "K7", "high"),
        ["sheet 'Activities'", "row 7", "column 'b'", "(cell K7)", "'high' is not a number"],
    ),
    (
        "non-numeric rule bound",
        _cell("Rules", "E4", "lots"),
        ["sheet 'Rules'", "row 4", "column 'upper'", "'lots' is not a number"],
    ),
    (
        "duplicate activity id",
        _cell("Activities", "A8", "TV-North-W01"),
        ["sheet 'Activities'", "row 8", "column 'activity'", "duplicate id 'TV-North-W01' (also in row 2)"],
    ),
    (
        "budget_min above budget_max",
        _setting("budget_min_ratio", 1.2),
        ["sheet 'Settings'", "column 'value'", "budget_min", "above budget_max"],
    ),
    (
        "unknown formulation",
        _setting("formulation", "milp"),
        ["sheet 'Settings'", "column 'value'", "'milp' is not a valid formulation", "misocp, miqp"],
    ),
]


@pytest.mark.parametrize(("case", "edit", "expected"), BAD_INPUTS, ids=[c for c, _, _ in BAD_INPUTS])
def test_bad_input_exits_2_with_a_located_message_and_leaves_the_file(
    case: str, edit: Edit, expected: list[str], template: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _edited(template, tmp_path, edit)
    before = path.read_bytes()
    code, err = _solve(path, capsys)
    assert code == 2, err
    assert "Bad input" in err
    for text in expected:
        assert text in err, f"{case}: {text!r} missing from: {err}"
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["book.xlsx"]  # no temporary file left behind


def test_bad_input_through_python_m_addin_cli(template: Path, tmp_path: Path) -> None:
    path = _edited(template, tmp_path, _cell("Activities", "F4", 1e9))
    before = path.read_bytes()
    done = subprocess.run(
        [sys.executable, "-m", "dmplan.addin.cli", "solve", str(path), "-q"],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
        timeout=120,
    )
    err = " ".join(done.stderr.split())
    assert done.returncode == 2
    assert "sheet 'Activities'" in err and "row 4" in err and "column 'baseline'" in err
    assert path.read_bytes() == before


def test_template_command_writes_the_mix_template(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "sub.xlsx"
    assert cli.main(["template", "mix", "-o", str(out)]) == 0
    wb = load_workbook(out)
    assert wb.sheetnames[:4] == ["Instructions", "Activities", "Rules", "Settings"]
    assert wb["Activities"].tables["Activities"].ref == "A1:L225"
    assert wb["Rules"].tables["Rules"].ref == "A1:F13"
    settings = wb["Settings"]
    assert settings.tables["Settings"].ref == f"A1:C{settings.max_row}"
    row = _settings_row(wb, "formulation")
    assert settings.cell(row=row, column=2).comment is not None
    assert any(f"B{row}" in str(v.sqref) for v in settings.data_validations.dataValidation)


def test_summary_json_has_the_mix_fields(template: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _edited(template, tmp_path, _setting("pareto_points", 5))
    out, js = tmp_path / "out.xlsx", tmp_path / "summary.json"
    # a coupon solver name on a workbook without a coupon model is refused before anything runs
    assert cli.main(["solve", str(path), "-o", str(out), "--summary-json", str(js), "-q", "--solver", "highs"]) == 2
    assert not out.exists() and not js.exists()
    assert cli.main(["solve", str(path), "-o", str(out), "--summary-json", str(js), "-q", "--solver", "oa"]) == 0
    models = json.loads(js.read_text())["models"]
    assert [m["model"] for m in models] == ["mix"]
    s = models[0]
    for key in ("status", "objective", "bound", "gap", "seconds", "changes", "plan", "solver", "formulation"):
        assert key in s
    assert s["status"] == "optimal" and s["solver"] == "oa" and s["formulation"] == "misocp"
    assert s["gap"] <= 1e-4 and s["bound"] >= s["objective"] > s["baseline_revenue"]
    assert len(s["plan"]) == 224 and 0 < s["changes"] <= s["max_changes"] == 56
    assert sum(s["plan"].values()) == pytest.approx(s["budget_used"], rel=1e-12)
    assert [p["k"] for p in s["pareto"]] == [0, 56, 112, 168, 224]
    assert sum(p["knee"] for p in s["pareto"]) == 1
    assert {"Mix Plan", "Mix Budget", "Mix Pareto"} <= set(load_workbook(out).sheetnames)


def test_miqp_formulation_from_settings_agrees_within_the_gaps(
    template: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = {}
    for formulation in ("misocp", "miqp"):
        path = _edited(
            template,
            tmp_path,
            _cells(_setting("pareto_points", 2), _setting("formulation", formulation)),
            f"{formulation}.xlsx",
        )
        js = tmp_path / f"{formulation}.json"
        assert cli.main(["solve", str(path), "--summary-json", str(js), "-q", "--time-limit", "30"]) == 0
        runs[formulation] = json.loads(js.read_text())["models"][0]
    soc, qp = runs["misocp"], runs["miqp"]
    assert (soc["formulation"], qp["formulation"]) == ("misocp", "miqp")
    assert soc["status"] == "optimal" and qp["status"] in ("optimal", "feasible")
    # each plan is feasible for the same problem, so neither may beat the other's proven bound
    assert soc["objective"] <= qp["bound"] * (1 + 1e-9) and qp["objective"] <= soc["bound"] * (1 + 1e-9)
    assert qp["objective"] == pytest.approx(soc["objective"], rel=1e-3)


def test_infeasible_rules_exit_3(template: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # TV must grow to 10x its baseline: beyond every activity's max_spend
    path = _edited(template, tmp_path, _cells(_cell("Rules", "D2", 5e6), _cell("Rules", "E2", None)))
    js = tmp_path / "s.json"
    code, err = _solve(path, capsys, "--summary-json", str(js))
    assert code == 3, err
    s = json.loads(js.read_text())["models"][0]
    assert s["status"] == "infeasible" and s["plan"] is None
    assert "TV total" in s["message"]
    wb = load_workbook(path)
    assert "Mix Plan" in wb.sheetnames and "Mix Pareto" not in wb.sheetnames


def test_demo_solves_both_models_and_the_mix_is_not_stuck_at_baseline(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Regression: after the coupon model's HiGHS runs, the mix solve claimed the baseline optimal."""
    from dmplan.addin import mix_model, workbook
    from dmplan.solver.mix import solve

    js = tmp_path / "demo.json"
    assert cli.main(["demo", "-o", str(tmp_path / "demo.xlsx"), "--summary-json", str(js), "-q"]) == 0
    coupon, mix = json.loads(js.read_text())["models"]
    assert coupon["model"] == "coupon" and mix["model"] == "mix"
    assert mix["status"] == "optimal" and mix["changes"] > 0 and mix["objective"] > mix["baseline_revenue"]
    source = workbook.FileSource(workbook.load(tmp_path / "demo.xlsx", data_only=True))
    alone = solve(mix_model.read_input(source).problem)
    assert alone.objective is not None and alone.bound is not None
    assert mix["objective"] <= alone.bound * (1 + 1e-9) and alone.objective <= mix["bound"] * (1 + 1e-9)
