"""The coupon plan through the workbook: contract, result sheets, charts, errors, LibreOffice."""

from __future__ import annotations

import hashlib
import itertools
import json
import shutil
from pathlib import Path

import numpy as np
import openpyxl
import pytest
from openpyxl.chart import BarChart, ScatterChart

from dmplan.addin.cli import main
from dmplan.addin.templates import write_template
from tests import libreoffice

RESULT_SHEETS = ["DM Plan", "DM Budget", "DM Pareto", "DM Mailing List"]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def solved(tmp_path_factory) -> tuple[Path, Path, dict]:
    folder = tmp_path_factory.mktemp("coupon")
    template = write_template("coupon", folder / "dm_plan.xlsx")
    out = folder / "solved.xlsx"
    summary = folder / "summary.json"
    assert main(["solve", str(template), "-o", str(out), "--summary-json", str(summary), "-q"]) == 0
    return template, out, json.loads(summary.read_text())["models"][0]


def test_summary_json_has_the_contract_fields(solved):
    _, _, s = solved
    assert s["model"] == "coupon" and s["status"] == "optimal"
    assert round(s["objective"], 1) == 326.1
    assert s["budget"] == 1_000_000 and s["budget_used"] == pytest.approx(1_000_000)
    assert s["min_feasible_budget"] == pytest.approx(761_850)
    assert s["shadow_price"] == pytest.approx(0.00037254902, rel=1e-6)
    assert round(s["customer_objective"], 1) == 326.1 and s["customer_status"] == "optimal"
    shares = s["allocation"]
    assert set(shares) == {str(i) for i in range(1, 17)}
    for row in shares.values():
        assert sum(row.values()) == pytest.approx(1.0) and min(row.values()) >= 0.1 - 1e-9
    assert s["seconds"] > 0


def test_result_sheets_tables_and_charts(solved):
    _template, out, s = solved
    wb = openpyxl.load_workbook(out)
    assert wb.sheetnames[-4:] == RESULT_SHEETS
    plan = wb["DM Plan"]
    table = plan.tables["DMPlan_Allocation"]
    _first, _last = table.ref.split(":")
    rows = list(plan[table.ref])
    header = [c.value for c in rows[0]]
    assert header[:4] == ["segment", "age_cat", "freq_cat", "customers"]
    assert len(rows) == 17  # header + 16 segments
    share_cols = [header.index(f"share_dm{d}") for d in (1, 2, 3)]
    for r in rows[1:]:
        segment = str(r[0].value)
        assert [r[j].value for j in share_cols] == pytest.approx(list(s["allocation"][segment].values()), abs=1e-9)
        counts = [r[header.index(f"customers_dm{d}")].value for d in (1, 2, 3)]
        assert sum(counts) == r[header.index("customers")].value  # whole customers add up
    # budget chart: stacked bars, one series per mailing over the segment rows
    budget = wb["DM Budget"]
    (chart,) = budget._charts
    assert isinstance(chart, BarChart) and chart.grouping == "stacked" and len(chart.series) == 3
    seg_table = budget.tables["DMPlan_BudgetBySegment"]
    top = int(seg_table.ref.split(":")[0][1:])
    refs = [sr.val.numRef.f for sr in chart.series]
    assert refs == [f"'DM Budget'!${c}${top + 1}:${c}${top + 16}" for c in "BCD"]
    assert chart.series[0].cat.numRef.f == f"'DM Budget'!$A${top + 1}:$A${top + 16}"
    # Pareto chart: extra conversions against budget, plus this plan's point
    pareto = wb["DM Pareto"]
    (chart,) = pareto._charts
    assert isinstance(chart, ScatterChart) and len(chart.series) == 2
    assert chart.series[0].xVal.numRef.f == "'DM Pareto'!$A$6:$A$25"
    assert chart.series[0].yVal.numRef.f == "'DM Pareto'!$B$6:$B$25"
    assert chart.series[1].yVal.numRef.f == "'DM Pareto'!$B$26"  # one cell: this plan's budget
    sweep = [pareto.cell(r, 2).value for r in range(6, 26)]
    assert all(b >= a - 1e-9 for a, b in itertools.pairwise(sweep))
    assert pareto.cell(6, 1).value == pytest.approx(761_850)
    listing = wb["DM Mailing List"]
    mailings = [listing.cell(r, 3).value for r in range(5, 5 + 5000)]
    assert len(mailings) == 5000 and set(mailings) == {"dm1", "dm2", "dm3"}
    assert listing.cell(5 + 5000, 1).value is None


def test_input_sheets_are_untouched_and_rerun_replaces_results(solved, tmp_path):
    template, out, _ = solved
    book = tmp_path / "again.xlsx"
    shutil.copy(out, book)
    assert main(["solve", str(book), "-q"]) == 0  # in place, results already there
    before, after = openpyxl.load_workbook(template), openpyxl.load_workbook(book)
    assert after.sheetnames == before.sheetnames + RESULT_SHEETS  # replaced, not duplicated
    for name in before.sheetnames:
        old = [[_content(c.value) for c in row] for row in before[name].iter_rows()]
        new = [[_content(c.value) for c in row] for row in after[name].iter_rows()]
        assert old == new, name
    assert set(after["Segments"].tables) == {"Segments"}


