"""``dmplan solve`` with the customer list in files and the mailing list written to a file, as a user
runs it: the coupon template without its Customers table, the book's customers as CSV/Parquet."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import openpyxl
import polars as pl
import pytest

from dmplan.addin.cli import main
from dmplan.addin.templates import write_template
from dmplan.solver.coupon.book import book_problem


@pytest.fixture(scope="module")
def books(tmp_path_factory) -> dict:
    """The template solved as shipped (Customers table), and a copy without the Customers table."""
    folder = tmp_path_factory.mktemp("books")
    template = write_template("coupon", folder / "dm_plan.xlsx")
    summary = folder / "summary.json"
    assert main(["solve", str(template), "-o", str(folder / "solved.xlsx"), "--summary-json", str(summary), "-q"]) == 0
    reference = json.loads(summary.read_text())["models"][0]
    wb = openpyxl.load_workbook(template)
    rows = list(wb["Customers"].iter_rows(values_only=True))
    del wb["Customers"]
    bare = folder / "no_customers.xlsx"
    wb.save(bare)
    frame = pl.DataFrame({name: [str(r[k]) for r in rows[1:]] for k, name in enumerate(rows[0])})
    return {"reference": reference, "bare": bare, "frame": frame}


def _solve(book: Path, out: Path, *extra: str) -> tuple[int, dict | None]:
    summary = out.with_suffix(".json")
    code = main(["solve", str(book), "-o", str(out), "--summary-json", str(summary), "-q", *extra])
    return code, json.loads(summary.read_text())["models"][0] if summary.exists() else None


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_customers_file_and_mailing_list_file_from_the_command_line(books, tmp_path, suffix):
    customers = tmp_path / f"customers{suffix}"
    books["frame"].write_csv(customers) if suffix == ".csv" else books["frame"].write_parquet(customers)
    listing = tmp_path / f"list{suffix}"
    code, s = _solve(
        books["bare"], tmp_path / "out.xlsx", "--customers", str(customers), "--mailing-list", str(listing)
    )
    assert code == 0 and s is not None
    ref = books["reference"]
    assert s["customer_objective"] == pytest.approx(ref["customer_objective"], abs=1e-9)
    assert s["customer_bound"] == pytest.approx(ref["customer_bound"], abs=1e-9)
    assert s["mailing_list_file"] == str(listing.resolve())
    back = pl.read_csv(listing) if suffix == ".csv" else pl.read_parquet(listing)
    assert back.height == 5000 and back.columns == ["customer_id", "segment", "mailing", "label", "probability"]
    # the list's own numbers give the summary's objective (gain against mailing dm1)
    problem, _ = book_problem()
    seg = {sid: k for k, sid in enumerate(problem.segments)}
    s_idx = np.array([seg[str(v)] for v in back["segment"]])
    base = problem.probability[s_idx, 0]
    assert float((back["probability"].to_numpy() - base).sum()) == pytest.approx(s["customer_objective"], abs=1e-6)
    wb = openpyxl.load_workbook(tmp_path / "out.xlsx")
    assert "DM Mailing List" not in wb.sheetnames  # the list went to the file
    notes = [c.value for row in wb["DM Plan"].iter_rows() for c in row if isinstance(c.value, str)]
    assert any(str(listing.resolve()) in n and "5,000 customers" in n for n in notes)


def test_settings_paths_are_relative_to_the_workbook(books, tmp_path):
    (tmp_path / "data").mkdir()
    books["frame"].write_parquet(tmp_path / "data" / "part-0.parquet")
    wb = openpyxl.load_workbook(books["bare"])
    ws = wb["Settings"]
    ws.append(["customers_file", "data", None])
    ws.append(["mailing_list_file", "mailing.csv", None])
    table = ws.tables["Settings"]
    table.ref = f"A1:C{ws.max_row}"
    book = tmp_path / "book.xlsx"
    wb.save(book)
    code, s = _solve(book, tmp_path / "out.xlsx")
    assert code == 0 and s is not None
    assert s["customer_objective"] == pytest.approx(books["reference"]["customer_objective"], abs=1e-9)
    assert (tmp_path / "mailing.csv").exists() and pl.read_csv(tmp_path / "mailing.csv").height == 5000


def test_bad_customers_file_is_refused_and_nothing_is_written(books, tmp_path, capsys):
    customers = tmp_path / "customers.csv"
    books["frame"].with_columns(pl.col("age_cat").replace({"age20~34": "age99"})).write_csv(customers)
    out, listing = tmp_path / "out.xlsx", tmp_path / "list.csv"
    code, _ = _solve(books["bare"], out, "--customers", str(customers), "--mailing-list", str(listing))
    err = capsys.readouterr().err
    assert code == 2
    assert str(customers) in err and "line 2" in err and "age99" in err
    assert not out.exists() and not listing.exists()


def test_table_and_file_together_are_refused(books, tmp_path, capsys):
    customers = tmp_path / "customers.csv"
    books["frame"].write_csv(customers)
    template = write_template("coupon", tmp_path / "with_table.xlsx")
    code, _ = _solve(template, tmp_path / "out.xlsx", "--customers", str(customers))
    assert code == 2 and "Customers table and a customers file" in capsys.readouterr().err


def test_list_above_excels_row_limit(books, tmp_path):
    """1,100,000 customers: no DM Mailing List sheet (it cannot hold them); with --mailing-list the
    file has every row, without it DM Plan says how to get the list."""
    problem, _ = book_problem()
    M = 1_100_000
    segment = np.random.default_rng(3).integers(0, 16, M)
    frame = pl.DataFrame({"customer_id": np.arange(M), "segment": np.array(problem.segments)[segment]})
    customers = tmp_path / "big.parquet"
    frame.write_parquet(customers)
    wb = openpyxl.load_workbook(books["bare"])
    wb["Settings"]["B2"] = 200.0 * M  # the book's budget per customer
    book = tmp_path / "big.xlsx"
    wb.save(book)
    listing = tmp_path / "big_list.parquet"
    code, s = _solve(book, tmp_path / "out1.xlsx", "--customers", str(customers), "--mailing-list", str(listing))
    assert code == 0 and s is not None and s["customers"] == M and s["customer_status"] == "optimal"
    assert pl.read_parquet(listing).height == M
    code, s = _solve(book, tmp_path / "out2.xlsx", "--customers", str(customers))
    assert code == 0 and s is not None and s["mailing_list_file"] is None
    wb = openpyxl.load_workbook(tmp_path / "out2.xlsx")
    assert "DM Mailing List" not in wb.sheetnames
    notes = [c.value for row in wb["DM Plan"].iter_rows() for c in row if isinstance(c.value, str)]
    assert any("does not fit a sheet" in n and "1,100,000 customers" in n for n in notes)


@pytest.mark.slow
def test_scored_list_above_excels_row_limit_passes_an_independent_check(books, tmp_path):
    """1,100,000 scored customers in a Parquet file: the mailing list file, checked against the input
    file alone (one row per customer, minimum counts, budget, objective), agrees with the summary."""
    problem, _ = book_problem()
    M = 1_100_000
    rng = np.random.default_rng(8)
    segment = rng.integers(0, 16, M)
    p = np.clip(problem.probability[segment] * rng.lognormal(0, 0.3, (M, 1)) * rng.lognormal(0, 0.1, (M, 3)), 0, 1)
    frame = pl.DataFrame(
        {
            "customer_id": [f"X{i}" for i in range(M)],
            "segment": np.array(problem.segments)[segment],
            **{f"prob_dm{d + 1}": p[:, d] for d in range(3)},
        }
    )
    customers = tmp_path / "scored.parquet"
    frame.write_parquet(customers)
    wb = openpyxl.load_workbook(books["bare"])
    budget = 200.0 * M
    wb["Settings"]["B2"] = budget
    wb["Settings"]["B7"] = None  # no time limit: the plan must be proven
    book = tmp_path / "scored.xlsx"
    wb.save(book)
    listing = tmp_path / "scored_list.parquet"
    code, s = _solve(book, tmp_path / "out.xlsx", "--customers", str(customers), "--mailing-list", str(listing))
    assert code == 0 and s is not None and s["customers"] == M
    plan = pl.read_parquet(listing)
    joined = frame.join(plan.select("customer_id", "mailing"), on="customer_id", how="left")
    assert plan.height == M and plan["customer_id"].n_unique() == M and joined["mailing"].null_count() == 0
    d = joined["mailing"].replace_strict({"dm1": 0, "dm2": 1, "dm3": 2}, return_dtype=pl.Int64).to_numpy()
    s_idx = joined["segment"].replace_strict({sid: k for k, sid in enumerate(problem.segments)}).to_numpy()
    q = joined.select([f"prob_dm{k + 1}" for k in range(3)]).to_numpy()
    chosen = q[np.arange(M), d]
    cost = float(np.sum(chosen * np.array([0.0, 1000.0, 2000.0])[d]))
    assert cost <= budget * (1 + 1e-9)
    counts = np.zeros((16, 3), dtype=int)
    np.add.at(counts, (s_idx, d), 1)
    sizes = np.bincount(s_idx, minlength=16)
    assert (counts >= np.ceil(0.1 * sizes[:, None] - 1e-9)).all()
    objective = float(np.sum(chosen - q[:, 0]))
    assert objective == pytest.approx(s["customer_objective"], rel=1e-12)
    assert s["customer_bound"] >= objective and s["customer_gap"] <= 1e-4
