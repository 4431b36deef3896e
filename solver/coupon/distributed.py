"""The coupon plan's passes on a Dask cluster: a :class:`chunks.Store` over persisted partitions.

Each partition lives on a worker as an object with a ``chunk`` attribute (:class:`chunks.Chunk`,
global positions already set); :meth:`DaskStore.map` runs a pass on every partition where it is
and gathers only the small results (totals per segment and mailing, the few customers near a
tie). The method (:func:`lagrangian.solve_scored`) is the same as in-process, so are its plan,
objective and bound.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from dmplan.solver.coupon.chunks import Economics, OutOfTime

T = TypeVar("T")


def _apply(partition: Any, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
    return fn(partition.chunk, *args)


class DaskStore:
    """Partitions held on a cluster by ``futures`` (one per partition, in global order)."""

    def __init__(self, client: Any, futures: Sequence[Any], sizes: Sequence[int], S: int, D: int, economics: Economics):
        self.client, self.futures = client, list(futures)
        self.sizes = list(sizes)
        self.S, self.D, self.economics = S, D, economics

    def map(self, fn: Callable[..., T], *args: Any, until: float | None = None) -> list[T]:
        return self.run(_apply, fn, args, until=until)

    def run(self, fn: Callable[..., T], *args: Any, until: float | None = None) -> list[T]:
        """``fn(partition, *args)`` on every partition, results in partition order; past ``until``
        (a ``time.perf_counter`` instant) the tasks are cancelled and :class:`OutOfTime` raised."""
        tasks = [self.client.submit(fn, f, *args, pure=False) for f in self.futures]
        if until is not None:
            from distributed import wait

            try:
                wait(tasks, timeout=max(0.0, until - time.perf_counter()))
            except TimeoutError:
                self.client.cancel(tasks)
                raise OutOfTime from None
        return list(self.client.gather(tasks))

    @property
    def size(self) -> int:
        return sum(self.sizes)
