"""Customer lists from CSV/Parquet files and the mailing list written to a file, as a user's files
would be: the book's customers and scored lists, written by hand-built frames, read back and solved;
the answers are checked against the in-memory solve and an independent re-computation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from dmplan.addin.customer_files import Segments, read_customers, write_mailing_list
from dmplan.solver.common import InputError, Status
from dmplan.solver.coupon import CouponProblem, CustomerList, solve_customers
from dmplan.solver.coupon.book import book_csv, book_problem, scored_customers
from dmplan.solver.coupon.checks import customer_minimums


@pytest.fixture(scope="module")
def book() -> tuple[CouponProblem, CustomerList]:
    return book_problem()


@pytest.fixture(scope="module")
def segments(book) -> Segments:
    rows = book_csv("visit_probability.csv")
    return Segments(
        book[0].segments,
        {"age_cat": [r["age_cat"] for r in rows], "freq_cat": [r["freq_cat"] for r in rows]},
        book[0].mailing_ids,
    )


def _book_frame(book) -> pl.DataFrame:
    problem, customers = book
    return pl.DataFrame(
        {"Customer ID": customers.customer_id.astype(str), "Segment": [problem.segments[s] for s in customers.segment]}
    )


def _write(frame: pl.DataFrame, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.write_csv(path) if path.suffix == ".csv" else frame.write_parquet(path)
    return path


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_book_customers_from_a_file_solve_like_the_table(book, segments, tmp_path, suffix):
    path = _write(_book_frame(book), tmp_path / f"customers{suffix}")
    customers = read_customers(path, segments)
    np.testing.assert_array_equal(customers.segment, book[1].segment)
    assert list(customers.customer_id) == [str(i) for i in book[1].customer_id]
    assert customers.probability is None
    result = solve_customers(book[0], customers)
    assert result.certificate.status == Status.OPTIMAL
    assert result.certificate.objective == pytest.approx(326.09, abs=1e-6)  # the book's customer-level optimum


def test_key_columns_with_the_users_spelling(book, segments, tmp_path):
    rows = book_csv("customers.csv")
    frame = pl.DataFrame(
        {
            "CUSTOMER_ID": [r["customer_id"] for r in rows],
            "Age Cat": [r["age_cat"].upper() for r in rows],  # matched case-insensitively
            "freq-cat": [r["freq_cat"] for r in rows],
        }
    )
    customers = read_customers(_write(frame, tmp_path / "c.csv"), segments)
    np.testing.assert_array_equal(customers.segment, book[1].segment)


def test_partitioned_folder_and_glob_read_the_same_list(book, segments, tmp_path):
    frame = _book_frame(book)
    parts = [frame.slice(0, 1700), frame.slice(1700, 1700), frame.slice(3400)]
    for k, part in enumerate(parts):
        _write(part, tmp_path / "dataset" / f"region={k}" / f"part-{k}.parquet")
    single = read_customers(_write(frame, tmp_path / "one.parquet"), segments)
    folder = read_customers(tmp_path / "dataset", segments)
    globbed = read_customers(str(tmp_path / "dataset" / "*" / "*.parquet"), segments)
    for other in (folder, globbed):
        np.testing.assert_array_equal(other.segment, single.segment)
        np.testing.assert_array_equal(other.customer_id, single.customer_id)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_scored_file_solves_to_an_independently_checked_plan(book, segments, tmp_path, suffix):
    problem, customers = scored_customers(book[0], 3_000, seed=11)
    frame = pl.DataFrame(
        {
            "customer_id": [f"K{i}" for i in range(len(customers))],
            "segment_id": [problem.segments[s] for s in customers.segment],
            **{f"prob_{m}": customers.probability[:, d] for d, m in enumerate(problem.mailing_ids)},
        }
    )
    read = read_customers(_write(frame, tmp_path / f"scored{suffix}"), segments)
    np.testing.assert_allclose(read.probability, customers.probability, rtol=1e-15)  # CSV round-trips floats exactly
    from_file = solve_customers(problem, read)
    in_memory = solve_customers(problem, customers)
    assert from_file.certificate.objective == pytest.approx(in_memory.certificate.objective, abs=1e-9)
    # independent re-check of the plan from the file's own numbers
    a = from_file.assignment
    p = frame.select([f"prob_{m}" for m in problem.mailing_ids]).to_numpy()
    rows = np.arange(len(a))
    objective = float(np.sum(p[rows, a] - p[:, 0]))
    cost = float(np.sum(p[rows, a] * problem.coupon_values[a] + problem.piece_costs[a]))
    assert objective == pytest.approx(from_file.certificate.objective, abs=1e-9)
    assert cost <= problem.budget * (1 + 1e-9)
    counts = np.zeros((16, 3), dtype=int)
    np.add.at(counts, (read.segment, a), 1)
    assert (counts >= customer_minimums(problem, np.bincount(read.segment, minlength=16))).all()


def _message(path: Path, segments: Segments) -> str:
    with pytest.raises(InputError) as info:
        read_customers(path, segments)
    return str(info.value)


def test_missing_file_and_missing_column(segments, tmp_path):
    assert "no such file or folder" in _message(tmp_path / "nowhere.csv", segments)
    path = _write(pl.DataFrame({"id": ["1"], "segment": ["1"]}), tmp_path / "c.csv")
    message = _message(path, segments)
    assert str(path) in message and "'customer_id'" in message


def test_bad_value_names_file_line_column_and_value(book, segments, tmp_path):
    text = "customer_id,segment,prob_dm1,prob_dm2,prob_dm3\n1,1,0.1,0.2,0.3\n2,2,0.1,abc,0.3\n"
    path = tmp_path / "c.csv"
    path.write_text(text)
    message = _message(path, segments)
    assert str(path) in message and "line 3" in message and "'prob_dm2'" in message and "'abc'" in message
    path.write_text(text.replace("abc", "1.5"))
    assert "'1.5' is not a probability" in _message(path, segments)
    path.write_text(text.replace("abc", ""))
    assert "an empty cell" in _message(path, segments)


def test_duplicate_ids_across_files_name_both_places(book, segments, tmp_path):
    frame = _book_frame(book)
    _write(frame.slice(0, 10), tmp_path / "d" / "a.csv")
    _write(frame.slice(5, 10), tmp_path / "d" / "b.csv")
    message = _message(tmp_path / "d", segments)
    assert "customer id '6' appears twice" in message
    assert "a.csv, line 7" in message and "b.csv, line 2" in message


def test_segment_not_in_segments_and_mixed_scores(book, segments, tmp_path):
    frame = pl.DataFrame({"customer_id": ["1", "2", "3"], "segment": ["1", "99", "2"]})
    message = _message(_write(frame, tmp_path / "c.parquet"), segments)
    assert "row 2" in message and "no segment matches segment = 99" in message
    scored = frame.with_columns(segment=pl.lit("1"), prob_dm1=pl.lit(0.1), prob_dm2=pl.lit(0.2), prob_dm3=pl.lit(0.3))
    _write(scored, tmp_path / "m" / "a.parquet")
    _write(
        frame.with_columns(segment=pl.lit("1"), customer_id=pl.Series(["4", "5", "6"])), tmp_path / "m" / "b.parquet"
    )
    assert "has no prob_<mailing> columns" in _message(tmp_path / "m", segments)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_mailing_list_above_excels_row_limit_is_written_whole(book, tmp_path, suffix):
    """1,100,000 customers (more than an Excel sheet holds): solve, write, read back every row."""
    problem, _ = book
    M = 1_100_000
    segment = np.random.default_rng(5).integers(0, 16, M)
    big = CouponProblem(
        problem.segments, np.bincount(segment, minlength=16), problem.mailings, problem.probability, 200.0 * M
    )
    customers = CustomerList(np.array([f"C{i}" for i in range(M)], dtype=object), segment)
    result = solve_customers(big, customers)
    assert result.certificate.status == Status.OPTIMAL and result.certificate.feasibility.ok
    a = result.assignment
    chosen = big.probability[segment, a]
    labels = [m.label or m.id for m in big.mailings]
    path = write_mailing_list(
        tmp_path / f"list{suffix}", customers.customer_id, big.segments, segment, big.mailing_ids, labels, a, chosen
    )
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left behind
    back = pl.read_csv(path) if suffix == ".csv" else pl.read_parquet(path)
    assert back.height == M > 1_048_576
    assert back.columns == ["customer_id", "segment", "mailing", "label", "probability"]
    assert back["customer_id"][123_456] == "C123456"
    assert back["mailing"][123_456] == big.mailing_ids[a[123_456]]
    assert back["probability"].sum() == pytest.approx(float(chosen.sum()), rel=1e-12)


def test_mailing_list_refuses_other_extensions(tmp_path):
    with pytest.raises(InputError, match=r"\.csv or \.parquet"):
        write_mailing_list(
            tmp_path / "list.xlsx", np.array(["1"]), ["s"], np.array([0]), ["m"], [""], np.array([0]), np.array([0.1])
        )
