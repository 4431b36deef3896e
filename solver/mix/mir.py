"""Complemented mixed-integer rounding (c-MIR) cuts on the rows that tie activities together.

The budget and the rules are rows over the pieces' scaled changes ``y_p``; each piece with a binary also has
variable bounds ``lo_p z_p <= y_p <= hi_p z_p`` (its region rows). The perspective relaxation is already the
convex hull of every single activity, so what it misses lies in rows over several activities: a rule that a
group's spend stays within 20% of its baseline, say, while each activity that moves must move by at least its
minimum change. A c-MIR cut (Marchand & Wolsey, "Aggregation and mixed integer rounding to solve MIPs",
Operations Research 49(3), 2001) reads one such row with every ``y_p`` replaced by one of its bounds plus a
slack, and rounds it:

1. ``y_p = lo_p z_p + s_p`` or ``y_p = hi_p z_p - s_p`` (``s_p >= 0``), or for a one-signed piece its simple
   bound at zero (``y_p = 0 + s_p`` for an increase, ``0 - s_p`` for a decrease; pieces without a binary: their
   simple bounds, a constant); the row becomes ``sum g_j z_j + sum e_p s_p <= beta``. Several choices are
   tried per row (:meth:`MirSeparator._row_cut`);
2. the slacks with ``e_p > 0`` are dropped (valid: they are non-negative), the others sum to ``s^- >= 0``;
   binaries above 0.5 are complemented (``z = 1 - zbar``), then single switches are tried;
3. divided by ``delta`` (each fractional binary's ``|g_j|``, then the best one halved up to three times), the
   row ``sum a_j x_j - s^- / delta <= b`` with ``f = b - floor(b)`` gives the MIR inequality
   ``sum (floor(a_j) + max(0, frac(a_j) - f) / (1 - f)) x_j - s^- / (delta (1 - f)) <= floor(b)``;
4. the most efficacious cut (violation over its norm) is mapped back to ``(y, z)``.

On the retailer case (measured 2026-11-28) the perspective root's bound is 2,283,329; these cuts take it to
2,283,116 in five rounds (0.6 s of separation each). SCIP's root with only its single-row c-MIR
(``separating/aggregation/maxaggrs = 0``, no Gomory cuts) ends at 2,283,060, and its whole root at 2,282,989:
its cuts come from its own LP points, and about half of them still cut our last LP point, so a separator
closer to SCIP's would gain more.

Every cut is valid for the mixed-integer set whatever the LP point; floating point is covered by relaxing the
right-hand side by a margin proportional to the terms' sizes, and coefficients too small to matter are moved
to the right-hand side at their worst bound. Nothing here depends on a solver.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from dmplan.solver.mix.formulation import ConicModel

#: the fractional part of the rounded right-hand side must lie in here (too near 0 or 1: weak, unstable cuts)
MIN_FRACTION = 0.05
MAX_FRACTION = 0.95
#: distinct divisors tried per row (the fractional binaries' coefficients, largest first)
MAX_DELTAS = 8
#: complementations switched one at a time after the best divisor is chosen (fractional binaries nearest 0.5)
MAX_FLIPS = 10
#: a cut is kept when its violation over its Euclidean norm exceeds this (scaled units: y and z lie in [-1, 1])
MIN_EFFICACY = 1e-5
#: a row is read only when it is this close to binding at the LP point (relative to its largest term; at 0.05
#: instead the retailer root bound was the same, the separation 50% slower)
MAX_SLACK = 1e-3
#: coefficients below this share of a cut's largest are moved to its right-hand side at their worst bound
TINY = 1e-9
#: relative margin added to every cut's right-hand side for the floating-point error of its computation
SAFETY = 1e-9


@dataclass(frozen=True)
class Cut:
    """A valid inequality ``values @ v[columns] <= upper`` over the model's variables."""

    columns: np.ndarray
    values: np.ndarray
    upper: float


