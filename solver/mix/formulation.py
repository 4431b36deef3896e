"""Backend-neutral mixed-integer model of the mix problem, shared by the MIQP and MISOCP formulations.

Each activity is split into *pieces*: one per feasible region (decrease / increase, the paper's Table 1),
or a single piece ``[min_spend - baseline, max_spend - baseline]`` when the minimum change is zero (the two
regions then touch zero and merge). A piece ``p`` of activity ``i`` has

- a scaled change ``y_p`` (the change is ``x_i = S_i * sum_p y_p`` with ``S_i`` the largest possible
  change of ``i``, so every ``y`` lies in ``[-1, 1]``),
- an on/off binary ``z_p`` with ``lo_p z_p <= y_p <= hi_p z_p`` (omitted when neither the minimum change
  nor the cap on changes needs it: then ``y_p`` simply ranges over ``[lo_p, hi_p]``),
- an epigraph variable ``t_p`` of the quadratic (omitted when ``a_i = 0``): ``t_p >= y_p^2`` (MIQP) or
  the perspective ``t_p z_p >= y_p^2`` (MISOCP, a rotated second-order cone).

- a revenue variable ``w_p`` of the activity's concave piecewise-linear revenue ``g_i`` (when it has one,
  :class:`dmplan.solver.mix.model.Piecewise`): one linear row ``w_p <= alpha_k z_p + beta_k S_i y_p`` per line
  ``alpha_k + beta_k x`` of ``g_i`` that is active on the piece. That is the perspective of ``g_i`` on the
  piece, so it is exact in both formulations with no new binaries (``z_p = 1`` without a binary); only lines
  that are the minimum somewhere on the piece are written.

The objective is linear: ``sum_p a_i S_i^2 t_p + b_i S_i y_p + w_p + sum_i c_i``; as ``a_i <= 0`` it pushes
``t_p`` down onto ``y_p^2`` (or ``y_p^2 / z_p``) and ``w_p`` up onto the piecewise revenue. Backends receive
this model and only translate it (the piecewise rows are ordinary linear rows).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from dmplan.solver.mix.model import MixProblem, regions, snap
from dmplan.solver.mix.qp import linear_rows

INF = float("inf")


@dataclass
class ConicModel:
    """A maximisation ``cost @ v + offset`` over linear rows, variable bounds, integrality and cones.

    Cones are ``t * z >= x^2`` (``cone_z >= 0``) or ``t >= x^2`` (``cone_z == -1``), given as variable
    indices. ``piece_*`` arrays map pieces back to activities.
    """

    name: str
    lower: np.ndarray
    upper: np.ndarray
    integer: np.ndarray
    cost: np.ndarray
    offset: float
    matrix: sp.csr_matrix
    row_lower: np.ndarray
    row_upper: np.ndarray
    row_names: list[str]
    cone_t: np.ndarray
    cone_x: np.ndarray
    cone_z: np.ndarray
    piece_activity: np.ndarray
    piece_y: np.ndarray
    piece_z: np.ndarray
    piece_t: np.ndarray
    piece_w: np.ndarray  #: the piecewise revenue variable of each piece (-1 without a piecewise revenue)
    piece_lo: np.ndarray
    piece_hi: np.ndarray
    piece_peak: np.ndarray  #: unconstrained maximiser of the piece's revenue, clipped to the piece
    activity_scale: np.ndarray
    count_row: int | None  #: index of the row ``sum z <= K`` when present
    perspective: bool
    #: indices of the rows that couple activities: the count row, the budget and the rules (not the region,
    #: one-region or piecewise rows, which belong to one activity each)
    coupling_rows: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    @property
    def num_vars(self) -> int:
        return self.lower.size

    @property
    def num_rows(self) -> int:
        return self.row_lower.size

    def decode(self, values: np.ndarray, problem: MixProblem) -> np.ndarray:
        """Change per activity from a vector of model variables (tiny changes snapped to zero)."""
        change = np.zeros(problem.n)
        y = np.clip(values[self.piece_y], self.piece_lo, self.piece_hi)
        # a piece is on when its binary rounds to 1; this removes changes hidden in integrality tolerance
        has_z = self.piece_z >= 0
        on = np.ones(y.size, dtype=bool)
        on[has_z] = values[self.piece_z[has_z]] > 0.5
        y = np.where(on, y, 0.0)
        np.add.at(change, self.piece_activity, y * self.activity_scale[self.piece_activity])
        return snap(problem, change)

    def encode(self, change: np.ndarray, problem: MixProblem) -> np.ndarray:
        """Model variables representing a change vector (for warm starts); ``t`` at its tightest value."""
        x = snap(problem, change)
        values = np.zeros(self.num_vars)
        y_all = x[self.piece_activity] / self.activity_scale[self.piece_activity]
        inside = (y_all >= self.piece_lo - 1e-12) & (y_all <= self.piece_hi + 1e-12) & (y_all != 0)
        # with two pieces (decrease / increase) the sign decides; a zero change activates no piece
        values[self.piece_y] = np.where(inside, y_all, 0.0)
        has_z = self.piece_z >= 0
        values[self.piece_z[has_z]] = inside[has_z].astype(float)
        has_t = self.piece_t >= 0
        values[self.piece_t[has_t]] = np.where(inside, y_all * y_all, 0.0)[has_t]
        for p in np.flatnonzero(self.piece_w >= 0):
            curve = problem.piecewise[self.piece_activity[p]]
            assert curve is not None
            values[self.piece_w[p]] = float(curve(x[self.piece_activity[p]])) if inside[p] else 0.0
        return values

    def objective(self, values: np.ndarray) -> float:
        return float(self.cost @ values + self.offset)


def build(problem: MixProblem, *, perspective: bool) -> ConicModel:
    """Build the neutral model of ``problem``.

    Parameters
    ----------
    problem:
        A validated problem.
    perspective:
        True for the MISOCP (perspective cones ``t z >= y^2``), False for the MIQP (``t >= y^2``).

    Returns
    -------
    ConicModel
    """
    reg = regions(problem)
    movable = reg.movable
    k = problem.k
    count_binds = k < int(movable.sum())
    scale = np.maximum(np.maximum(np.abs(reg.dec_lo), np.abs(reg.inc_hi)), 1e-300)
    scale = np.where(movable, scale, 1.0)

    # two piece slots per movable activity: slot 0 is the merged interval (minimum change 0) or the decrease
    # region, slot 1 the increase region; flattening them row by row keeps activity order, decrease first
    act = np.flatnonzero(movable)
    s = scale[act]
    merged = problem.min_change[act] == 0
    slot_lo = np.stack([reg.dec_lo[act] / s, reg.inc_lo[act] / s], axis=1)
    slot_hi = np.stack([np.where(merged, reg.inc_hi[act], reg.dec_hi[act]) / s, reg.inc_hi[act] / s], axis=1)
    slot_ok = np.stack([merged | reg.has_dec[act], ~merged & reg.has_inc[act]], axis=1)
    slot_binary = np.stack([~merged | count_binds, np.ones(act.size, dtype=bool)], axis=1)
    keep = slot_ok.ravel()
    piece_activity = np.repeat(act, 2)[keep]
    lo = slot_lo.ravel()[keep]
    hi = slot_hi.ravel()[keep]
    binary = slot_binary.ravel()[keep]
    a_scaled = (problem.a * scale * scale)[piece_activity]
    b_scaled = (problem.b * scale)[piece_activity]
    has_t = a_scaled < 0

    curves = problem.piecewise or (None,) * problem.n
    has_w = np.array([curves[i] is not None for i in piece_activity], dtype=bool)

    # variables piece by piece: y, then z (when binary), then t (when the revenue is curved), then w (piecewise)
    width = 1 + binary.astype(np.int64) + has_t.astype(np.int64) + has_w.astype(np.int64)
    piece_y = (np.cumsum(width) - width).astype(np.int64)
    piece_z = np.where(binary, piece_y + 1, -1)
    piece_t = np.where(has_t, piece_y + 1 + binary, -1)
    piece_w = np.where(has_w, piece_y + 1 + binary + has_t, -1)
    num_vars = int(width.sum())
    lower = np.zeros(num_vars)
    upper = np.zeros(num_vars)
    cost = np.zeros(num_vars)
    integer = np.zeros(num_vars, dtype=bool)
    lower[piece_y] = np.where(binary, np.minimum(lo, 0.0), lo)
    upper[piece_y] = np.where(binary, np.maximum(hi, 0.0), hi)
    cost[piece_y] = b_scaled
    zs = piece_z[binary]
    upper[zs] = 1.0
    integer[zs] = True
    ts = piece_t[has_t]
    upper[ts] = np.maximum(lo * lo, hi * hi)[has_t]
    cost[ts] = a_scaled[has_t]
    # piecewise revenue rows: w - alpha_k z - beta_k S y <= 0 (w - beta_k S y <= alpha_k without a binary)
    pw_rows: list[tuple[int, list[int], list[float], float]] = []  # (piece, columns, values, upper)
    for p in np.flatnonzero(has_w):
        i = int(piece_activity[p])
        curve = curves[i]
        assert curve is not None
        s_i = float(scale[i])
        x_lo, x_hi = float(lo[p]) * s_i, float(hi[p]) * s_i
        active = curve.active(x_lo, x_hi)
        top = float(np.max(curve(np.concatenate([[x_lo, x_hi], _inside(curve.envelope()[1], x_lo, x_hi)]))))
        w = int(piece_w[p])
        lower[w] = min(0.0, float(curve(x_lo)), float(curve(x_hi)))  # a concave minimum lies at an end
        upper[w] = max(0.0, top)
        cost[w] = 1.0
        for line in active.tolist():
            alpha, beta = float(curve.intercept[line]), float(curve.slope[line]) * s_i
            if binary[p]:
                pw_rows.append((int(p), [w, int(piece_z[p]), int(piece_y[p])], [1.0, -alpha, -beta], 0.0))
            else:
                pw_rows.append((int(p), [w, int(piece_y[p])], [1.0, -beta], alpha))

    with np.errstate(divide="ignore", invalid="ignore"):
        peak = np.where(has_t, -b_scaled / (2 * a_scaled), np.where(b_scaled > 0, hi, lo))
    piece_peak = np.clip(peak, lo, hi)

    blocks: list[sp.csr_matrix] = []
    row_lower: list[np.ndarray] = []
    row_upper: list[np.ndarray] = []
    row_names: list[str] = []
    row_keys: list[np.ndarray] = []
    row_couples: list[np.ndarray] = []  #: per block, whether its rows couple activities
    name = np.asarray(problem.activity, dtype=object)

    def add_rows(
        matrix: sp.csr_matrix,
        lo_: Sequence[float] | np.ndarray,
        hi_: Sequence[float] | np.ndarray,
        names: list[str],
        keys: np.ndarray | None = None,
        couples: bool = False,
    ) -> None:
        """Append rows; ``keys`` place them in the final order (default: after every keyed row, in turn);
        ``couples``: the rows tie several activities together (count, budget, rules)."""
        blocks.append(sp.csr_matrix(matrix))
        row_couples.append(np.full(matrix.shape[0], couples, dtype=bool))
        row_lower.append(np.asarray(lo_, dtype=float))
        row_upper.append(np.asarray(hi_, dtype=float))
        row_names.extend(names)
        if keys is None:
            keys = 3 * num_vars + sum(block.size for block in row_keys) + np.arange(matrix.shape[0])
        row_keys.append(np.asarray(keys, dtype=np.int64))

    # region rows: lo z <= y <= hi z for every piece with a binary
    on = np.flatnonzero(binary)
    region_names = [str(v) for v in name[piece_activity[on]]]
    # rows are ordered activity by activity as the per-activity loop of the first builder wrote them (a piece's
    # lower and upper row, then the activity's one-region row): SCIP 6.3 crashed (heap corruption) on the
    # same rows grouped by kind
    for offset, bound, lo_, hi_, label in ((0, lo, 0.0, INF, "lower"), (1, hi, -INF, 0.0, "upper")):
        rows = np.repeat(np.arange(on.size), 2)
        cols = np.stack([piece_y[on], piece_z[on]], axis=1).ravel()
        vals = np.stack([np.ones(on.size), -bound[on]], axis=1).ravel()
        matrix = sp.csr_matrix((vals, (rows, cols)), shape=(on.size, num_vars))
        names = [f"region {label} of {a}" for a in region_names]
        add_rows(matrix, np.full(on.size, lo_), np.full(on.size, hi_), names, 3 * piece_y[on] + offset)
    # one region per activity with two binary pieces
    binary_activity = piece_activity[on]
    owners, counts = np.unique(binary_activity, return_counts=True)
    two = owners[counts > 1]
    if two.size:
        member = np.isin(binary_activity, two)
        rows = np.searchsorted(two, binary_activity[member])
        matrix = sp.csr_matrix((np.ones(rows.size), (rows, piece_z[on][member])), shape=(two.size, num_vars))
        last_y = np.zeros(problem.n, dtype=np.int64)
        np.maximum.at(last_y, piece_activity, piece_y)
        names = [f"one region of {name[i]}" for i in two]
        add_rows(matrix, np.full(two.size, -INF), np.ones(two.size), names, 3 * last_y[two] + 2)

    if pw_rows:
        rows = np.concatenate([np.full(len(cols), r) for r, (_, cols, _, _) in enumerate(pw_rows)])
        cols = np.concatenate([c for _, c, _, _ in pw_rows])
        vals = np.concatenate([v for _, _, v, _ in pw_rows])
        matrix = sp.csr_matrix((vals, (rows, cols)), shape=(len(pw_rows), num_vars))
        names = [f"piecewise revenue of {name[piece_activity[p]]}" for p, _, _, _ in pw_rows]
        add_rows(matrix, np.full(len(pw_rows), -INF), [u for _, _, _, u in pw_rows], names)

    count_row = None
    if count_binds and zs.size:
        count_row = sum(b.shape[0] for b in blocks)  # the first unkeyed row: its place is its index
        matrix = sp.csr_matrix((np.ones(zs.size), (np.zeros(zs.size, dtype=np.int64), zs)), shape=(1, num_vars))
        add_rows(matrix, [-INF], [float(k)], ["max_changes"], couples=True)

    # budget and rules on the change: sum_i w_i x_i = sum_p w_i S_i y_p
    rules = linear_rows(problem)
    if rules.matrix.shape[0]:
        placement = sp.csr_matrix((scale[piece_activity], (piece_activity, piece_y)), shape=(problem.n, num_vars))
        add_rows(rules.matrix @ placement, rules.lower, rules.upper, list(rules.names), couples=True)

    order = np.argsort(np.concatenate(row_keys), kind="stable") if row_keys else np.zeros(0, dtype=np.int64)
    matrix = sp.csr_matrix(sp.vstack(blocks))[order] if blocks else sp.csr_matrix((0, num_vars))
    matrix.eliminate_zeros()
    matrix.sort_indices()
    all_lower = np.concatenate(row_lower)[order] if row_lower else np.zeros(0)
    all_upper = np.concatenate(row_upper)[order] if row_upper else np.zeros(0)
    row_names = [row_names[r] for r in order]
    couples = np.concatenate(row_couples)[order] if row_couples else np.zeros(0, dtype=bool)
    # scale each row to unit largest coefficient for the numerics of every backend
    size = np.ones(matrix.shape[0])
    if matrix.nnz:
        size = np.asarray(abs(matrix).max(axis=1).todense()).ravel()
        size[size == 0] = 1.0
    matrix = sp.csr_matrix(sp.diags(1.0 / size) @ matrix)
    cone_rows = np.flatnonzero(has_t)
    cone_t = piece_t[cone_rows]
    cone_x = piece_y[cone_rows]
    cone_z = piece_z[cone_rows] if perspective else np.full(cone_rows.size, -1, dtype=np.int64)
    return ConicModel(
        name="misocp" if perspective else "miqp",
        lower=lower,
        upper=upper,
        integer=integer,
        cost=cost,
        offset=float(problem.c.sum()),
        matrix=matrix,
        row_lower=all_lower / size,
        row_upper=all_upper / size,
        row_names=row_names,
        cone_t=cone_t,
        cone_x=cone_x,
        cone_z=cone_z,
        piece_activity=piece_activity.astype(np.int64),
        piece_y=piece_y,
        piece_z=piece_z.astype(np.int64),
        piece_t=piece_t.astype(np.int64),
        piece_w=piece_w.astype(np.int64),
        piece_lo=lo,
        piece_hi=hi,
        piece_peak=piece_peak,
        activity_scale=scale,
        count_row=count_row,
        perspective=perspective,
        coupling_rows=np.flatnonzero(couples).astype(np.int64),
    )


def _inside(points: np.ndarray, lower: float, upper: float) -> np.ndarray:
    return points[(points > lower) & (points < upper)]