def _content(value):
    """A cell's content; array formulas compare by their text and range."""
    return (value.ref, value.text) if hasattr(value, "text") and hasattr(value, "ref") else value


def _edit(template: Path, target: Path, edit) -> Path:
    wb = openpyxl.load_workbook(template)
    edit(wb)
    wb.save(target)
    return target


BAD_INPUTS = {
    "probability above 1": (
        lambda wb: wb["Segments"].__setitem__("E3", 1.5),
        ["'Segments'", "row 3", "prob_dm2", "E3", "1.5 is not between 0 and 1"],
    ),
    "probability not a number": (
        lambda wb: wb["Segments"].__setitem__("D2", "high"),
        ["row 2", "prob_dm1", "not a number"],
    ),
    "duplicate segment": (lambda wb: wb["Segments"].__setitem__("C3", 1), ["duplicate id '1'", "row 3", "segment_id"]),
    "duplicate mailing": (
        lambda wb: wb["Mailings"].__setitem__("A3", "dm1"),
        ["duplicate id 'dm1'", "'Mailings'", "row 3"],
    ),
    "missing probability column": (
        lambda wb: wb["Segments"].__setitem__("F1", "prob_dmx"),
        ["prob_dm3", "Add a column"],
    ),
    "negative coupon value": (
        lambda wb: wb["Mailings"].__setitem__("C3", -1000),
        ["coupon_value", "row 3", "below the smallest value allowed, 0"],
    ),
    "minimum shares above 1": (lambda wb: wb["Mailings"].__setitem__("E2", 0.9), ["add up to 1.1", "min_share"]),
    "negative budget": (lambda wb: wb["Settings"].__setitem__("B2", -5), ["'Settings'", "row 2", "value", "-5"]),
    "budget below the smallest feasible": (
        lambda wb: wb["Settings"].__setitem__("B2", 500_000),
        ["761,850.00", "smallest feasible budget", "'Settings'", "row 2"],
    ),
    "missing budget": (lambda wb: wb["Settings"].__setitem__("A2", "budgt"), ["'budget' is missing"]),
    "unknown customer segment": (
        lambda wb: wb["Customers"].__setitem__("B4", "age99"),
        ["'Customers'", "row 4", "age_cat"],
    ),
    "missing mailings table": (lambda wb: _drop(wb, "Mailings"), ["no Mailings table"]),
    "missing column": (lambda wb: wb["Mailings"].__setitem__("C1", "value"), ["coupon_value", "missing"]),
    "empty table": (lambda wb: _empty(wb, "Mailings"), ["no data rows", "Mailings"]),
}


def _drop(wb, name):
    del wb[name]


def _empty(wb, name):
    ws = wb[name]
    for row in ws.iter_rows(min_row=2):
        for cell in row:
            cell.value = None


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_is_refused_with_location_and_file_untouched(case, solved, tmp_path, capsys):
    template, _, _ = solved
    edit, expected = BAD_INPUTS[case]
    book = _edit(template, tmp_path / "bad.xlsx", edit)
    before = digest(book)
    assert main(["solve", str(book), "-q"]) == 2
    message = " ".join(capsys.readouterr().err.split())
    for text in expected:
        assert text in message, (text, message)
    assert digest(book) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.xlsx"]  # no temporary file left behind


def test_negative_customer_count_names_the_cell(solved, tmp_path, capsys):
    template, _, _ = solved

    def add_counts(wb):
        ws = wb["Segments"]
        ws["G1"] = "customers"
        for r in range(2, 18):
            ws.cell(r, 7, 100)
        ws["G5"] = -3
        ws.tables["Segments"].ref = "A1:G17"

    book = _edit(template, tmp_path / "bad.xlsx", add_counts)
    assert main(["solve", str(book), "-q"]) == 2
    message = " ".join(capsys.readouterr().err.split())
    assert "row 5" in message and "customers" in message and "G5" in message


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"just some text, not a workbook", "not an Excel workbook"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 512, "password protected"),
    ],
)
def test_files_that_are_not_usable_workbooks(tmp_path, capsys, content, expected):
    book = tmp_path / "book.xlsx"
    book.write_bytes(content)
    assert main(["solve", str(book), "-q"]) == 2
    assert expected in capsys.readouterr().err
    assert book.read_bytes() == content


def test_workbook_open_in_excel_is_not_overwritten(solved, tmp_path, capsys):
    template, _, _ = solved
    book = tmp_path / "book.xlsx"
    shutil.copy(template, book)
    (tmp_path / "~$book.xlsx").write_bytes(b"owner")
    before = digest(book)
    assert main(["solve", str(book), "-q"]) == 2
    assert "open in Excel" in capsys.readouterr().err
    assert digest(book) == before


