"""The customer-level plan on a Dask cluster (a LocalCluster of two worker processes here), as a
user runs it: ``dmplan solve --customers FOLDER --dask ADDRESS`` over a partitioned Parquet dataset
of scored customers. The plan, objective and bound must equal the in-process run on the same files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import openpyxl
import polars as pl
import pytest

from dmplan.addin.cli import main
from dmplan.solver.coupon import chunks, lagrangian
from dmplan.solver.coupon.book import book_problem, scored_customers
from tests.coupon.test_customer_files_cli import books  # noqa: F401  (the shared workbook fixture)

distributed = pytest.importorskip("dask.distributed")

M = 150_000


@pytest.fixture(scope="module")
def cluster():
    with (
        distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as c,
        distributed.Client(c) as client,
    ):
        yield c.scheduler_address, client


@pytest.fixture(scope="module")
def dataset(books, tmp_path_factory) -> dict:  # noqa: F811
    """Scored customers in three Parquet files of a partitioned folder, and a workbook whose budget fits them."""
    folder = tmp_path_factory.mktemp("dataset")
    problem, customers = scored_customers(book_problem()[0], M, seed=11)
    frame = pl.DataFrame(
        {
            "customer_id": [f"C{i:07d}" for i in range(M)],
            "segment": np.array(problem.segments)[customers.segment],
            **{f"prob_{m}": customers.probability[:, d] for d, m in enumerate(problem.mailing_ids)},
        }
    )
    cuts = [0, 40_000, 95_000, M]
    for k in range(3):
        (folder / "scores" / f"region={k}").mkdir(parents=True)
        frame.slice(cuts[k], cuts[k + 1] - cuts[k]).write_parquet(folder / "scores" / f"region={k}" / "part.parquet")
    wb = openpyxl.load_workbook(books["bare"])
    wb["Settings"]["B2"] = problem.budget
    book = folder / "book.xlsx"
    wb.save(book)
    return {"folder": folder / "scores", "book": book, "frame": frame, "problem": problem}


def _solve(book: Path, out: Path, *extra: str) -> tuple[int, dict | None]:
    summary = out.with_suffix(".json")
    code = main(["solve", str(book), "-o", str(out), "--summary-json", str(summary), "-q", *extra])
    return code, json.loads(summary.read_text())["models"][0] if summary.exists() else None


def _read_parts(folder: Path) -> pl.DataFrame:
    return pl.concat([pl.read_parquet(p) for p in sorted(folder.glob("part-*.parquet"))]).sort("customer_id")


def test_dask_plan_equals_the_in_process_plan(dataset, cluster, tmp_path):
    address, _ = cluster
    local_list, dask_list = tmp_path / "local.parquet", tmp_path / "dask.parquet"
    code, here = _solve(
        dataset["book"], tmp_path / "a.xlsx", "--customers", str(dataset["folder"]), "--mailing-list", str(local_list)
    )
    assert code == 0 and here is not None
    code, there = _solve(
        dataset["book"],
        tmp_path / "b.xlsx",
        "--customers",
        str(dataset["folder"]),
        "--mailing-list",
        str(dask_list),
        "--dask",
        address,
    )
    assert code == 0 and there is not None
    assert there["customer_status"] == "optimal" and there["customers"] == M
    assert there["customer_objective"] == pytest.approx(here["customer_objective"], rel=1e-12)
    assert there["customer_bound"] == pytest.approx(here["customer_bound"], rel=1e-12)
    assert there["customer_gap"] <= 1e-4  # the default gap
    # the workers wrote one part per input file; together they are the in-process list, row for row
    assert dask_list.is_dir() and len(list(dask_list.glob("part-*.parquet"))) == 3
    mine, theirs = pl.read_parquet(local_list).sort("customer_id"), _read_parts(dask_list)
    assert theirs.height == M and theirs.equals(mine)
    # an independent re-check of the list: its objective from the scores, its counts and spend
    problem = dataset["problem"]
    scores = dataset["frame"].sort("customer_id")
    d = np.array([problem.mailing_ids.index(m) for m in theirs["mailing"]])
    p = scores.select([f"prob_{m}" for m in problem.mailing_ids]).to_numpy()
    rows = np.arange(M)
    assert float((p[rows, d] - p[:, 0]).sum()) == pytest.approx(there["customer_objective"], rel=1e-12)
    spend = float((p[rows, d] * problem.coupon_values[d] + problem.piece_costs[d]).sum())
    assert spend <= problem.budget * (1 + 1e-9)
    seg = np.array([problem.segments.index(s) for s in scores["segment"]])
    counts = np.bincount(seg * 3 + d, minlength=48).reshape(16, 3)
    sizes = np.bincount(seg, minlength=16)
    assert (counts >= np.ceil(sizes[:, None] * 0.1 - 1e-9)).all()


def test_dask_store_runs_the_in_process_method(dataset, cluster):
    """Solver level: the same passes on a DaskStore and a ChunkStore give the same certificate."""
    from dmplan.solver.coupon.distributed import DaskStore

    _, client = cluster
    problem, customers = scored_customers(book_problem()[0], 60_000, seed=4)
    local = chunks.ChunkStore.of(problem, customers, chunk_size=25_000)
    futures = client.scatter(local.chunks)
    wrapped = [client.submit(lambda c: type("P", (), {"chunk": c})(), f) for f in futures]
    remote = DaskStore(client, wrapped, [len(c) for c in local.chunks], 16, 3, local.economics)
    a = lagrangian.solve_scored(problem, local)
    b = lagrangian.solve_scored(problem, remote)
    assert b.certificate.objective == pytest.approx(a.certificate.objective, rel=1e-12)
    assert b.certificate.bound == pytest.approx(a.certificate.bound, rel=1e-12)
    np.testing.assert_array_equal(b.overrides.mailing, a.overrides.mailing)


def test_duplicate_ids_across_partitions_are_refused(dataset, cluster, tmp_path, capsys):
    address, _ = cluster
    folder = tmp_path / "dup"
    folder.mkdir()
    frame = dataset["frame"].slice(0, 30_000)
    frame.slice(0, 20_000).write_parquet(folder / "a.parquet")
    frame.slice(19_999, 10_001).write_parquet(folder / "b.parquet")  # C0019999 twice
    out, listing = tmp_path / "out.xlsx", tmp_path / "list.parquet"
    code, _ = _solve(
        dataset["book"], out, "--customers", str(folder), "--mailing-list", str(listing), "--dask", address
    )
    err = capsys.readouterr().err
    assert code == 2
    assert "C0019999" in err and "a.parquet" in err and "b.parquet" in err and "row 1" in err
    assert not out.exists() and not listing.exists()


def test_unscored_list_on_a_cluster_says_it_needs_none(books, cluster, tmp_path, capsys):  # noqa: F811
    address, _ = cluster
    customers = tmp_path / "customers.parquet"
    books["frame"].write_parquet(customers)
    code, _ = _solve(books["bare"], tmp_path / "out.xlsx", "--customers", str(customers), "--dask", address)
    assert code == 2 and "needs no cluster" in capsys.readouterr().err


def test_dask_local_starts_and_stops_its_own_cluster(dataset, tmp_path):
    """``--dask local``: worker processes on this machine for this run only, the same plan."""
    import multiprocessing

    before = set(multiprocessing.active_children())
    code, s = _solve(dataset["book"], tmp_path / "a.xlsx", "--customers", str(dataset["folder"]), "--dask", "local")
    assert code == 0 and s is not None and s["customer_status"] == "optimal" and s["customers"] == M
    assert s["mailing_list_file"] is None
    wb = openpyxl.load_workbook(tmp_path / "a.xlsx")
    notes = [c.value for row in wb["DM Plan"].iter_rows() for c in row if isinstance(c.value, str)]
    assert any("stayed on the cluster" in n for n in notes)
    assert set(multiprocessing.active_children()) <= before  # this run's workers are gone