@dataclass(frozen=True)
class _Row:
    pieces: np.ndarray  #: pieces whose ``y`` the row reads
    coefficient: np.ndarray  #: the row's coefficient on each piece's ``y``
    lower: float
    upper: float
    size: float  #: the sum of its terms' largest magnitudes (the scale of "near binding")


class MirSeparator:
    """c-MIR cuts for one :class:`~dmplan.solver.mix.formulation.ConicModel` (its budget and rule rows)."""

    def __init__(self, model: ConicModel) -> None:
        self.model = model
        piece_of_column = np.full(model.num_vars, -1, dtype=np.int64)
        piece_of_column[model.piece_y] = np.arange(model.piece_y.size)
        has_z = model.piece_z >= 0
        # variable bounds of y: lo z <= y <= hi z with a binary, the simple bounds (z = 1) without
        self._lo = np.where(has_z, model.piece_lo, model.lower[model.piece_y])
        self._hi = np.where(has_z, model.piece_hi, model.upper[model.piece_y])
        self._has_z = has_z
        self.rows: list[_Row] = []
        reach = np.maximum(np.abs(self._lo), np.abs(self._hi))  # the largest |y| of each piece
        matrix = model.matrix.tocsr()
        for r in model.coupling_rows.tolist():
            if r == model.count_row:
                continue  # all its coefficients are 1 on binaries: rounding it gives it back
            columns = matrix.indices[matrix.indptr[r] : matrix.indptr[r + 1]]
            pieces = piece_of_column[columns]
            if columns.size == 0 or np.any(pieces < 0):
                continue  # only rows over changes have the structure read here
            values = matrix.data[matrix.indptr[r] : matrix.indptr[r + 1]]
            coefficient = values.astype(float)
            size = float(np.abs(coefficient * reach[pieces]).sum())
            self.rows.append(_Row(pieces, coefficient, float(model.row_lower[r]), float(model.row_upper[r]), size))

    def separate(self, values: np.ndarray, limit: int = 1000) -> list[Cut]:
        """The most efficacious violated cut of each near-binding row side at the LP point ``values``, the
        ``limit`` best of them."""
        m = self.model
        y_all = values[m.piece_y]
        z_all = np.where(self._has_z, values[np.maximum(m.piece_z, 0)], 1.0)
        found: list[tuple[float, Cut]] = []
        for row in self.rows:
            y = y_all[row.pieces]
            activity = float(row.coefficient @ y)
            for sign, side in ((1.0, row.upper), (-1.0, -row.lower)):
                if not math.isfinite(side) or side - sign * activity > MAX_SLACK * max(1.0, row.size):
                    continue
                best = self._row_cut(sign * row.coefficient, side, row.pieces, values, y, z_all[row.pieces])
                if best is not None:
                    found.append(best)
        found.sort(key=lambda item: -item[0])
        return [cut for _, cut in found[:limit]]

    def _row_cut(
        self, c: np.ndarray, beta: float, pieces: np.ndarray, values: np.ndarray, y: np.ndarray, z: np.ndarray
    ) -> tuple[float, Cut] | None:
        """The most efficacious c-MIR cut of ``c @ y <= beta`` (over ``pieces``) at the LP point ``values``
        (``y``, ``z``: the pieces' values there) and its efficacy, when above :data:`MIN_EFFICACY`.

        Three ways of substituting the variable bounds are tried: each piece's nearer bound at the point (on a
        tie the one whose slack drops out of the row), each piece's end away from zero (its capacity, as in a
        flow cover) and each piece's end nearest zero (its minimum change); each also with the pieces nearer
        zero than that bound on their simple bound at zero. The SCIP cuts that still cut our LP point after the
        nearer bound alone had stalled use the end away from zero and the zero bound: a perspective point lies
        inside its region, where the nearer bound is often the minimum change."""
        lo, hi, has_z = self._lo[pieces], self._hi[pieces], self._has_z[pieces]
        below = np.maximum(y - lo * z, 0.0)  # the slack from the lower variable bound
        above = np.maximum(hi * z - y, 0.0)
        far = np.abs(hi) > np.abs(lo)
        # a one-signed piece may also use its simple bound at zero (no binary in the cut) where that is nearer
        # the point than the chosen variable bound: y = 0 + s (increase), y = 0 - s (decrease); a merged piece
        # spans zero, so not there
        one_signed = has_z & ((lo > 0) | (hi < 0))
        zero_direction = np.where(lo > 0, 1.0, -1.0)
        best: tuple[float, Cut] | None = None
        for upper_side, zero in itertools.product(
            ((above < below) | ((above == below) & (c < 0)), far, ~far), (False, True)
        ):
            bound = np.where(upper_side, hi, lo)
            direction = np.where(upper_side, -1.0, 1.0)  # y = bound z + direction s
            if zero:
                near_zero = one_signed & (np.abs(y) <= np.where(upper_side, above, below))
                if not near_zero.any():
                    continue
                bound = np.where(near_zero, 0.0, bound)
                direction = np.where(near_zero, zero_direction, direction)
            found = self._substituted_cut(c, beta, pieces, values, z, bound, direction)
            if found is not None and (best is None or found[0] > best[0]):
                best = found
        return best

    def _substituted_cut(
        self,
        c: np.ndarray,
        beta: float,
        pieces: np.ndarray,
        values: np.ndarray,
        z: np.ndarray,
        bound: np.ndarray,
        direction: np.ndarray,
    ) -> tuple[float, Cut] | None:
        """:meth:`_row_cut` with each piece written ``y = bound z + direction s`` (``s >= 0``; ``z = 1``
        without a binary)."""
        row = _Substituted(c, beta, self._has_z[pieces], bound, direction)
        fractional = row.binary & (z > 1e-6) & (z < 1 - 1e-6)
        deltas = np.unique(np.abs(row.g[fractional]))[::-1][:MAX_DELTAS]
        if deltas.size == 0:
            return None
        y = values[self.model.piece_y[pieces]]
        flip = row.binary & (z > 0.5)  # binaries nearer 1 than 0 are complemented: z = 1 - zbar
        tried = {float(d): row.efficacy(float(d), flip, y, z) for d in deltas}
        delta = max(tried, key=lambda d: tried[d])
        for divisor in (2.0, 4.0, 8.0):
            tried[delta / divisor] = row.efficacy(delta / divisor, flip, y, z)
        delta = max(tried, key=lambda d: tried[d])
        best = tried[delta]
        # switching the complementation of a fractional binary may help: try the nearest to 0.5 first
        order = np.flatnonzero(fractional)[np.argsort(np.abs(z[fractional] - 0.5), kind="stable")]
        for j in order[:MAX_FLIPS].tolist():
            switched = flip.copy()
            switched[j] = not switched[j]
            value = row.efficacy(delta, switched, y, z)
            if value > best:
                best, flip = value, switched
        if not best > MIN_EFFICACY:
            return None
        cut = self._safe_cut(row, delta, flip, pieces)
        if cut is None:
            return None
        return (float(cut.values @ values[cut.columns]) - cut.upper) / float(np.linalg.norm(cut.values)), cut

    def _safe_cut(self, row: _Substituted, delta: float, flip: np.ndarray, pieces: np.ndarray) -> Cut | None:
        """The cut of ``row`` for ``delta`` and ``flip`` over the model's columns, made safe against rounding:
        tiny coefficients go to the right-hand side at their worst bound, which is relaxed by a margin."""
        parts = row.coefficients(delta, flip)
        if parts is None:
            return None
        y_coefficient, z_coefficient, rhs, magnitude = parts
        has_z = row.has_z
        m = self.model
        column = np.concatenate([m.piece_y[pieces], m.piece_z[pieces[has_z]]])
        value = np.concatenate([y_coefficient, z_coefficient[has_z]])
        low = np.concatenate([m.lower[m.piece_y[pieces]], np.zeros(int(has_z.sum()))])
        high = np.concatenate([m.upper[m.piece_y[pieces]], np.ones(int(has_z.sum()))])
        largest = float(np.max(np.abs(value))) if value.size else 0.0
        if not 0.0 < largest < math.inf:
            return None
        tiny = np.abs(value) < TINY * largest
        rhs += float(np.maximum(value[tiny] * low[tiny], value[tiny] * high[tiny]).sum())
        rhs += SAFETY * (magnitude + largest)
        if not math.isfinite(rhs):
            return None
        return Cut(column[~tiny].astype(np.int32), value[~tiny], rhs)


