"""Worksheet functions called as plain Python with inputs shaped exactly as Excel hands them to a UDF.

xlwings passes a range argument (with ``ndim=2``) as a list of rows; empty cells are ``None``, every
number is a float (whole numbers too), text keeps the user's stray spaces, and a selection usually
reaches past the data into empty rows.
"""

from __future__ import annotations

import inspect
from collections import Counter
from typing import Any

import pytest

from dmplan.addin import coupon_model, templates, udf
from dmplan.addin.pipeline import solve_source
from dmplan.addin.templates import COUPON_MAILINGS, coupon_workbook
from dmplan.addin.workbook import FileSource
from dmplan.solver.coupon.book import book_csv

MAILING_HEADER = ["mailing", "label", "coupon_value", "cost_per_piece", "min_share"]


def book_segments(extra_blank_rows: int = 3) -> list[list[Any]]:
    """The book's 16 segments with customer counts, as Excel passes a range that reaches past the data."""
    segments = book_csv("visit_probability.csv")
    counts = Counter((r["age_cat"], r["freq_cat"]) for r in book_csv("customers.csv"))
    grid: list[list[Any]] = [[" segment_id", "age_cat", "freq_cat ", "customers", "prob_dm1", "prob_dm2", "prob_dm3"]]
    for r in segments:
        grid.append(
            [
                float(r["segment_id"]),
                f" {r['age_cat']} ",
                r["freq_cat"],
                float(counts[(r["age_cat"], r["freq_cat"])]),
                *[float(r[f"prob_dm{d}"]) for d in (1, 2, 3)],
            ]
        )
    return grid + [[None] * 7 for _ in range(extra_blank_rows)]


def book_mailings() -> list[list[Any]]:
    rows = [[m, f"{label}  ", float(v), float(c), float(s)] for m, label, v, c, s in COUPON_MAILINGS]
    return [MAILING_HEADER, *rows, [None] * 5]


def is_error(out: list[list[Any]]) -> bool:
    return len(out) == 1 and len(out[0]) == 1 and str(out[0][0]).startswith("#DMPLAN!")


# --------------------------------------------------------------------------- DMPLAN
def test_dmplan_spills_the_share_table_and_matches_the_file_path() -> None:
    out = udf.dmplan_udf(book_segments(), book_mailings(), 1_000_000.0)
    assert out[0] == ["segment", "dm1", "dm2", "dm3"]
    assert len(out) == 17
    for row in out[1:]:
        assert sum(row[1:]) == pytest.approx(1.0)
        assert all(v >= 0.1 - 1e-9 for v in row[1:])
    # same plan as the workbook's own solve path on the template (same data, same budget)
    runs = solve_source(FileSource(coupon_workbook()))
    allocation = runs[0].summary["allocation"]
    for row in out[1:]:
        for d, mailing in enumerate(("dm1", "dm2", "dm3")):
            assert row[1 + d] == pytest.approx(allocation[row[0]][mailing], abs=1e-6)


def test_dmplan_takes_text_numbers_and_a_1x1_budget_range() -> None:
    a = udf.dmplan_udf(book_segments(), book_mailings(), 1_000_000.0)
    b = udf.dmplan_udf(book_segments(0), book_mailings(), [[" 1,000,000 "]], None)
    assert a == b


def test_dmplan_min_share_overrides_every_mailing() -> None:
    out = udf.dmplan_udf(book_segments(), book_mailings(), 3_000_000.0, 0.2)
    assert not is_error(out)
    assert min(v for row in out[1:] for v in row[1:]) >= 0.2 - 1e-9
    out0 = udf.dmplan_udf(book_segments(), book_mailings(), 3_000_000.0, 0.0)
    assert min(v for row in out0[1:] for v in row[1:]) < 0.2


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda s, m, b: (s.__setitem__(2, [*s[2][:5], 1.5, s[2][6]]), b),
            "segments argument, row 3 of the range, column prob_dm2: 1.5 is not between 0 and 1",
        ),
        (
            lambda s, m, b: (s[3].__setitem__(4, "high"), b),
            "segments argument, row 4 of the range, column prob_dm1: 'high' is not a number",
        ),
        (
            lambda s, m, b: (s[5].__setitem__(3, None), b),
            "segments argument, row 6 of the range, column customers: the cell is empty",
        ),
        (lambda s, m, b: (m[2].__setitem__(2, -3.0), b), "mailings argument, row 3 of the range, column coupon_value"),
        (lambda s, m, b: (s[4].__setitem__(0, 1.0), b), "duplicate id '1'"),
        (lambda s, m, b: (None, -1.0), "budget argument: -1 is below the smallest value allowed"),
        (lambda s, m, b: (None, "lots"), "budget argument: 'lots' is not a number"),
        (lambda s, m, b: (None, None), "setting 'budget' is missing"),
        (lambda s, m, b: (None, 10.0), "budget argument: budget 10.00 is below the smallest feasible budget"),
        (
            lambda s, m, b: (s.__setitem__(0, [h if h != "prob_dm3" else "prob_x" for h in s[0]]), b),
            "probability column 'prob_dm3'",
        ),
    ],
)
def test_dmplan_bad_input_is_a_located_error_text(change: Any, expected: str) -> None:
    segments, mailings = book_segments(), book_mailings()
    _, budget = change(segments, mailings, 1_000_000.0)
    out = udf.dmplan_udf(segments, mailings, budget)
    assert is_error(out), out
    assert expected in out[0][0]


