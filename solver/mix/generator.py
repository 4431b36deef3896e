"""Seeded instance generator in the spirit of the paper's Section 4.1, plus its Section 4.3 retailer case.

Paper-style instances (:func:`paper_instance`)
    - ``n`` activities (the paper uses 500, 750 and 1,000) with baseline spend ``s_i ~ U[100, 1000]``,
      spend bounds ``min_spend = s (1 - U[0.1, 0.7])`` and ``max_spend = s (1 + U[0.1, 1.0])``; 5% of the
      activities cannot decrease (``min_spend = s``) and 5% cannot increase (``max_spend = s``), so some
      have a single region.
    - Two knapsack-like weighted rules on spend: the weighted total may not grow,
      ``sum_i w_ki (s_i + x_i) <= sum_i w_ki s_i`` (k = 1, 2) with weights ``w_ki ~ U[1, R]``, ``R = 100``.
    - The marginal return ``b_i`` (the objective's linear coefficient) relates to the first rule's weight
      after Pisinger's hard knapsack classes: *uncorrelated* ``p_i ~ U[1, R]``; *weakly correlated*
      ``p_i = w_1i + U[-R/10, R/10]`` (at least 1); *strongly correlated* ``p_i = w_1i + R/10``; then
      ``b_i = 0.5 + 1.5 p_i / (1.1 R)`` (a return of 0.5 .. 2 per unit of spend).
    - Diminishing returns: the revenue peaks at a change ``h_i = s_i U[0.2, 2]``, so ``a_i = -b_i / (2 h_i)``;
      ``c_i = 0``: the objective is the *incremental* revenue of the reallocation, so the relative gap is
      measured against what the optimisation can gain (``baseline_revenue=True`` adds the revenue at
      baseline ``c_i = b_i s_i``, which divides every relative gap by about 20).
    - Minimum change ``m_i`` = 5%, 10% or 20% of ``s_i``; K = 20%, 50%, 75% or 100% of ``n``.
    - Budget: total new spend within 1% of the total baseline (``[0.99, 1.01] * sum s``).

Retailer case (:func:`retailer_instance`, Section 4.3)
    ``instruments x store groups x weeks`` activities (default 8 x 75 x 5 = 3,000), about 2,600 group rules
    "total spend of the group within 80%-120% of its baseline" over the groupings (instrument, store
    group), (store group, week), (instrument, week), (instrument, region, week), (instrument, region),
    (channel, store group), (channel, region, week), (channel, week), (channel, region), (region, week)
    and the single dimensions, where 15 regions hold 5 store groups each and 4 channels hold 2
    instruments each. K = 25% of the activities, minimum change 10% of baseline, total budget at most
    90% of baseline.

Everything is a deterministic function of the seed.
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass
from typing import Literal

import numpy as np

from dmplan.solver.mix.model import MixProblem, Piecewise, Rule

Correlation = Literal["uncorrelated", "weak", "strong"]
CORRELATIONS: tuple[Correlation, ...] = ("uncorrelated", "weak", "strong")
MIN_CHANGE_SHARES = (0.05, 0.10, 0.20)
K_SHARES = (0.20, 0.50, 0.75, 1.00)
SIZES = (500, 750, 1000)


@dataclass(frozen=True)
class InstanceSpec:
    """Parameters of one paper-style instance."""

    n: int
    correlation: Correlation
    min_change: float
    k_share: float
    seed: int
    baseline_revenue: bool = False  #: add ``c_i = b_i s_i``; off by default as a constant only dilutes the gap

    @property
    def group(self) -> str:
        return f"{self.correlation[:5]} m={self.min_change:.0%} K={self.k_share:.0%}"


def paper_instance(spec: InstanceSpec) -> MixProblem:
    """A paper-style instance; see the module docstring.

    Parameters
    ----------
    spec:
        Size, correlation class, minimum-change share, K share and seed.

    Returns
    -------
    MixProblem
    """
    rng = np.random.default_rng([spec.seed, spec.n, CORRELATIONS.index(spec.correlation)])
    n = spec.n
    r = 100.0
    s = rng.uniform(100, 1000, n)
    low = s * (1 - rng.uniform(0.1, 0.7, n))
    high = s * (1 + rng.uniform(0.1, 1.0, n))
    kind = rng.uniform(size=n)
    low[kind < 0.05] = s[kind < 0.05]
    high[(kind >= 0.05) & (kind < 0.10)] = s[(kind >= 0.05) & (kind < 0.10)]
    w1 = rng.uniform(1, r, n)
    w2 = rng.uniform(1, r, n)
    if spec.correlation == "uncorrelated":
        p = rng.uniform(1, r, n)
    elif spec.correlation == "weak":
        p = np.maximum(1.0, w1 + rng.uniform(-r / 10, r / 10, n))
    else:
        p = w1 + r / 10
    b = 0.5 + 1.5 * p / (1.1 * r)
    peak = s * rng.uniform(0.2, 2.0, n)
    a = -b / (2 * peak)
    c = b * s if spec.baseline_revenue else np.zeros(n)
    total = float(s.sum())
    rules = (
        Rule("weighted 1", w1, None, float(w1 @ s)),
        Rule("weighted 2", w2, None, float(w2 @ s)),
    )
    return MixProblem(
        activity=tuple(f"A{i:04d}" for i in range(n)),
        baseline=s,
        min_spend=low,
        max_spend=high,
        min_change=spec.min_change * s,
        a=a,
        b=b,
        c=c,
        budget_min=0.99 * total,
        budget_max=1.01 * total,
        max_changes=round(spec.k_share * n),
        rules=rules,
    )


def paper_specs(n: int, instances: int, seed: int = 0) -> list[InstanceSpec]:
    """``instances`` specs of size ``n`` cycling through the 36 groups (class x min change x K)."""
    groups = list(itertools.product(CORRELATIONS, MIN_CHANGE_SHARES, K_SHARES))
    specs = []
    for j in range(instances):
        # stride 17 (coprime with 36): the first three instances cover all three correlation classes
        correlation, m, k = groups[(j * 17) % len(groups)] if instances < len(groups) else groups[j % len(groups)]
        specs.append(InstanceSpec(n, correlation, m, k, seed + j))
    return specs


@dataclass(frozen=True)
class RetailerInstance:
    """The retailer case with the dimensions of every activity (for grouping results)."""

    problem: MixProblem
    instrument: np.ndarray
    store_group: np.ndarray
    week: np.ndarray


def retailer_instance(
    seed: int = 0, instruments: int = 8, store_groups: int = 75, weeks: int = 5, regions_count: int = 15
) -> RetailerInstance:
    """The Section 4.3 retailer-sized case; see the module docstring.

    Parameters
    ----------
    seed:
        Random seed.
    instruments, store_groups, weeks:
        Dimensions; the activity count is their product.
    regions_count:
        Store groups are spread evenly over this many regions.

    Returns
    -------
    RetailerInstance
    """
    rng = np.random.default_rng([seed, 43])
    grid = np.array(list(itertools.product(range(instruments), range(store_groups), range(weeks))))
    inst, group, week = grid[:, 0], grid[:, 1], grid[:, 2]
    region = group * regions_count // store_groups
    channel = inst // max(1, instruments // 4)
    n = grid.shape[0]
    level = rng.uniform(0.5, 2.0, instruments)[inst] * rng.uniform(0.5, 2.0, store_groups)[group]
    s = level * rng.uniform(200, 800, n)
    low = s * rng.uniform(0.2, 0.5, n)
    high = s * rng.uniform(1.2, 1.8, n)
    roi = rng.uniform(0.6, 1.6, instruments)[inst] * rng.uniform(0.8, 1.25, n)
    b = roi
    a = -b / (2 * s * rng.uniform(0.3, 2.0, n))
    c = b * s
    rules: list[Rule] = []
    families: list[tuple[str, tuple[np.ndarray, ...]]] = [
        ("instrument-store", (inst, group)),
        ("store-week", (group, week)),
        ("instrument-week", (inst, week)),
        ("instrument-region-week", (inst, region, week)),
        ("instrument-region", (inst, region)),
        ("channel-store", (channel, group)),
        ("channel-region-week", (channel, region, week)),
        ("channel-week", (channel, week)),
        ("channel-region", (channel, region)),
        ("region-week", (region, week)),
        ("instrument", (inst,)),
        ("store", (group,)),
        ("week", (week,)),
    ]
    for family, keys in families:
        stacked = np.stack(keys, axis=1)
        labels, inverse = np.unique(stacked, axis=0, return_inverse=True)
        for j, label in enumerate(labels):
            weights = (inverse.ravel() == j).astype(float)
            base = float(weights @ s)
            rules.append(Rule(f"{family} {'-'.join(map(str, label))}", weights, 0.8 * base, 1.2 * base))
    total = float(s.sum())
    problem = MixProblem(
        activity=tuple(f"I{i}-G{g}-W{w}" for i, g, w in grid),
        baseline=s,
        min_spend=low,
        max_spend=high,
        min_change=0.10 * s,
        a=a,
        b=b,
        c=c,
        budget_min=None,
        budget_max=0.9 * total,
        max_changes=round(0.25 * n),
        rules=tuple(rules),
    )
    return RetailerInstance(problem, inst, group, week)


def random_small(rng: np.random.Generator, n: int) -> MixProblem:
    """A small random instance for property tests (some zero minimum changes, linear activities, rules)."""
    s = rng.uniform(10, 100, n)
    low = s * (1 - rng.uniform(0.0, 0.8, n))
    high = s * (1 + rng.uniform(0.0, 1.0, n))
    m = s * rng.choice([0.0, 0.05, 0.2, 0.5], n)
    a = -rng.uniform(0.001, 0.05, n) * (rng.uniform(size=n) > 0.15)
    b = rng.uniform(-0.5, 2.0, n)
    c = rng.uniform(0, 50, n)
    total = float(s.sum())
    w = rng.uniform(0, 2, n)
    rules = (Rule("weighted", w, None, float(w @ s) * rng.uniform(0.9, 1.05)),)
    return MixProblem(
        activity=tuple(f"a{i}" for i in range(n)),
        baseline=s,
        min_spend=low,
        max_spend=high,
        min_change=m,
        a=a,
        b=b,
        c=c,
        budget_min=total * rng.uniform(0.9, 1.0),
        budget_max=total * rng.uniform(1.0, 1.05),
        max_changes=int(rng.integers(0, n + 1)),
        rules=rules,
    )


def with_random_piecewise(problem: MixProblem, rng: np.random.Generator, share: float = 0.6) -> MixProblem:
    """``problem`` with a random concave piecewise-linear revenue (1-6 pieces, ``g(0) = 0``) on about ``share``
    of its activities, replacing their quadratic and linear terms (for property tests of ``Piecewise``)."""
    low = problem.min_spend - problem.baseline
    high = problem.max_spend - problem.baseline
    a = problem.a.copy()
    b = problem.b.copy()
    curves: list[Piecewise | None] = []
    for i in range(problem.n):
        if rng.uniform() >= share or high[i] - low[i] <= 0:
            curves.append(None)
            continue
        inner = np.sort(rng.uniform(low[i], high[i], int(rng.integers(0, 6))))
        knots = np.unique(np.concatenate([[low[i] - 1.0, 0.0, high[i] + 1.0], inner]))
        slopes = np.sort(rng.uniform(-0.5, 2.0, knots.size - 1))[::-1]
        values = np.concatenate([[0.0], np.cumsum(slopes * np.diff(knots))])
        values -= np.interp(0.0, knots, values)
        curves.append(Piecewise.from_knots(knots, values))
        a[i], b[i] = 0.0, 0.0
    return dataclasses.replace(problem, a=a, b=b, piecewise=tuple(curves))