class _Substituted:
    """A row ``c @ y <= beta`` with each piece written ``y = bound z + direction s``: the binaries' part
    ``sum g_j z_j``, the slacks' weights in ``s^-`` (those with a positive coefficient are dropped) and the
    right-hand side left once the pieces without a binary (``z = 1``) are moved over."""

    def __init__(self, c: np.ndarray, beta: float, has_z: np.ndarray, bound: np.ndarray, direction: np.ndarray) -> None:
        self.has_z = has_z
        self.bound = bound
        self.direction = direction
        self.g = c * bound
        e = c * direction
        self.weight = np.where(e < 0, -e, 0.0)
        self.binary = has_z & (self.g != 0)
        self.beta0 = beta - float(self.g[~has_z].sum())

    def coefficients(self, delta: float, flip: np.ndarray) -> tuple[np.ndarray, np.ndarray, float, float] | None:
        """The MIR cut for ``delta`` with the binaries in ``flip`` complemented, mapped back to ``(y, z)``:
        coefficients of every piece's ``y`` and ``z`` (those without a binary: 0), right-hand side and the size
        of the terms behind it (for the rounding margin); None when ``delta`` rounds badly."""
        g = self.g
        a = np.where(self.binary, np.where(flip, -g, g), 0.0)
        x_coefficient, rhs, f = _mir(a, self.beta0 - float(g[flip].sum()), delta)
        if f is None:
            return None
        magnitude = abs(rhs) + float(np.abs(x_coefficient).sum())
        rhs -= float(x_coefficient[flip].sum())
        # - k_p s_p with s_p = direction (y_p - bound_p z_p); z_p = 1 for a piece without a binary
        k = self.weight / (1 - f)
        shift = k * self.direction * self.bound
        y_coefficient = -k * self.direction
        z_coefficient = np.where(self.has_z, np.where(flip, -x_coefficient, x_coefficient) + shift, 0.0)
        rhs -= float(shift[~self.has_z].sum())
        magnitude += float(np.abs(shift).sum())
        return y_coefficient, z_coefficient, rhs, magnitude

    def efficacy(self, delta: float, flip: np.ndarray, y: np.ndarray, z: np.ndarray) -> float:
        """The cut's violation at ``(y, z)`` over its Euclidean norm (-inf when ``delta`` rounds badly)."""
        parts = self.coefficients(delta, flip)
        if parts is None:
            return -math.inf
        y_coefficient, z_coefficient, rhs, _ = parts
        norm = math.sqrt(float(y_coefficient @ y_coefficient) + float(z_coefficient @ z_coefficient))
        if norm == 0.0:
            return -math.inf
        return (float(y_coefficient @ y) + float(z_coefficient @ np.where(self.has_z, z, 0.0)) - rhs) / norm


def _mir(a: np.ndarray, beta: float, delta: float) -> tuple[np.ndarray, float, float | None]:
    """The MIR rounding of ``sum a_j x_j - s <= beta`` divided by ``delta``, multiplied back by ``delta``:
    the coefficients of ``x``, the right-hand side and ``f`` (the continuous part's factor is
    ``1 / (1 - f)``); ``f`` is None when the rounded right-hand side is too near an integer."""
    b = beta / delta
    f = b - math.floor(b)
    if not MIN_FRACTION <= f <= MAX_FRACTION:
        return a, beta, None
    scaled = a / delta
    down = np.floor(scaled)
    rounded = down + np.maximum(0.0, scaled - down - f) / (1 - f)
    return delta * rounded, delta * math.floor(b), f
