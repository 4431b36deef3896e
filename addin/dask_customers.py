"""Customer files on a Dask cluster: each file a partition, read, checked and kept on a worker.

``dask_scheduler`` (Settings) or ``--dask ADDRESS`` names the scheduler (``tcp://host:8786``), or
``local`` for a cluster of worker processes on this machine. The workers read the files with the
same reader as the in-process path (:func:`customer_files.read_part`: the same columns, the same
errors naming file, row and column), so they must see the files at the same paths (a shared
folder or object store mounted alike). The plan's passes run where the data is
(:class:`dmplan.solver.coupon.distributed.DaskStore`); the mailing list is written by the workers,
one part per input file, into a folder named like the list (``list.parquet/part-00000.parquet``).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from dmplan.addin.customer_files import (
    Segments,
    customer_files,
    mailing_list_format,
    read_part,
    row_label,
    write_mailing_list,
)
from dmplan.solver.common import InputError
from dmplan.solver.coupon import chunks as ch
from dmplan.solver.coupon.distributed import DaskStore
from dmplan.solver.coupon.model import CouponProblem


@dataclass(frozen=True)
class Partition:
    """One file's customers on a worker."""

    file: Path
    customer_id: pl.Series
    chunk: ch.Chunk


def connect(address: str) -> Any:
    """A client of the scheduler at ``address``; ``local`` starts worker processes on this machine."""
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError as exc:
        raise InputError(
            "Dask is not installed.", where="dask_scheduler", fix="pip install 'dmplan[dask]', or clear dask_scheduler."
        ) from exc
    try:
        if address.strip().lower() == "local":
            return Client(LocalCluster(processes=True, threads_per_worker=1, dashboard_address=None))
        return Client(address, timeout=30)
    except (OSError, TimeoutError) as exc:
        raise InputError(
            f"no Dask scheduler answers at {address!r} ({exc}).",
            where="dask_scheduler",
            fix="Start the cluster first, check the address (tcp://host:8786), or clear dask_scheduler.",
        ) from exc


def disconnect(client: Any) -> None:
    """Close the client, and the cluster :func:`connect` started for ``local``."""
    cluster = getattr(client, "cluster", None)
    client.close()
    if cluster is not None:
        cluster.close()


def _load(file: Path, segments: Segments, economics: ch.Economics) -> Partition:
    part = read_part(file, segments)
    if part.probability is None:
        raise InputError(
            "has no prob_<mailing> columns: a list without scores is planned per segment and needs no cluster.",
            where=f"customers file {file}",
            fix="Add the prob_<mailing> scores, or clear dask_scheduler.",
        )
    return Partition(file, part.customer_id, ch.Chunk.build(0, part.segment, part.probability, economics))


def _length(part: Partition) -> int:
    return len(part.chunk)


def _rebase(part: Partition, offset: int) -> Partition:
    c = part.chunk
    return Partition(part.file, part.customer_id, ch.Chunk(offset, c.segment, c.probability, c.gain, c.cost))


def _id_hashes(part: Partition) -> np.ndarray:
    return part.customer_id.hash(seed=7).to_numpy()


def _ids_at(part: Partition, rows: np.ndarray) -> list[str]:
    return [str(v) for v in part.customer_id.gather(rows).to_list()]


def load(client: Any, spec: str | Path, segments: Segments, problem: CouponProblem) -> DaskStore:
    """Read every file of ``spec`` on the cluster, check ids are unique over all of them, and keep
    the partitions there (in file order, numbered from 0 across files)."""
    files = customer_files(spec)
    economics = ch.Economics.of(problem)
    loaded = client.map(_load, files, segments=segments, economics=economics, pure=False)
    sizes = [int(n) for n in client.gather(client.map(_length, loaded, pure=False))]
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(int).tolist()
    futures = client.map(_rebase, loaded, offsets, pure=False)
    del loaded
    _check_unique(client, futures, files, sizes)
    S, D = problem.probability.shape
    return DaskStore(client, futures, sizes, S, D, economics)


def _check_unique(client: Any, futures: list[Any], files: list[Path], sizes: list[int]) -> None:
    """Customer ids unique over every file: 64-bit hashes gathered, a repeated hash compared exactly."""
    hashes = client.gather(client.map(_id_hashes, futures, pure=False))
    every = np.concatenate(hashes) if hashes else np.empty(0, np.uint64)
    order = np.argsort(every, kind="stable")
    repeat = np.flatnonzero(every[order][1:] == every[order][:-1])
    if repeat.size == 0:
        return
    starts = np.cumsum([0, *sizes])
    for k in repeat:
        places = []
        for position in (int(order[k]), int(order[k + 1])):
            p = int(np.searchsorted(starts, position, side="right") - 1)
            places.append((p, position - int(starts[p])))
        ids = [client.submit(_ids_at, futures[p], np.array([row]), pure=False).result()[0] for p, row in places]
        if ids[0] == ids[1]:
            (p1, r1), (p2, r2) = places
            raise InputError(
                f"customer id {ids[0]!r} appears twice (also {files[p1]}, {row_label(files[p1], r1)}).",
                where=f"customers file {files[p2]}, {row_label(files[p2], r2)}, column 'customer_id'",
                fix="Give every customer one row.",
            )


def _write_part(
    part: Partition,
    duals: ch.Duals,
    window: ch.Window,
    overrides: ch.Overrides,
    economics: ch.Economics,
    path: str,
    names: tuple[list[str], list[str], list[str]],
) -> None:
    mailings, _ = ch.assign(part.chunk, duals, window, overrides, economics)
    choice = mailings.astype(np.int64)
    probability = part.chunk.probability[np.arange(len(choice)), choice]
    segment_ids, mailing_ids, labels = names
    customer_id = part.customer_id.cast(pl.String).to_numpy().astype(object)
    write_mailing_list(path, customer_id, segment_ids, part.chunk.segment, mailing_ids, labels, choice, probability)


def write_parts(
    store: DaskStore,
    target: Path,
    problem: CouponProblem,
    duals: ch.Duals,
    window: ch.Window,
    overrides: ch.Overrides,
) -> Path:
    """The mailing list as a folder ``target`` of one part per partition, written by the workers into
    a temporary folder beside it and renamed into place (a reader never sees half a list)."""
    suffix = mailing_list_format(target, "Name it .csv or .parquet (with a cluster, a folder of parts in that format).")
    temp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        names = (list(problem.segments), list(problem.mailing_ids), [m.label for m in problem.mailings])
        tasks = [
            store.client.submit(
                _write_part,
                future,
                duals,
                window,
                overrides,
                store.economics,
                str(temp / f"part-{k:05d}{suffix}"),
                names,
                pure=False,
            )
            for k, future in enumerate(store.futures)
        ]
        store.client.gather(tasks)
        if target.is_dir():
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old.", dir=target.parent))
            os.replace(target, old / target.name)
            os.replace(temp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            if target.exists():
                target.unlink()
            os.replace(temp, target)
    finally:
        if temp.exists():
            shutil.rmtree(temp, ignore_errors=True)
    return target