def test_dmplan_errors_for_missing_counts_empty_ranges_and_bad_min_share() -> None:
    segments = [row[:3] + row[4:] for row in book_segments()]
    out = udf.dmplan_udf(segments, book_mailings(), 1e6)
    assert is_error(out) and "column 'customers' is missing" in out[0][0]
    assert "segments argument: the range is empty" in udf.dmplan_udf(None, book_mailings(), 1e6)[0][0]
    assert "mailings argument" in udf.dmplan_udf(book_segments(), [[None, None]], 1e6)[0][0]
    assert "min_share argument: 3 mailings x 0.5" in udf.dmplan_udf(book_segments(), book_mailings(), 1e6, 0.5)[0][0]
    assert "budget argument: expected one value" in udf.dmplan_udf(book_segments(), book_mailings(), [[1.0, 2.0]])[0][0]


def test_dmplan_never_raises_on_garbage() -> None:
    for args in ([[1]], [["x"]], 5.0), ("a", "b", "c"), ([[None]], [[None]], None):
        out = udf.dmplan_udf(*args)
        assert is_error(out)


# --------------------------------------------------------------------------- DMPARETO
def test_dmpareto_spills_the_sweep() -> None:
    out = udf.dmpareto_udf(book_segments(), book_mailings(), None, None, 5.0)
    assert out[0] == ["budget", "extra_conversions", "cost_per_extra_conversion"]
    assert len(out) == 6
    budgets = [row[0] for row in out[1:]]
    assert budgets == sorted(budgets)
    extra = [row[1] for row in out[1:]]
    assert extra == sorted(extra)
    # the sweep's budgets reproduce DMPLAN's objective at that budget
    data = coupon_model.read_input(
        udf.ArgumentSource(
            {
                "Segments": udf.argument_table("Segments", "segments", book_segments()),
                "Mailings": udf.argument_table("Mailings", "mailings", book_mailings()),
                "Settings": udf.settings_arguments([("budget", "budget", out[3][0])]),
            }
        )
    )
    from dmplan.solver.coupon import solve

    assert solve(data.problem).objective == pytest.approx(out[3][1], rel=1e-6)


def test_dmpareto_range_and_errors() -> None:
    out = udf.dmpareto_udf(book_segments(), book_mailings(), 2_000_000.0, 3_000_000.0, 3.0)
    assert [row[0] for row in out[1:]] == pytest.approx([2e6, 2.5e6, 3e6])
    assert (
        "points argument: 1 is not between 2 and 200"
        in udf.dmpareto_udf(book_segments(), book_mailings(), None, None, 1.0)[0][0]
    )
    assert (
        "points argument: 2.5 is not a whole number"
        in udf.dmpareto_udf(book_segments(), book_mailings(), None, None, 2.5)[0][0]
    )
    assert "budget_to argument" in udf.dmpareto_udf(book_segments(), book_mailings(), None, 5.0, 3.0)[0][0]


