"""``python -m dmplan.bench.curves``: how much of the true optimum's lift a plan on fitted curves achieves.

Each instance has concave true response curves (Hill with alpha <= 1, Michaelis-Menten, logistic), sampled
as 201 points from 0.4x to 2.2x of the baseline spend (as dense as the Robyn import), bounds 0.5x to 2x,
minimum changes of 10-25% of the baseline, a cap K = n/2 on the number of changes and a total budget
within 98-100% of the baseline total; the marginal returns at the baseline lie within 0.6-1.4 of each
other, so optimal changes are mostly interior. Every revenue model (``quadratic``, ``piecewise`` with 8, 16 and 32
segments) is fitted to the points, solved exactly (``oa``, gap 1e-7), and its plan is scored on the *true*
curves: the share of the true optimum's lift (revenue after minus revenue at the baseline) it achieves.

The true optimum (the reference, printed in the same run):
- ``n <= 6``: brute force on the true curves: every region choice (keep / decrease / increase per
  activity, at most K changes), each remaining concave problem solved exactly by bisection on the budget's
  multiplier (the curves are separable and smooth, so each activity's change is where its slope equals the
  multiplier, clipped to its region);
- larger ``n``: the exact solve of a 256-segment piecewise fit of the points (its plan scored on the true
  curves; a lower bound of the true optimum, so shares against it may slightly exceed 100%).
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from rich.console import Console
from rich.table import Table

from dmplan.solver.mix import MixProblem, solve
from dmplan.solver.mix.curves import CurvePoints, apply_curves

Curve = Callable[[np.ndarray], np.ndarray]
MODELS: tuple[tuple[str, int], ...] = (("quadratic", 0), ("piecewise", 8), ("piecewise", 16), ("piecewise", 32))
REFERENCE_SEGMENTS = 256
BRUTE_FORCE_MAX_N = 6
#: points per true curve, from 0.4x to 2.2x of the baseline (the Robyn import writes 201 from 0 to 2.5x)
POINTS = 201


@dataclass(frozen=True)
class TrueCurve:
    """A concave response curve of spend and its derivative."""

    kind: str
    value: Curve
    slope: Curve


def hill(top: float, half: float, alpha: float) -> TrueCurve:
    return TrueCurve(
        f"hill a={alpha:.2f}",
        lambda s: top * s**alpha / (s**alpha + half**alpha),
        lambda s: top * alpha * s ** (alpha - 1) * half**alpha / (s**alpha + half**alpha) ** 2,
    )


def michaelis_menten(top: float, half: float) -> TrueCurve:
    return TrueCurve("michaelis-menten", lambda s: top * s / (s + half), lambda s: top * half / (s + half) ** 2)


def logistic(top: float, scale: float) -> TrueCurve:
    """PyMC-Marketing's logistic saturation ``top (1 - e^(-s/scale)) / (1 + e^(-s/scale)) = top tanh(s / 2 scale)``."""
    return TrueCurve(
        "logistic",
        lambda s: top * np.tanh(s / (2 * scale)),
        lambda s: top / (2 * scale) / np.cosh(s / (2 * scale)) ** 2,
    )


@dataclass
class Instance:
    problem: MixProblem
    truths: list[TrueCurve]
    points: dict[str, CurvePoints]


