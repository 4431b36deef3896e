"""Scored customers in chunks, and the passes the Lagrangian method makes over them.

A chunk holds a contiguous run of customers: their segment, their scores (float64, as given) and
the gain and cost per mailing in float32 for the screening passes. Every pass is a pure function
of one chunk and a few small arrays (the duals, a margin per segment), returning a few aggregates
per segment and mailing plus the handful of customers near a tie. The same functions run
in-process over a list of chunks (:class:`ChunkStore`) and on Dask workers over the partitions of
a dataset (:mod:`dmplan.solver.coupon.distributed`): the method never sees where the data is.

Sums that a result reports (objective, spend, the Lagrangian bound) are computed in float64 from
the scores; float32 only decides which customers need a closer look.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import numpy as np

from dmplan.solver.coupon.model import CouponProblem, CustomerList

T = TypeVar("T")
CHUNK_SIZE = (
    1 << 20
)  #: customers per in-process chunk: large enough to amortise NumPy calls, small enough for cache-friendly temporaries


@dataclass(frozen=True)
class Economics:
    """What turns scores into gain and cost: coupon value and cost per piece per mailing, the baseline."""

    coupon: np.ndarray  # (D,)
    piece: np.ndarray  # (D,)
    baseline: int

    @classmethod
    def of(cls, problem: CouponProblem) -> Economics:
        return cls(problem.coupon_values, problem.piece_costs, problem.baseline_index)

    def gain(self, probability: np.ndarray) -> np.ndarray:
        """Extra conversion probability against the baseline mailing."""
        return probability - probability[:, [self.baseline]]

    def cost(self, probability: np.ndarray) -> np.ndarray:
        """Expected cost: the coupon is paid when the customer converts, the piece always."""
        return probability * self.coupon[None, :] + self.piece[None, :]

    @property
    def value_scale(self) -> float:
        """A bound on how much a customer's value can differ between mailings (gains are
        probabilities: at most 1)."""
        return 1.0


@dataclass(frozen=True)
class Duals:
    """Prices of the coupling rows: mu[s, d] >= 0 per minimum count, lam >= 0 for the budget."""

    mu: np.ndarray  # (S, D)
    lam: float

    @classmethod
    def zero(cls, S: int, D: int) -> Duals:
        return cls(np.zeros((S, D)), 0.0)

    @classmethod
    def of_rows(cls, row_dual: np.ndarray, S: int, D: int) -> Duals:
        """The prices from HiGHS's duals of the coupling rows (S*D minimum counts, then the budget) of
        a maximisation: a binding ">= L" row has dual <= 0, the binding budget row dual >= 0."""
        return cls(np.maximum(0.0, -row_dual[: S * D]).reshape(S, D), max(0.0, float(row_dual[S * D])))

    def reduced(self, segment: np.ndarray, gain: np.ndarray, cost: np.ndarray) -> np.ndarray:
        """gain + mu[segment] - lam * cost, in the dtype of ``gain``."""
        mu = self.mu.astype(gain.dtype, copy=False)
        return gain + mu[segment] - gain.dtype.type(self.lam) * cost


@dataclass(frozen=True)
class Chunk:
    """A run of customers starting at global position ``offset``.

    Gain and cost are stored a mailing per row, (D, m): the passes work a mailing at a time on
    contiguous columns, far faster in NumPy than reductions along a short last axis."""

    offset: int
    segment: np.ndarray  # (m,) int32
    probability: np.ndarray  # (m, D) float64 scores
    gain: np.ndarray  # (D, m) float32
    cost: np.ndarray  # (D, m) float32

    @classmethod
    def build(cls, offset: int, segment: np.ndarray, probability: np.ndarray, economics: Economics) -> Chunk:
        p = np.ascontiguousarray(probability, dtype=np.float64)
        return cls(
            offset,
            np.ascontiguousarray(segment, dtype=np.int32),
            p,
            np.ascontiguousarray(economics.gain(p).T, dtype=np.float32),
            np.ascontiguousarray(economics.cost(p).T, dtype=np.float32),
        )

    def __len__(self) -> int:
        return int(self.segment.shape[0])

    def reduced(self, duals: Duals) -> list[np.ndarray]:
        """gain + mu[segment] - lam * cost per mailing, float32 (the same arithmetic as
        :meth:`Duals.reduced` on float32 arrays)."""
        mu, lam = duals.mu.astype(np.float32), np.float32(duals.lam)
        return [
            g + mu[:, d].take(self.segment) - lam * c for d, (g, c) in enumerate(zip(self.gain, self.cost, strict=True))
        ]


def _best_of(r: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The first largest of the columns per customer (as ``argmax`` picks it) and its value."""
    best = r[0].copy()
    for column in r[1:]:
        np.maximum(best, column, out=best)
    choice = np.zeros(len(best), np.int8)
    for d in range(len(r) - 1, 0, -1):
        choice = np.where(r[d] == best, np.int8(d), choice)
    choice[r[0] == best] = 0
    return choice, best


