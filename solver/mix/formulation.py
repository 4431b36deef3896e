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

The objective is linear: ``sum_p a_i S_i^2 t_p + b_i S_i y_p + sum_i c_i``; as ``a_i <= 0`` it pushes
``t_p`` down onto ``y_p^2`` (or ``y_p^2 / z_p``). Backends receive this model and only translate it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from solver.mix.model import MixProblem, regions, snap

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
    piece_lo: np.ndarray
    piece_hi: np.ndarray
    piece_peak: np.ndarray  #: unconstrained maximiser of the piece's revenue, clipped to the piece
    activity_scale: np.ndarray
    count_row: int | None  #: index of the row ``sum z <= K`` when present
    perspective: bool

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
        return values

    def objective(self, values: np.ndarray) -> float:
        return float(self.cost @ values + self.offset)


def build(problem: MixProblem, *, perspective: bool, force_count_row: bool = False) -> ConicModel:
    """Build the neutral model of ``problem``.

    Parameters
    ----------
    problem:
        A validated problem.
    perspective:
        True for the MISOCP (perspective cones ``t z >= y^2``), False for the MIQP (``t >= y^2``).
    force_count_row:
        Keep the row ``sum z <= K`` and the binaries it needs even when ``K`` cannot bind, so that ``K``
        can later be changed by editing one row bound (used by the Pareto sweep).

    Returns
    -------
    ConicModel
    """
    reg = regions(problem)
    movable = reg.movable
    k = problem.k
    count_binds = force_count_row or k < int(movable.sum())
    scale = np.maximum(np.maximum(np.abs(reg.dec_lo), np.abs(reg.inc_hi)), 1e-300)
    scale = np.where(movable, scale, 1.0)

    lower: list[float] = []
    upper: list[float] = []
    integer: list[bool] = []
    cost: list[float] = []

    def new_var(lo: float, hi: float, c: float = 0.0, is_int: bool = False) -> int:
        lower.append(lo)
        upper.append(hi)
        integer.append(is_int)
        cost.append(c)
        return len(lower) - 1

    rows: list[tuple[list[int], list[float], float, float, str]] = []
    piece_activity: list[int] = []
    piece_y: list[int] = []
    piece_z: list[int] = []
    piece_t: list[int] = []
    piece_lo: list[float] = []
    piece_hi: list[float] = []
    piece_peak: list[float] = []
    cones: list[tuple[int, int, int]] = []

    for i in range(problem.n):
        if not movable[i]:
            continue
        s = scale[i]
        a_scaled = problem.a[i] * s * s
        b_scaled = problem.b[i] * s
        if problem.min_change[i] == 0:
            intervals = [(reg.dec_lo[i] / s, reg.inc_hi[i] / s)]
            needs_binary = count_binds
        else:
            intervals = []
            if reg.has_dec[i]:
                intervals.append((reg.dec_lo[i] / s, reg.dec_hi[i] / s))
            if reg.has_inc[i]:
                intervals.append((reg.inc_lo[i] / s, reg.inc_hi[i] / s))
            needs_binary = True
        zs: list[int] = []
        for lo, hi in intervals:
            y = new_var(min(lo, 0.0) if needs_binary else lo, max(hi, 0.0) if needs_binary else hi, b_scaled)
            z = -1
            if needs_binary:
                z = new_var(0.0, 1.0, 0.0, True)
                zs.append(z)
                rows.append(([y, z], [1.0, -lo], 0.0, INF, f"region lower of {problem.activity[i]}"))
                rows.append(([y, z], [1.0, -hi], -INF, 0.0, f"region upper of {problem.activity[i]}"))
            t = -1
            if a_scaled < 0:
                t = new_var(0.0, max(lo * lo, hi * hi), a_scaled)
                cones.append((t, y, z if perspective else -1))
            peak = -b_scaled / (2 * a_scaled) if a_scaled < 0 else (hi if b_scaled > 0 else lo)
            piece_activity.append(i)
            piece_y.append(y)
            piece_z.append(z)
            piece_t.append(t)
            piece_lo.append(lo)
            piece_hi.append(hi)
            piece_peak.append(float(np.clip(peak, lo, hi)))
        if len(zs) > 1:
            rows.append((zs, [1.0] * len(zs), -INF, 1.0, f"one region of {problem.activity[i]}"))

    piece_activity_arr = np.asarray(piece_activity, dtype=np.int64)
    piece_y_arr = np.asarray(piece_y, dtype=np.int64)
    y_scale = scale[piece_activity_arr]

    count_row = None
    binaries = [z for z in piece_z if z >= 0]
    if count_binds and binaries:
        count_row = len(rows)
        rows.append((binaries, [1.0] * len(binaries), -INF, float(k), "max_changes"))

    def linear_row(weights: np.ndarray, lo: float, hi: float, name: str) -> None:
        coef = weights[piece_activity_arr] * y_scale
        keep = coef != 0
        rows.append((list(piece_y_arr[keep]), list(coef[keep]), lo, hi, name))

    total = float(problem.baseline.sum())
    if problem.budget_min is not None or problem.budget_max is not None:
        lo = -INF if problem.budget_min is None else problem.budget_min - total
        hi = INF if problem.budget_max is None else problem.budget_max - total
        linear_row(np.ones(problem.n), lo, hi, "budget")
    for rule in problem.rules:
        lo, hi = rule.change_bounds(problem.baseline)
        linear_row(np.asarray(rule.weights, dtype=float), lo, hi, f"rule {rule.name}")

    row_ids: list[int] = []
    col_ids: list[int] = []
    vals: list[float] = []
    row_lower = np.empty(len(rows))
    row_upper = np.empty(len(rows))
    for r, (cols, coefs, lo, hi, _name) in enumerate(rows):
        # scale each row to unit largest coefficient for the numerics of every backend
        size = max((abs(c) for c in coefs), default=1.0) or 1.0
        row_ids.extend([r] * len(cols))
        col_ids.extend(int(c) for c in cols)
        vals.extend(float(c) / size for c in coefs)
        row_lower[r] = lo / size
        row_upper[r] = hi / size
    matrix = sp.csr_matrix((vals, (row_ids, col_ids)), shape=(len(rows), len(lower)))
    cone = np.asarray(cones, dtype=np.int64).reshape(-1, 3)
    return ConicModel(
        name="misocp" if perspective else "miqp",
        lower=np.asarray(lower),
        upper=np.asarray(upper),
        integer=np.asarray(integer, dtype=bool),
        cost=np.asarray(cost),
        offset=float(problem.c.sum()),
        matrix=matrix,
        row_lower=row_lower,
        row_upper=row_upper,
        row_names=[row[4] for row in rows],
        cone_t=cone[:, 0],
        cone_x=cone[:, 1],
        cone_z=cone[:, 2],
        piece_activity=piece_activity_arr,
        piece_y=piece_y_arr,
        piece_z=np.asarray(piece_z, dtype=np.int64),
        piece_t=np.asarray(piece_t, dtype=np.int64),
        piece_lo=np.asarray(piece_lo),
        piece_hi=np.asarray(piece_hi),
        piece_peak=np.asarray(piece_peak),
        activity_scale=scale,
        count_row=count_row,
        perspective=perspective,
    )