def instance(n: int, seed: int) -> Instance:
    """A seeded instance; see the module docstring."""
    rng = np.random.default_rng([seed, n])
    baseline = rng.uniform(50, 150, n)
    truths = []
    for i in range(n):
        half = baseline[i] * rng.uniform(0.3, 2.0)
        kind = i % 3
        if kind == 0:
            alpha = rng.uniform(0.5, 1.0)
            shape = hill(1.0, half, alpha)
        elif kind == 1:
            shape = michaelis_menten(1.0, half)
        else:
            shape = logistic(1.0, half)
        # marginal returns at the baseline within 0.6-1.4 of each other (a history that was roughly
        # planned already): the optimum then moves spend part of the way, not always to a bound
        top = rng.uniform(0.6, 1.4) / float(shape.slope(np.array(baseline[i])))
        if kind == 0:
            truths.append(hill(top, half, alpha))
        elif kind == 1:
            truths.append(michaelis_menten(top, half))
        else:
            truths.append(logistic(top, half))
    names = tuple(f"a{i}" for i in range(n))
    points = {}
    for i, name in enumerate(names):
        spend = np.linspace(0.4 * baseline[i], 2.2 * baseline[i], POINTS)
        points[name] = CurvePoints(name, spend, truths[i].value(spend))
    total = float(baseline.sum())
    problem = MixProblem(
        activity=names,
        baseline=baseline,
        min_spend=0.5 * baseline,
        max_spend=2.0 * baseline,
        min_change=baseline * rng.uniform(0.10, 0.25, n),
        a=np.zeros(n),
        b=np.zeros(n),
        c=np.zeros(n),
        budget_min=0.98 * total,
        budget_max=total,
        max_changes=max(1, n // 2),
    )
    return Instance(problem, truths, points)


def true_lift(inst: Instance, change: np.ndarray) -> float:
    s = inst.problem.baseline
    return float(sum(t.value(s[i] + change[i]) - t.value(s[i]) for i, t in enumerate(inst.truths)))


def _best_in_boxes(inst: Instance, lower: np.ndarray, upper: np.ndarray) -> np.ndarray | None:
    """Exact optimum of the true curves over boxes and the budget range, by bisection on the multiplier."""
    p = inst.problem
    total = float(p.baseline.sum())
    lo_sum, hi_sum = (p.budget_min or -np.inf) - total, (p.budget_max or np.inf) - total
    if lower.sum() > hi_sum + 1e-9 or upper.sum() < lo_sum - 1e-9:
        return None
    s = p.baseline

    def response(price: float) -> np.ndarray:
        """Per activity the change in its box where its slope equals ``price`` (bisection, vectorised)."""
        a, b = lower.copy(), upper.copy()
        for _ in range(60):
            mid = 0.5 * (a + b)
            steeper = np.array([t.slope(s[i] + mid[i]) for i, t in enumerate(inst.truths)]) > price
            a = np.where(steeper, mid, a)
            b = np.where(steeper, b, mid)
        return 0.5 * (a + b)

    free = response(0.0)
    if lo_sum <= free.sum() <= hi_sum:
        return free
    target = hi_sum if free.sum() > hi_sum else lo_sum
    low_price, high_price = (0.0, 1e3) if target == hi_sum else (-1e3, 0.0)
    for _ in range(60):
        mid = 0.5 * (low_price + high_price)
        if response(mid).sum() > target:
            low_price = mid
        else:
            high_price = mid
    return response(0.5 * (low_price + high_price))


def brute_force(inst: Instance) -> tuple[float, np.ndarray]:
    """The true optimum over every region choice (see the module docstring)."""
    p = inst.problem
    lo, hi, m = p.min_spend - p.baseline, p.max_spend - p.baseline, p.min_change
    best, plan = 0.0, np.zeros(p.n)  # the baseline is feasible (budget within 98-100%)
    for combo in itertools.product(range(3), repeat=p.n):
        if sum(1 for c in combo if c) > p.k:
            continue
        lower = np.array([(0.0, lo[i], m[i])[c] for i, c in enumerate(combo)])
        upper = np.array([(0.0, -m[i], hi[i])[c] for i, c in enumerate(combo)])
        change = _best_in_boxes(inst, lower, upper)
        if change is None:
            continue
        lift = true_lift(inst, change)
        if lift > best:
            best, plan = lift, change
    return best, plan


def solve_fitted(inst: Instance, model: str, segments: int) -> tuple[np.ndarray, float, float]:
    """Plan on the fitted curves: (change, lift on the fit, seconds)."""
    start = time.perf_counter()
    problem, _ = apply_curves(inst.problem, inst.points, model, max(segments, 1))  # type: ignore[arg-type]
    result = solve(problem, gap=1e-7)
    assert result.change is not None, result.certificate.message
    fitted = result.objective - problem.revenue(np.zeros(problem.n))  # type: ignore[operator]
    return result.change, float(fitted), time.perf_counter() - start


def run(args: argparse.Namespace) -> int:
    console = Console()
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    table = Table(title=f"share of the true optimum's lift on the true curves ({started})")
    for column in ("n", "reference", "instances", "model", "mean share", "min share", "median s"):
        table.add_column(column, justify="right")
    for n, count in ((args.small_n, args.small), (args.large_n, args.large)):
        if count <= 0:
            continue
        shares: dict[str, list[float]] = {}
        seconds: dict[str, list[float]] = {}
        reference_name = "brute force" if n <= BRUTE_FORCE_MAX_N else f"piecewise {REFERENCE_SEGMENTS}"
        for seed in range(count):
            inst = instance(n, seed)
            if n <= BRUTE_FORCE_MAX_N:
                best, _ = brute_force(inst)
            else:
                change, _, _ = solve_fitted(inst, "piecewise", REFERENCE_SEGMENTS)
                best = true_lift(inst, change)
            if best <= 1e-9:
                continue  # nothing to gain: the share is undefined
            for model, segments in MODELS:
                label = model if model == "quadratic" else f"piecewise {segments}"
                change, _, took = solve_fitted(inst, model, segments)
                shares.setdefault(label, []).append(true_lift(inst, change) / best)
                seconds.setdefault(label, []).append(took)
        for label, values in shares.items():
            table.add_row(
                str(n),
                reference_name,
                str(len(values)),
                label,
                f"{100 * statistics.mean(values):.3f}%",
                f"{100 * min(values):.3f}%",
                f"{statistics.median(seconds[label]):.3f}",
            )
    console.print(table)
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--small-n", type=int, default=6, help="activities of the brute-forced instances")
    parser.add_argument("--small", type=int, default=20, help="brute-forced instances")
    parser.add_argument("--large-n", type=int, default=30, help="activities of the larger instances")
    parser.add_argument("--large", type=int, default=10, help="larger instances (reference: 256-segment fit)")


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args())


if __name__ == "__main__":
    raise SystemExit(main())
