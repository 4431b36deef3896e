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
   simple bounds, a constant); the row becomes ``sum g_j z_j + sum e_p s_p <= beta``. Six choices are
   tried per row (:meth:`MirSeparator._candidates`);
2. the slacks with ``e_p > 0`` are dropped (valid: they are non-negative), the others sum to ``s^- >= 0``;
   binaries above 0.5 are complemented (``z = 1 - zbar``), then single switches are tried;
3. divided by ``delta`` (each fractional binary's ``|g_j|``, then the best one halved up to three times), the
   row ``sum a_j x_j - s^- / delta <= b`` with ``f = b - floor(b)`` gives the MIR inequality
   ``sum (floor(a_j) + max(0, frac(a_j) - f) / (1 - f)) x_j - s^- / (delta (1 - f)) <= floor(b)``;
4. the most efficacious cut (violation over its norm) is mapped back to ``(y, z)``.

On the retailer case (measured 2026-11-28) the perspective root's bound is 2,283,329; these cuts take it to
2,283,116 in five rounds. At the Pareto sweep's smallest K (330) they take it from 2,254,987 to 2,248,500 in
10 s, where they stop finding cuts. SCIP's root there reaches 2,245,824 (122 s), but 2,248,750 with its
aggregation off at the root (``separating/aggregation/maxaggrsroot = 0``, no Gomory cuts; still in its root
after 1,530 s): what it gains over these cuts is multi-row aggregation. Aggregating the rule rows with each
other does not give it (tried, the same bound): at our LP point 177 of 6,000 pieces lie strictly inside their
bounds, so there is little slack to eliminate, and the near-binding sides are all lower sides, whose sums add
changes rather than cancel them. SCIP's cuts that make the difference hold the revenue epigraphs ``t`` (rules
aggregated with its cone linearisations): added to our LP they give 2,246,488 with these cuts after them, its
other cuts 2,247,394 (K = 750, unseen seed 3: 2,315,500 and 2,315,833 against these cuts' 2,315,913). A cone's
tangent used as a piece's bound in this single-row search reaches only 2,248,117 at K = 330 and nothing at
K = 750 (the README lists what else was tried).

Every cut is valid for the mixed-integer set whatever the LP point; floating point is covered by relaxing the
right-hand side by a margin proportional to the terms' sizes, and coefficients too small to matter are moved
to the right-hand side at their worst bound. Nothing here depends on a solver.
"""

from __future__ import annotations

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


class MirSeparator:
    """c-MIR cuts for one :class:`~dmplan.solver.mix.formulation.ConicModel` (its budget and rule rows).

    One separation reads every near-binding row side at once: each way of substituting its pieces' bounds is a
    *candidate*, and the candidates' pieces lie in flat arrays (:class:`_Candidates`) that every step (the
    divisors, the complementations, the safe cut) evaluates in one pass over all of them. On the retailer cases
    the search row by row, in small numpy calls, took 0.4-0.9 s; the same search this way takes 0.08-0.15 s.
    """

    def __init__(self, model: ConicModel) -> None:
        self.model = model
        piece_of_column = np.full(model.num_vars, -1, dtype=np.int64)
        piece_of_column[model.piece_y] = np.arange(model.piece_y.size)
        has_z = model.piece_z >= 0
        # variable bounds of y: lo z <= y <= hi z with a binary, the simple bounds (z = 1) without
        self._lo = np.where(has_z, model.piece_lo, model.lower[model.piece_y])
        self._hi = np.where(has_z, model.piece_hi, model.upper[model.piece_y])
        self._has_z = has_z
        reach = np.maximum(np.abs(self._lo), np.abs(self._hi))  # the largest |y| of each piece
        matrix = model.matrix.tocsr()
        pieces: list[np.ndarray] = []
        coefficients: list[np.ndarray] = []
        lower: list[float] = []
        upper: list[float] = []
        for r in model.coupling_rows.tolist():
            if r == model.count_row:
                continue  # all its coefficients are 1 on binaries: rounding it gives it back
            columns = matrix.indices[matrix.indptr[r] : matrix.indptr[r + 1]]
            row_pieces = piece_of_column[columns]
            if columns.size == 0 or np.any(row_pieces < 0):
                continue  # only rows over changes have the structure read here
            pieces.append(row_pieces)
            coefficients.append(matrix.data[matrix.indptr[r] : matrix.indptr[r + 1]].astype(float))
            lower.append(float(model.row_lower[r]))
            upper.append(float(model.row_upper[r]))
        #: the rows read, flat: row ``i``'s pieces and coefficients are entries ``start[i]:start[i + 1]``
        self._pieces = np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.int64)
        self._coefficient = np.concatenate(coefficients) if coefficients else np.zeros(0)
        self._row = np.repeat(np.arange(len(pieces)), [p.size for p in pieces])
        self._start = np.concatenate([[0], np.cumsum([p.size for p in pieces])]).astype(np.int64)
        self._row_lower = np.array(lower)
        self._row_upper = np.array(upper)
        #: the sum of each row's terms' largest magnitudes (the scale of "near binding")
        self._row_size = np.bincount(
            self._row, weights=np.abs(self._coefficient * reach[self._pieces]), minlength=len(pieces)
        )

    def separate(self, values: np.ndarray, limit: int = 1000) -> list[Cut]:
        """The most efficacious violated cut of each near-binding row side at the LP point ``values``, the
        ``limit`` best of them."""
        m = self.model
        y_all = values[m.piece_y]
        z_all = np.where(self._has_z, values[np.maximum(m.piece_z, 0)], 1.0)
        activity = np.bincount(
            self._row, weights=self._coefficient * y_all[self._pieces], minlength=self._row_size.size
        )
        slack = MAX_SLACK * np.maximum(1.0, self._row_size)
        # the row sides read, in row order and the upper side first: (row, sign, right-hand side)
        sides = [
            (row, sign, side)
            for row in range(self._row_size.size)
            for sign, side in ((1.0, self._row_upper[row]), (-1.0, -self._row_lower[row]))
            if math.isfinite(side) and side - sign * activity[row] <= slack[row]
        ]
        if not sides:
            return []
        candidates = self._candidates(sides, y_all, z_all)
        if candidates is None:
            return []
        efficacy, delta, flip = candidates.search()
        safe = candidates.safe(efficacy > MIN_EFFICACY, delta, flip)
        # per row side, its first candidate (substitution order) with the largest efficacy of the safe cut
        order = np.lexsort((np.arange(candidates.count), -safe.efficacy, candidates.side))
        first = np.ones(order.size, dtype=bool)
        first[1:] = candidates.side[order][1:] != candidates.side[order][:-1]
        best = order[first & np.isfinite(safe.efficacy[order])]
        best = best[np.argsort(-safe.efficacy[best], kind="stable")][:limit]
        return [candidates.cut(safe, k) for k in best.tolist()]

    def _candidates(
        self, sides: list[tuple[int, float, float]], y_all: np.ndarray, z_all: np.ndarray
    ) -> _Candidates | None:
        """The candidates of ``sides``: every row side with each piece written ``y = bound z + direction s``
        (``s >= 0``) in six ways.

        Three ways of choosing the bound: each piece's nearer bound at the point (on a tie the one whose slack
        drops out of the row), each piece's end away from zero (its capacity, as in a flow cover) and each
        piece's end nearest zero (its minimum change); each also with the pieces nearer zero than that bound on
        their simple bound at zero (a side without such a piece skips that way). The SCIP cuts that still cut our
        LP point after the nearer bound alone had stalled use the end away from zero and the zero bound: a
        perspective point lies inside its region, where the nearer bound is often the minimum change."""
        row = np.array([r for r, _, _ in sides])
        sign = np.array([s for _, s, _ in sides])
        lengths = self._start[row + 1] - self._start[row]
        # the rows' entries one after the other: each side's first entry, then counting up
        offset = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        entry = np.repeat(self._start[row] - offset, lengths) + np.arange(int(lengths.sum()))
        side_of = np.repeat(np.arange(len(sides)), lengths)
        pieces = self._pieces[entry]
        c = sign[side_of] * self._coefficient[entry]
        y, z = y_all[pieces], z_all[pieces]
        lo, hi, has_z = self._lo[pieces], self._hi[pieces], self._has_z[pieces]
        below = np.maximum(y - lo * z, 0.0)  # the slack from the lower variable bound
        above = np.maximum(hi * z - y, 0.0)
        far = np.abs(hi) > np.abs(lo)
        # a one-signed piece may also use its simple bound at zero (no binary in the cut) where that is nearer
        # the point than the chosen variable bound: y = 0 + s (increase), y = 0 - s (decrease); a merged piece
        # spans zero, so not there
        one_signed = has_z & ((lo > 0) | (hi < 0))
        zero_direction = np.where(lo > 0, 1.0, -1.0)
        ways: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # (entries kept, bound, direction) per way
        every = np.ones(len(sides), dtype=bool)
        for upper_side in ((above < below) | ((above == below) & (c < 0)), far, ~far):
            bound = np.where(upper_side, hi, lo)
            direction = np.where(upper_side, -1.0, 1.0)
            ways.append((every, bound, direction))
            near_zero = one_signed & (np.abs(y) <= np.where(upper_side, above, below))
            has_near = np.bincount(side_of, weights=near_zero, minlength=len(sides)) > 0
            ways.append((has_near, np.where(near_zero, 0.0, bound), np.where(near_zero, zero_direction, direction)))
        # candidates in row side order, then way order (the order ties are broken in)
        kept = np.stack([way[0] for way in ways], axis=1)  # side x way
        side_k, way_k = np.nonzero(kept)
        if side_k.size == 0:
            return None
        count = side_k.size
        candidate_of = np.full((len(sides), len(ways)), -1, dtype=np.int64)
        candidate_of[side_k, way_k] = np.arange(count)
        # every (entry, way) whose side has that way, then grouped by candidate
        take, way_of = np.nonzero(kept[side_of])
        seg = candidate_of[side_of[take], way_of]
        order = np.argsort(seg, kind="stable")  # entries grouped by candidate, in row order inside each
        take, way_of, seg = take[order], way_of[order], seg[order]
        bound = np.stack([way[1] for way in ways])[way_of, take]
        direction = np.stack([way[2] for way in ways])[way_of, take]
        beta = np.array([s for _, _, s in sides])[side_k]
        y_column = self.model.piece_y[pieces[take]]
        return _Candidates(
            side=side_k,
            seg=seg,
            c=c[take],
            beta=beta,
            has_z=has_z[take],
            bound=bound,
            direction=direction,
            y=y[take],
            z=z[take],
            y_column=y_column,
            z_column=self.model.piece_z[pieces[take]],
            y_lower=self.model.lower[y_column],
            y_upper=self.model.upper[y_column],
        )


class _Candidates:
    """Row sides ``c @ y <= beta`` with each piece written ``y = bound z + direction s``, flat: entry ``e`` (one
    piece of one candidate) belongs to candidate ``seg[e]``, entries grouped by candidate.

    Per candidate: the binaries' part ``sum g_j z_j``, the slacks' weights in ``s^-`` (those with a positive
    coefficient are dropped) and the right-hand side left once the pieces without a binary (``z = 1``) are
    moved over. Every method works on all candidates at once."""

    def __init__(
        self,
        *,
        side: np.ndarray,
        seg: np.ndarray,
        c: np.ndarray,
        beta: np.ndarray,
        has_z: np.ndarray,
        bound: np.ndarray,
        direction: np.ndarray,
        y: np.ndarray,
        z: np.ndarray,
        y_column: np.ndarray,
        z_column: np.ndarray,
        y_lower: np.ndarray,
        y_upper: np.ndarray,
    ) -> None:
        self.side = side  #: the row side of each candidate
        self.count = side.size
        self.seg = seg
        self.starts = np.searchsorted(seg, np.arange(self.count + 1))
        self.has_z = has_z
        self.bound = bound
        self.direction = direction
        self.g = c * bound
        e = c * direction
        self.weight = np.where(e < 0, -e, 0.0)
        self.binary = has_z & (self.g != 0)
        self.beta0 = beta - self._sum(np.where(has_z, 0.0, self.g))
        self.y = y
        self.z = z
        self.z_at = np.where(has_z, z, 0.0)  #: z where the piece has a binary, 0 where its cut has no z term
        self.y_column, self.z_column = y_column, z_column
        self.y_lower, self.y_upper = y_lower, y_upper

    def _sum(self, per_entry: np.ndarray) -> np.ndarray:
        return np.bincount(self.seg, weights=per_entry, minlength=self.count)

    def search(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per candidate the best divisor and complementation found, and its cut's efficacy (``-inf`` without a
        fractional binary): binaries above 0.5 complemented; divided by each fractional binary's ``|g_j|``
        (the :data:`MAX_DELTAS` largest), then the best one halved up to three times; then single switches of
        the complementation (fractional binaries nearest 0.5 first, at most :data:`MAX_FLIPS`) while they help."""
        fractional = self.binary & (self.z > 1e-6) & (self.z < 1 - 1e-6)
        flip = self.binary & (self.z > 0.5)  # binaries nearer 1 than 0 are complemented: z = 1 - zbar
        deltas = _ranked(
            self.seg[fractional], -np.abs(self.g[fractional]), np.abs(self.g[fractional]), self.count, MAX_DELTAS
        )
        tried = np.full((self.count, MAX_DELTAS + 3), -math.inf)
        divisors = np.full((self.count, MAX_DELTAS + 3), math.nan)
        divisors[:, :MAX_DELTAS] = deltas
        for j in range(MAX_DELTAS):
            tried[:, j] = self.efficacy(deltas[:, j], flip)
        chosen = deltas[np.arange(self.count), np.argmax(tried[:, :MAX_DELTAS], axis=1)]
        for j, divisor in enumerate((2.0, 4.0, 8.0)):
            divisors[:, MAX_DELTAS + j] = chosen / divisor
            tried[:, MAX_DELTAS + j] = self.efficacy(chosen / divisor, flip)
        pick = np.argmax(tried, axis=1)
        delta = divisors[np.arange(self.count), pick]
        best = tried[np.arange(self.count), pick]
        entries = np.flatnonzero(fractional)
        switches = _ranked(
            self.seg[entries], np.abs(self.z[entries] - 0.5), entries.astype(float), self.count, MAX_FLIPS
        )
        for j in range(MAX_FLIPS):
            entry = switches[:, j]
            has = np.isfinite(entry)
            if not has.any():
                break
            switched = flip.copy()
            switched[entry[has].astype(np.int64)] ^= True
            value = self.efficacy(delta, switched)
            better = has & (value > best)
            best = np.where(better, value, best)
            flip = np.where(better[self.seg], switched, flip)
        best[np.isnan(deltas[:, 0])] = -math.inf
        return best, delta, flip

    def coefficients(
        self, delta: np.ndarray, flip: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The MIR cut of every candidate for its ``delta`` with the binaries in ``flip`` complemented, mapped
        back to ``(y, z)``: coefficients of every entry's ``y`` and ``z`` (without a binary: 0), right-hand sides,
        the size of the terms behind each (for the rounding margin) and whether ``delta`` rounds well.

        The row ``sum a_j x_j - s^- <= b`` divided by ``delta``, with ``f = b - floor(b)``, gives
        ``sum (floor(a_j) + max(0, frac(a_j) - f) / (1 - f)) x_j - s^- / (delta (1 - f)) <= floor(b)``, multiplied
        back by ``delta``; ``f`` must lie in [:data:`MIN_FRACTION`, :data:`MAX_FRACTION`]."""
        g = self.g
        with np.errstate(invalid="ignore", divide="ignore"):
            b = (self.beta0 - self._sum(np.where(flip, g, 0.0))) / delta
            f = b - np.floor(b)
            ok = (f >= MIN_FRACTION) & (f <= MAX_FRACTION)
            f = np.where(ok, f, 0.5)
            d, fe = delta[self.seg], f[self.seg]
            scaled = np.where(self.binary, np.where(flip, -g, g), 0.0) / d
            down = np.floor(scaled)
            x = d * (down + np.maximum(0.0, scaled - down - fe) / (1 - fe))
            rhs = delta * np.floor(b)
        magnitude = np.abs(rhs) + self._sum(np.abs(x))
        rhs = rhs - self._sum(np.where(flip, x, 0.0))
        # - k_p s_p with s_p = direction (y_p - bound_p z_p); z_p = 1 for a piece without a binary
        k = self.weight / (1 - fe)
        shift = k * self.direction * self.bound
        y_coefficient = -k * self.direction
        z_coefficient = np.where(self.has_z, np.where(flip, -x, x) + shift, 0.0)
        rhs = rhs - self._sum(np.where(self.has_z, 0.0, shift))
        magnitude = magnitude + self._sum(np.abs(shift))
        return y_coefficient, z_coefficient, rhs, magnitude, ok & np.isfinite(delta)

    def efficacy(self, delta: np.ndarray, flip: np.ndarray) -> np.ndarray:
        """Every candidate's cut's violation at the point over its Euclidean norm (-inf when ``delta`` rounds
        badly or is missing)."""
        y_coefficient, z_coefficient, rhs, _, ok = self.coefficients(delta, flip)
        return np.where(ok, self._over_norm(y_coefficient, z_coefficient, rhs), -math.inf)

    def _over_norm(self, y_coefficient: np.ndarray, z_coefficient: np.ndarray, rhs: np.ndarray) -> np.ndarray:
        """Per candidate, the violation of ``y_coefficient @ y + z_coefficient @ z <= rhs`` at the point over the
        coefficients' Euclidean norm (-inf where the norm is zero or the value is not finite)."""
        norm = np.sqrt(self._sum(y_coefficient**2 + z_coefficient**2))
        violation = self._sum(y_coefficient * self.y + z_coefficient * self.z_at) - rhs
        with np.errstate(invalid="ignore", divide="ignore"):
            value = violation / norm
        return np.where((norm > 0.0) & np.isfinite(value), value, -math.inf)

    def safe(self, wanted: np.ndarray, delta: np.ndarray, flip: np.ndarray) -> _SafeCuts:
        """The ``wanted`` candidates' cuts made safe against rounding: tiny coefficients (below :data:`TINY` of
        the cut's largest) go to the right-hand side at their worst bound, which is relaxed by a margin of
        :data:`SAFETY` times the terms' sizes; with each cut's efficacy (-inf where none exists)."""
        y_coefficient, z_coefficient, rhs, magnitude, ok = self.coefficients(delta, flip)
        largest = np.zeros(self.count)
        size = np.maximum(np.abs(y_coefficient), np.abs(z_coefficient), where=ok[self.seg], out=np.zeros(self.seg.size))
        np.maximum.at(largest, self.seg, size)
        y_kept = np.abs(y_coefficient) >= TINY * largest[self.seg]
        z_kept = self.has_z & (np.abs(z_coefficient) >= TINY * largest[self.seg])
        worst_y = np.maximum(y_coefficient * self.y_lower, y_coefficient * self.y_upper)
        worst_z = np.maximum(z_coefficient, 0.0)  # z in [0, 1]
        rhs = rhs + self._sum(np.where(y_kept, 0.0, worst_y) + np.where(self.has_z & ~z_kept, worst_z, 0.0))
        rhs = rhs + SAFETY * (magnitude + largest)
        y_value = np.where(y_kept, y_coefficient, 0.0)
        z_value = np.where(z_kept, z_coefficient, 0.0)
        ok = wanted & ok & (largest > 0.0) & np.isfinite(largest) & np.isfinite(rhs)
        efficacy = np.where(ok, self._over_norm(y_value, z_value, rhs), -math.inf)
        return _SafeCuts(y_value, y_kept, z_value, z_kept, rhs, efficacy)

    def cut(self, safe: _SafeCuts, k: int) -> Cut:
        """Candidate ``k``'s safe cut over the model's columns (its ``y`` terms, then its ``z`` terms)."""
        entries = slice(self.starts[k], self.starts[k + 1])
        y_part, z_part = safe.y_kept[entries], safe.z_kept[entries]
        columns = np.concatenate([self.y_column[entries][y_part], self.z_column[entries][z_part]])
        values = np.concatenate([safe.y_value[entries][y_part], safe.z_value[entries][z_part]])
        return Cut(columns.astype(np.int32), values, float(safe.rhs[k]))


@dataclass(frozen=True)
class _SafeCuts:
    """Every candidate's safe cut: per entry its ``y`` and ``z`` coefficients and whether each is in the cut,
    per candidate the right-hand side and the efficacy."""

    y_value: np.ndarray
    y_kept: np.ndarray
    z_value: np.ndarray
    z_kept: np.ndarray
    rhs: np.ndarray
    efficacy: np.ndarray


def _ranked(group: np.ndarray, key: np.ndarray, value: np.ndarray, groups: int, size: int) -> np.ndarray:
    """A ``groups x size`` table: per group its distinct ``value``s in ``key`` order (ties: the order given),
    the first ``size``; NaN where a group has fewer."""
    table = np.full((groups, size), math.nan)
    if group.size == 0:
        return table
    order = np.lexsort((np.arange(group.size), key, group))
    group, value = group[order], value[order]
    new = np.ones(group.size, dtype=bool)
    new[1:] = (group[1:] != group[:-1]) | (value[1:] != value[:-1])
    group, value = group[new], value[new]
    first = np.ones(group.size, dtype=bool)
    first[1:] = group[1:] != group[:-1]
    rank = np.arange(group.size) - np.maximum.accumulate(np.where(first, np.arange(group.size), 0))
    keep = rank < size
    table[group[keep], rank[keep]] = value[keep]
    return table