@dataclass(frozen=True)
class Rows:
    """Some customers in full: global position, segment and scores."""

    index: np.ndarray  # (n,) int64
    segment: np.ndarray  # (n,)
    probability: np.ndarray  # (n, D) float64

    @classmethod
    def concat(cls, parts: Sequence[Rows], D: int) -> Rows:
        if not parts:
            return cls(np.empty(0, np.int64), np.empty(0, np.int32), np.empty((0, D)))
        return cls(
            np.concatenate([r.index for r in parts]),
            np.concatenate([r.segment for r in parts]),
            np.concatenate([r.probability for r in parts]),
        )

    def __len__(self) -> int:
        return int(self.index.shape[0])


@dataclass(frozen=True)
class Totals:
    """Customers per (segment, mailing), spend and gain of some customers at their mailings.

    ``spend`` and ``gain`` are float64 sums (what a result reports). The method's decisions use
    ``settled_spend``, from the spend in exact integer units of 2**-UNIT_BITS (each customer's cost
    rounded once, then added without rounding), which does not depend on how the customers are cut
    into chunks or partitions, so the plan on a cluster is the plan in-process, bit for bit.
    """

    counts: np.ndarray  # (S, D)
    spend: float
    gain: float
    spend_units: int

    @classmethod
    def of(
        cls, segment: np.ndarray, choice: np.ndarray, probability: np.ndarray, economics: Economics, S: int
    ) -> Totals:
        D = probability.shape[1]
        rows = np.arange(len(choice))
        p = probability[rows, choice]
        cost = p * economics.coupon[choice] + economics.piece[choice]
        gain = float(np.sum(p - probability[rows, economics.baseline]))
        counts = np.bincount(segment * D + choice, minlength=S * D).reshape(S, D).astype(float)
        return cls(counts, float(np.sum(cost)), gain, _units(cost))

    @property
    def settled_spend(self) -> float:
        """An upper bound on the true spend, from the exact units: each customer's cost was rounded
        by at most half a unit."""
        return (self.spend_units + 0.5 * float(self.counts.sum())) / UNIT

    def minus(self, other: Totals) -> Totals:
        return Totals(
            self.counts - other.counts,
            self.spend - other.spend,
            self.gain - other.gain,
            self.spend_units - other.spend_units,
        )

    @classmethod
    def sum(cls, parts: Sequence[Totals]) -> Totals:
        return cls(
            np.sum([t.counts for t in parts], axis=0),
            float(sum(t.spend for t in parts)),
            float(sum(t.gain for t in parts)),
            sum(t.spend_units for t in parts),
        )


UNIT_BITS = 24  #: spend in units of 2**-24: 6e-8 per customer at most, exact sums beyond
UNIT = float(1 << UNIT_BITS)
_BLOCK = 1 << 16  #: values summed in int64 at once: 65,536 * 2**24 * 2**20 (a cost of a million) < 2**63


def _units(values: np.ndarray) -> int:
    """The exact sum of ``values`` rounded to units, as a Python int (no overflow at any length)."""
    units = np.rint(values * UNIT).astype(np.int64)
    return sum(int(units[k : k + _BLOCK].sum()) for k in range(0, len(units), _BLOCK))