def test_dollar_workbook_gives_the_same_plan(solved, tmp_path):
    template, _, s = solved

    def dollars(wb):
        for r, value in ((2, 0), (3, 10), (4, 20)):
            wb["Mailings"].cell(r, 3, value)
        wb["Settings"]["B2"] = 10_000

    book = _edit(template, tmp_path / "usd.xlsx", dollars)
    summary = tmp_path / "usd.json"
    assert main(["solve", str(book), "--summary-json", str(summary), "-q"]) == 0
    usd = json.loads(summary.read_text())["models"][0]
    assert usd["objective"] == pytest.approx(s["objective"], abs=1e-6)
    for segment, row in s["allocation"].items():
        assert list(usd["allocation"][segment].values()) == pytest.approx(list(row.values()), abs=1e-7)


def test_customer_scores_override_segment_probabilities(solved, tmp_path):
    template, _, _ = solved

    def scores(wb):
        ws = wb["Customers"]
        rng = np.random.default_rng(0)
        for j, name in enumerate(("prob_dm1", "prob_dm2", "prob_dm3")):
            ws.cell(1, 4 + j, name)
        for r in range(2, 5002):
            base = sorted(rng.uniform(0.05, 0.9, 3))
            for j in range(3):
                ws.cell(r, 4 + j, float(base[j]))
        ws.tables["Customers"].ref = "A1:F5001"

    book = _edit(template, tmp_path / "scores.xlsx", scores)
    summary = tmp_path / "s.json"
    assert main(["solve", str(book), "--summary-json", str(summary), "-q"]) == 0
    s = json.loads(summary.read_text())["models"][0]
    assert s["customer_status"] == "optimal" and s["customer_gap"] <= 1e-4
    assert s["customer_objective"] != pytest.approx(326.09, abs=1)  # the scores were used
    listing = openpyxl.load_workbook(book)["DM Mailing List"]
    probs = [listing.cell(r, 5).value for r in range(5, 5005)]
    assert len(set(probs)) > 100  # individual scores, not 16 segment values


@pytest.mark.skipif(not libreoffice.available(), reason="LibreOffice is installed by build/setup_dev.sh")
def test_libreoffice_recalculates_kpis_and_renders_charts(solved, tmp_path):
    _, out, s = solved
    wb = openpyxl.load_workbook(out)
    for name in wb.sheetnames:
        if name not in ("DM Plan", "DM Budget", "DM Pareto"):
            del wb[name]
    # openpyxl stores formulas without cached values: these numbers can only come from LibreOffice
    small = tmp_path / "results.xlsx"
    wb.save(small)
    recalculated = libreoffice.convert(small, "xlsx", tmp_path / "recalc", tmp_path)
    values = openpyxl.load_workbook(recalculated, data_only=True)["DM Plan"]
    kpi = {values.cell(r, 7).value: values.cell(r, 8).value for r in range(5, 23)}
    assert kpi["Extra conversions (objective)"] == pytest.approx(s["objective"], rel=1e-9)
    assert kpi["Expected conversions"] == pytest.approx(s["expected_conversions"], rel=1e-9)
    assert kpi["Budget used"] == pytest.approx(s["budget_used"], rel=1e-9)
    assert kpi["Budget left"] == pytest.approx(s["budget"] - s["budget_used"], abs=1e-3)
    assert kpi["Cost per extra conversion"] == pytest.approx(s["cost_per_extra_conversion"], rel=1e-9)
    pdf = libreoffice.convert(small, "pdf", tmp_path / "pdf", tmp_path)
    pages = libreoffice.pdf_to_png(pdf, tmp_path / "png", resolution=50)
    assert len(pages) == 3
    from PIL import Image

    for page in pages[1:]:  # DM Budget and DM Pareto: the chart sits at the right of the table
        image = np.asarray(Image.open(page).convert("L"), dtype=float)
        right = image[:, image.shape[1] // 2 :]
        assert right.std() > 10, f"{page.name}: the chart area is blank"


def test_macro_template_keeps_its_run_button_and_vba(tmp_path):
    """openpyxl drops form controls of files it rewrites; the save path puts them back."""
    import zipfile

    from dmplan.addin.ooxml import form_buttons
    from dmplan.addin.xl import template_path

    source = template_path("coupon").with_suffix(".xlsm")
    book = tmp_path / source.name
    shutil.copy(source, book)
    before = form_buttons(book)
    assert list(before) == ["Instructions"]
    assert main(["solve", str(book), "-q"]) == 0
    assert form_buttons(book) == before
    names = zipfile.ZipFile(book).namelist()
    assert "xl/vbaProject.bin" in names and "DM Plan" in openpyxl.load_workbook(book, keep_vba=True).sheetnames
    if libreoffice.available():
        ods = libreoffice.convert(book, "ods", tmp_path / "ods", tmp_path)
        content = zipfile.ZipFile(ods).read("content.xml").decode("utf-8")
        assert "form:button" in content and "SampleCall" in content