# --------------------------------------------------------------------------- wrappers
def test_xlwings_wrappers_have_the_excel_signatures() -> None:

    assert list(inspect.signature(udf.DMPLAN).parameters) == ["segments", "mailings", "budget", "min_share"]
    assert list(inspect.signature(udf.DMPARETO).parameters) == [
        "segments",
        "mailings",
        "budget_from",
        "budget_to",
        "points",
    ]
    assert list(inspect.signature(udf.MIXPLAN).parameters) == [
        "activities",
        "budget_max",
        "max_changes",
        "rules",
        "budget_min",
    ]
    import dmplan

    # the add-in's UDF module is dmplan: xlwings finds the functions through dir(dmplan)
    assert {"DMPLAN", "DMPARETO", "MIXPLAN"} <= set(dir(dmplan))
    assert (dmplan.DMPLAN, dmplan.DMPARETO, dmplan.MIXPLAN) == (udf.DMPLAN, udf.DMPARETO, udf.MIXPLAN)
    assert udf.DMPLAN(book_segments(), book_mailings(), 1e6) == udf.dmplan_udf(book_segments(), book_mailings(), 1e6)


def test_udfs_stay_in_process(monkeypatch: pytest.MonkeyPatch) -> None:
    import subprocess

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a worksheet function started a process")

    monkeypatch.setattr(subprocess, "Popen", refuse)
    assert not is_error(udf.dmplan_udf(book_segments(), book_mailings(), 1e6))
    assert not is_error(udf.dmpareto_udf(book_segments(), book_mailings(), None, None, 3.0))


# --------------------------------------------------------------------------- MIXPLAN
def mix_arguments() -> tuple[list[list[Any]], list[list[Any]], float]:
    rows = templates.example_activities()
    # Excel hands every number as a float and keeps stray spaces in text
    activities = [list(templates.MIX_HEADER), *[[float(v) if isinstance(v, int) else v for v in r] for r in rows]]
    activities[3][1] = f" {activities[3][1]} "
    rules = [["rule", "column", "match", "lower", "upper", "on"], *templates.example_rules(rows), [None] * 6]
    total = float(sum(r[5] for r in rows))
    return [*activities, [None] * len(activities[0])], rules, total


def test_mixplan_spills_the_plan_and_a_status_row() -> None:
    from dmplan.solver.mix import check_plan

    activities, rules, total = mix_arguments()
    n = sum(1 for r in activities[1:] if r[0] is not None)
    out = udf.mixplan_udf(activities, 1.01 * total, float(n // 4), rules, 0.99 * total)
    assert out[0] == ["activity", "new_spend", "change", "region"], out[:2]
    assert len(out) == n + 2
    status = out[-1]
    assert status[0] == "status" and status[1] == "optimal" and status[2] == "gap" and status[3] <= 1e-4
    plan = out[1:-1]
    assert sum(1 for r in plan if r[3] != "unchanged") <= n // 4
    assert 0.99 * total - 1e-6 <= sum(r[1] for r in plan) <= 1.01 * total + 1e-6
    assert {r[3] for r in plan} <= {"increase", "decrease", "unchanged"}
    # the same plan passes the model's own re-check on the problem read from the same arguments
    data = udf.mix_input(activities, 1.01 * total, float(n // 4), rules, 0.99 * total)
    import numpy as np

    check = check_plan(data.problem, np.array([r[2] for r in plan]))
    assert check.ok, check


def test_mixplan_after_dmplan_in_the_same_process() -> None:
    """One UDF server runs every function: a coupon LP first must not break the mix solve."""
    activities, _rules, total = mix_arguments()
    assert not is_error(udf.dmpareto_udf(book_segments(), book_mailings(), None, None, 3.0))
    out = udf.mixplan_udf(activities, 1.01 * total, 20.0, None, None)
    assert out[-1][1] == "optimal", out[-1]


def test_mixplan_bad_input_is_a_located_error_text() -> None:
    activities, rules, total = mix_arguments()
    bad = [row[:] for row in activities]
    bad[4][9] = 0.5  # a > 0: convex revenue
    out = udf.mixplan_udf(bad, total, 10.0)
    assert is_error(out) and "activities argument, row 5 of the range, column a" in out[0][0], out
    out = udf.mixplan_udf(activities, total, -1.0)
    assert is_error(out) and "max_changes argument" in out[0][0], out
    out = udf.mixplan_udf(activities, "much", 10.0)
    assert is_error(out) and "budget_max argument" in out[0][0], out
    bad_rules = [row[:] for row in rules]
    bad_rules[1][1] = "no_such_column"
    out = udf.mixplan_udf(activities, total, 10.0, bad_rules)
    assert is_error(out) and "rules argument, row 2 of the range" in out[0][0], out
    assert is_error(udf.mixplan_udf(None, total, 10.0))