@dataclass(frozen=True)
class Screen:
    """One screening pass: customers whose best mailing under ``duals`` leads by at least the
    segment's margin are fixed there (their totals); the others are returned in full."""

    fixed: Totals
    free: Rows


@dataclass(frozen=True)
class Window:
    """How far the prices may still move: |d mu[s, d]| and |d lam| (infinite: nothing is settled).

    A customer is *settled* at its best mailing a when for every other mailing b its lead
    r[a] - r[b] exceeds what such a move can change it by: mu[s,a] + mu[s,b] + lam |c[a] - c[b]|
    (plus ``floor``, for float32 rounding).
    """

    mu: np.ndarray  # (S, D) >= 0
    lam: float
    floor: float = 1e-6

    @classmethod
    def everything(cls, S: int, D: int) -> Window:
        return cls(np.full((S, D), np.inf), np.inf)

    @classmethod
    def between(cls, a: Duals, b: Duals, factor: float) -> Window:
        return cls(factor * np.abs(a.mu - b.mu), factor * abs(a.lam - b.lam))

    def scaled(self, factor: float) -> Window:
        return Window(self.mu * factor, self.lam * factor, self.floor)

    @property
    def is_everything(self) -> bool:
        return bool(np.all(np.isinf(self.mu)))


def _choice_and_near(
    chunk: Chunk, duals: Duals, window: Window, want_near: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Best mailing per customer under ``duals`` (float32); whether any other mailing is near it,
    within what the window's prices can change their lead by (the customer is unsettled); and,
    when asked, (m, D) which mailings are."""
    r = chunk.reduced(duals)
    choice, best = _best_of(r)
    m, D = len(choice), len(r)
    near = np.empty((m, D), bool) if want_near else None
    if window.is_everything:
        if near is not None:
            near[:] = True
            near[np.arange(m), choice] = False
        return choice, np.full(m, D > 1), near
    mu = window.mu.astype(np.float32)
    base = mu.ravel().take(chunk.segment * D + choice)
    base += np.float32(window.floor)
    own_cost = np.choose(choice, chunk.cost)
    lam = np.float32(window.lam)
    free = np.zeros(m, bool)
    allowance = np.empty(m, np.float32)
    for b in range(D):
        # b is near when the lead over it is below mu[s, a] + mu[s, b] + lam |cost_a - cost_b| + floor
        np.subtract(chunk.cost[b], own_cost, out=allowance)
        np.abs(allowance, out=allowance)
        allowance *= lam
        allowance += base
        allowance += mu[:, b].take(chunk.segment)
        is_near = (best - r[b] < allowance) & (choice != b)
        free |= is_near
        if near is not None:
            near[:, b] = is_near
    return choice, free, near


def _choice_and_free(chunk: Chunk, duals: Duals, window: Window) -> tuple[np.ndarray, np.ndarray]:
    choice, free, _ = _choice_and_near(chunk, duals, window, want_near=False)
    return choice, free


def best_mailing(rows: Rows, duals: Duals, economics: Economics) -> np.ndarray:
    """For customers in full: their best mailing under ``duals`` as the screening passes see it."""
    return _best_of(Chunk.build(0, rows.segment, rows.probability, economics).reduced(duals))[0]


def candidates(rows: Rows, duals: Duals, window: Window, economics: Economics) -> tuple[np.ndarray, np.ndarray]:
    """For customers in full: their best mailing under ``duals`` as the screening passes see it,
    and (n, D) which mailings may be best anywhere in the window (the best one included)."""
    choice, _, near = _choice_and_near(Chunk.build(0, rows.segment, rows.probability, economics), duals, window)
    assert near is not None
    near[np.arange(len(choice)), choice] = True
    return choice, near


def screen(chunk: Chunk, duals: Duals, window: Window, economics: Economics) -> Screen:
    """Fix the customers settled under ``duals`` and ``window`` at their best mailing (their
    totals); return the others in full."""
    S = window.mu.shape[0]
    choice, free = _choice_and_free(chunk, duals, window)
    keep = ~free
    fixed = Totals.of(chunk.segment[keep], choice[keep], chunk.probability[keep], economics, S)
    return Screen(fixed, _rows(chunk, np.flatnonzero(free)))


def _behind(chunk: Chunk, duals: Duals, prices: Duals) -> np.ndarray:
    """How far each customer's best mailing under ``duals`` trails its best under ``prices``
    (float32; 0 when it is still the best within float32 rounding)."""
    choice, _ = _best_of(chunk.reduced(duals))
    r = chunk.reduced(prices)
    _, best = _best_of(r)
    behind = best - np.choose(choice, r)
    tolerance = np.float32(1e-6) * (np.maximum(np.abs(best), np.abs(np.minimum.reduce(r))) + np.float32(1.0))
    behind[behind <= tolerance] = 0.0
    return behind


def _most(behind: np.ndarray, found: np.ndarray, limit: int) -> np.ndarray:
    """The ``limit`` of ``found`` (ascending positions) beaten by most, ties to the earlier; in order."""
    if len(found) <= limit:
        return found
    return np.sort(found[np.lexsort((found, -behind[found]))[:limit]])


def priced_out(chunk: Chunk, duals: Duals, held: np.ndarray, prices: Duals, limit: int) -> Rows:
    """The customers outside ``held`` (sorted global positions: those a restricted LP holds; the
    others are settled at their best mailing under ``duals``) whose mailing is beaten under
    ``prices`` by more than float32 rounding (none left proves the LP optimal for all): at most
    ``limit``, those beaten by most (the same ranking as :func:`most_beaten`, so the chunks'
    choices merged are the whole list's, however it is cut)."""
    behind = _behind(chunk, duals, prices)
    mine = held[np.searchsorted(held, chunk.offset) : np.searchsorted(held, chunk.offset + len(chunk))]
    behind[mine - chunk.offset] = 0.0
    return _rows(chunk, _most(behind, np.flatnonzero(behind > 0), limit))


def most_beaten(rows: Rows, duals: Duals, prices: Duals, economics: Economics, limit: int) -> Rows:
    """The ``limit`` of ``rows`` (in global order) beaten by most, ranked as :func:`priced_out` ranks them."""
    if len(rows) <= limit:
        return rows
    behind = _behind(Chunk.build(0, rows.segment, rows.probability, economics), duals, prices)
    keep = _most(behind, np.arange(len(rows)), limit)
    return Rows(rows.index[keep], rows.segment[keep], rows.probability[keep])


def _rows(chunk: Chunk, idx: np.ndarray) -> Rows:
    return Rows(idx.astype(np.int64) + chunk.offset, chunk.segment[idx], chunk.probability[idx])


def lagrangian_sum(chunk: Chunk, duals: Duals, economics: Economics) -> float:
    """sum over the chunk of max_d (gain + mu[s, d] - lam cost), in float64 from the scores."""
    return _sum_of_best(chunk, duals.mu, duals.lam, economics, with_gain=True)


def spend_sum(chunk: Chunk, mu: np.ndarray, economics: Economics) -> float:
    """sum over the chunk of max_d (mu[s, d] - cost), in float64 from the scores."""
    return _sum_of_best(chunk, mu, 1.0, economics, with_gain=False)


def _sum_of_best(chunk: Chunk, mu: np.ndarray, lam: float, economics: Economics, with_gain: bool) -> float:
    """sum over the chunk of max_d ([gain] + mu[s, d] - lam cost), a mailing at a time in float64."""
    p = chunk.probability
    base = p[:, economics.baseline]
    best: np.ndarray | None = None
    for d in range(p.shape[1]):
        r = mu[:, d].take(chunk.segment) - lam * (p[:, d] * economics.coupon[d] + economics.piece[d])
        if with_gain:
            r += p[:, d] - base
        best = r if best is None else np.maximum(best, r, out=best)
    return float(best.sum()) if best is not None else 0.0


@dataclass(frozen=True)
class Overrides:
    """The mailing of the customers a screen left free (global positions), from the rounded LP."""

    index: np.ndarray  # (n,) int64
    mailing: np.ndarray  # (n,)


def assign(
    chunk: Chunk, duals: Duals, window: Window, overrides: Overrides, economics: Economics
) -> tuple[np.ndarray, Totals]:
    """The plan's mailing per customer of the chunk: the override where there is one (every
    customer the screen with the same duals and window left free has one), else the best under
    ``duals``. Returns the mailings and their float64 totals."""
    S = window.mu.shape[0]
    choice, free = _choice_and_free(chunk, duals, window)
    local = overrides.index - chunk.offset
    mine = (local >= 0) & (local < len(chunk))
    positions = local[mine]
    if np.setdiff1d(np.flatnonzero(free), positions).size:
        raise RuntimeError("the final pass found near-tie customers the screen it repeats did not")
    choice[positions] = overrides.mailing[mine]
    return choice.astype(np.int8), Totals.of(chunk.segment, choice, chunk.probability, economics, S)


def uniform(index: np.ndarray, seed: int) -> np.ndarray:
    """A uniform number in [0, 1) per global position (splitmix64 of position and seed): the same
    customers are drawn however the list is cut into chunks or partitions."""
    with np.errstate(over="ignore"):
        z = index.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15) + np.uint64(seed)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def sample(chunk: Chunk, rate: float, seed: int) -> Rows:
    """Each customer with probability ``rate``, drawn by its global position."""
    idx = np.flatnonzero(uniform(np.arange(chunk.offset, chunk.offset + len(chunk)), seed) < rate)
    return Rows(idx.astype(np.int64) + chunk.offset, chunk.segment[idx], chunk.probability[idx])


def cheapest_spend(chunk: Chunk) -> float:
    """What the chunk's customers cost at their cheapest mailings, from the float32 costs (within
    a relative 1e-7 of the float64 figure: every term is positive)."""
    return float(np.minimum.reduce(chunk.cost, axis=0).sum(dtype=np.float64))


def segment_counts(chunk: Chunk, S: int) -> np.ndarray:
    return np.bincount(chunk.segment, minlength=S)


class OutOfTime(Exception):
    """A pass stopped at its deadline, between chunks (in-process) or while its tasks ran (Dask)."""


class Store(Protocol):
    """Where the chunks live: ``map`` runs a pass on every chunk and returns the results in order;
    with ``until`` (a ``time.perf_counter`` instant) it raises :class:`OutOfTime` past it."""

    S: int
    D: int
    economics: Economics

    def map(self, fn: Callable[..., T], *args: Any, until: float | None = None) -> list[T]: ...

    @property
    def size(self) -> int: ...


class ChunkStore:
    """Chunks in this process."""

    def __init__(self, chunks: Sequence[Chunk], S: int, D: int, economics: Economics) -> None:
        self.chunks, self.S, self.D, self.economics = list(chunks), S, D, economics

    @classmethod
    def of(cls, problem: CouponProblem, customers: CustomerList, chunk_size: int = CHUNK_SIZE) -> ChunkStore:
        assert customers.probability is not None
        economics = Economics.of(problem)
        S, D = problem.probability.shape
        M = len(customers)
        chunks = [
            Chunk.build(
                start,
                customers.segment[start : start + chunk_size],
                customers.probability[start : start + chunk_size],
                economics,
            )
            for start in range(0, M, chunk_size)
        ]
        return cls(chunks, S, D, economics)

    @classmethod
    def of_rows(cls, rows: Rows, S: int, economics: Economics) -> ChunkStore:
        """A store of the given customers (a sample), renumbered from 0."""
        chunk = Chunk.build(0, rows.segment, rows.probability, economics)
        return cls([chunk], S, rows.probability.shape[1], economics)

    def map(self, fn: Callable[..., T], *args: Any, until: float | None = None) -> list[T]:
        results = []
        for chunk in self.chunks:
            if until is not None and time.perf_counter() > until:
                raise OutOfTime
            results.append(fn(chunk, *args))
        return results

    def __iter__(self) -> Iterator[Chunk]:
        return iter(self.chunks)

    @property
    def size(self) -> int:
        return sum(len(c) for c in self.chunks)
