"""``dmplan bench mix``: benchmark of the marketing-mix solvers on generated instances (not a test).

Prints, with rich tables:

1. a table like the paper's Table 2: per group (correlation class x minimum change x K share) and per
   backend, the median MIQP and MISOCP gaps, the median MIQP/MISOCP run-time and node ratios and the share
   solved to a 0.01% gap within the time limit — every backend on the same instances in one run — plus the
   run-time ratio of SCIP's MISOCP to the default backend;
2. the continuous-relaxation (root) bound of both formulations against the best known optimum;
3. the retailer-sized case of the paper's Section 4.3;
4. the Pareto sweep over the cap on changes.

Times are wall-clock seconds on a shared machine: other processes running at the same time make them noisy.
ECOS_BB is only run on instances with at most ``--ecos-max-n`` activities: it has no presolve or cuts and
does not finish paper-sized instances.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from rich.console import Console
from rich.table import Table

# The mix solver (scipy, HiGHS) loads when a benchmark runs, not when ``dmplan --help`` lists its options.
if TYPE_CHECKING:
    from dmplan.solver.mix import MixProblem, MixResult
    from dmplan.solver.mix.generator import InstanceSpec

SOLVED_GAP = 1e-4


@dataclass
class Run:
    """One solve of one instance by one backend and formulation."""

    group: str
    instance: int
    backend: str
    formulation: str
    status: str
    objective: float | None
    bound: float | None
    gap: float | None
    seconds: float
    nodes: float
    n: int = 0  #: instance size; runs are paired by (n, group, instance)

    @property
    def solved(self) -> bool:
        return self.gap is not None and self.gap <= SOLVED_GAP * (1 + 1e-9)


@dataclass
class Report:
    runs: list[Run] = field(default_factory=list)
    roots: list[dict[str, float | str | None]] = field(default_factory=list)
    retailer: list[dict[str, float | str | None]] = field(default_factory=list)
    pareto: list[dict[str, float | str | bool | None]] = field(default_factory=list)
    pareto_seconds: float | None = None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``dmplan bench mix``."""
    parser.add_argument("--n", type=int, nargs="+", default=[1000], help="instance sizes (paper: 500 750 1000)")
    parser.add_argument("--instances", type=int, default=6, help="instances per size, cycling through the 36 groups")
    parser.add_argument("--time-limit", type=float, default=100.0, help="seconds per solve")
    parser.add_argument("--backends", default="oa,scip", help="comma-separated backends (oa, scip, ecos, ...)")
    parser.add_argument("--formulations", default="misocp,miqp", help="comma-separated formulations")
    parser.add_argument(
        "--scip-formulations",
        default=None,
        help="formulations given to SCIP (default: --formulations); its MIQP mostly runs to the time limit",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--ecos-max-n", type=int, default=40, help="largest instance given to ECOS_BB")
    parser.add_argument("--pareto-n", type=int, default=1000)
    parser.add_argument("--pareto-points", type=int, default=20)
    parser.add_argument("--pareto-time-limit", type=float, default=120.0)
    parser.add_argument("--skip-retailer", action="store_true")
    parser.add_argument("--retailer-backends", default="oa", help="backends for the retailer case")
    parser.add_argument(
        "--retailer-limits", default="10,100", help="comma-separated time limits of the retailer runs (seconds)"
    )
    parser.add_argument("--retailer-pareto-points", type=int, default=20, help="0 skips the retailer's Pareto sweep")
    parser.add_argument("--retailer-pareto-time-limit", type=float, default=60.0)
    parser.add_argument(
        "--retailer-pareto-gap", type=float, default=1e-3, help="gap per point of the retailer sweep (target: 0.1%%)"
    )
    parser.add_argument("--skip-pareto", action="store_true")
    parser.add_argument("--skip-roots", action="store_true")
    parser.add_argument("--json", help="also write every measurement to this file")
    parser.add_argument("--quick", action="store_true", help="a small version that finishes in about 2 minutes")


def run(args: argparse.Namespace) -> int:
    """Run the benchmark and print its tables; returns the exit code (0)."""
    from dmplan.solver.mix import available_solvers
    from dmplan.solver.mix.generator import paper_instance, paper_specs

    if args.quick:
        args.n, args.instances, args.time_limit = [150], 4, 20.0
        args.pareto_n, args.pareto_points, args.pareto_time_limit = 200, 10, 30.0
        args.retailer_limits, args.retailer_pareto_points, args.retailer_pareto_time_limit = "10", 5, 20.0
    console = Console(width=250)
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    usable = available_solvers()
    for name in backends:
        if name not in usable:
            console.print(f"[yellow]backend {name!r} is not available here; skipped[/]")
    backends = [b for b in backends if b in usable]
    formulations = [f.strip() for f in args.formulations.split(",") if f.strip()]
    report = Report()
    console.print(
        f"[bold]Mix benchmark[/] sizes={args.n} instances/size={args.instances} time limit={args.time_limit:g}s "
        f"backends={backends} formulations={formulations}  (wall-clock on a shared 2-core machine: noisy)"
    )
    for n in args.n:
        for index, spec in enumerate(paper_specs(n, args.instances, args.seed)):
            problem = paper_instance(spec)
            _run_instance(console, report, spec, index, problem, backends, formulations, args)
            if not args.skip_roots:
                report.roots.append(_roots(spec, index, problem, report))
    if report.runs:  # none with --instances 0 (the retailer case alone)
        console.print(_table_groups(report, backends, formulations))
        if "oa" in backends and "scip" in backends:
            console.print(_table_speed(report))
    if report.roots:
        console.print(_table_roots(report))
    if not args.skip_retailer:
        _retailer(console, report, backends, args)
    if not args.skip_pareto:
        _pareto(console, report, args)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(
                {
                    "runs": [run.__dict__ for run in report.runs],
                    "roots": report.roots,
                    "retailer": report.retailer,
                    "pareto": report.pareto,
                    "pareto_seconds": report.pareto_seconds,
                },
                handle,
                indent=1,
            )
    return 0


def _run_instance(
    console: Console,
    report: Report,
    spec: InstanceSpec,
    index: int,
    problem: MixProblem,
    backends: list[str],
    formulations: list[str],
    args: argparse.Namespace,
) -> None:
    from dmplan.solver.mix import solve

    for backend in backends:
        if backend == "ecos" and problem.n > args.ecos_max_n:
            continue
        chosen = formulations
        if backend == "scip" and getattr(args, "scip_formulations", None):
            chosen = [f.strip() for f in args.scip_formulations.split(",") if f.strip()]
        for formulation in chosen:
            result = solve(problem, solver=backend, formulation=formulation, time_limit=args.time_limit, gap=SOLVED_GAP)
            run_ = Run(
                spec.group,
                index,
                backend,
                formulation,
                result.status.value,
                result.objective,
                result.bound,
                result.gap,
                result.certificate.seconds,
                result.extra.get("nodes", float(result.certificate.iterations)),
                spec.n,
            )
            report.runs.append(run_)
            gap = "-" if run_.gap is None else f"{100 * run_.gap:.4f}%"
            console.print(
                f"  n={spec.n} #{index} {spec.group:<24} {backend:<5} {formulation:<6} {run_.status:<10} "
                f"gap={gap:<10} {run_.seconds:7.2f}s nodes={run_.nodes:g}"
            )


def _best(report: Report, group: str, instance: int) -> float | None:
    values = [
        r.objective for r in report.runs if r.group == group and r.instance == instance and r.objective is not None
    ]
    return max(values) if values else None


def _roots(spec: InstanceSpec, index: int, problem: MixProblem, report: Report) -> dict[str, float | str | None]:
    from dmplan.solver.mix.relaxation import root_bound

    best = _best(report, spec.group, index)
    row: dict[str, float | str | None] = {
        "group": spec.group,
        "instance": float(index),
        "n": float(spec.n),
        "optimum": best,
    }
    for formulation in ("misocp", "miqp"):
        start = time.perf_counter()
        bound = root_bound(problem, formulation)
        row[formulation] = bound
        row[f"{formulation}_seconds"] = time.perf_counter() - start
    return row


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _pct(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{100 * value:.{digits}f}%"


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _table_groups(report: Report, backends: list[str], formulations: list[str]) -> Table:
    table = Table(title="Table 2 style: per group, median gap, MIQP/MISOCP time and node ratios, solved to 0.01%")
    table.add_column("group")
    table.add_column("inst", justify="right")
    backends = [b for b in backends if any(r.backend == b for r in report.runs)]
    for backend in backends:
        for formulation in formulations:
            table.add_column(f"{backend}\n{formulation} gap", justify="right")
        if {"misocp", "miqp"} <= set(formulations):
            table.add_column(f"{backend}\ntime ratio", justify="right")
            table.add_column(f"{backend}\nnode ratio", justify="right")
        for formulation in formulations:
            table.add_column(f"{backend}\n{formulation} solved", justify="right")
    groups = sorted({r.group for r in report.runs})
    for group in [*groups, "all"]:
        runs = [r for r in report.runs if group in ("all", r.group)]
        cells = [group, str(len({(r.n, r.group, r.instance) for r in runs}))]
        for backend in backends:
            by = {f: [r for r in runs if r.backend == backend and r.formulation == f] for f in formulations}
            for formulation in formulations:
                gaps = [r.gap for r in by[formulation] if r.gap is not None]
                cells.append(_pct(_median(gaps)))
            if {"misocp", "miqp"} <= set(formulations):
                pairs = [
                    (q, c)
                    for q in by["miqp"]
                    for c in by["misocp"]
                    if (q.n, q.group, q.instance) == (c.n, c.group, c.instance)
                ]
                cells.append(_ratio(_median([q.seconds / max(c.seconds, 1e-3) for q, c in pairs])))
                cells.append(_ratio(_median([max(q.nodes, 1) / max(c.nodes, 1) for q, c in pairs])))
            for formulation in formulations:
                done = by[formulation]
                cells.append("-" if not done else f"{sum(r.solved for r in done)}/{len(done)}")
        table.add_row(*cells, end_section=group == groups[-1])
    return table


def _table_speed(report: Report) -> Table:
    """oa's MISOCP against SCIP's best formulation on each instance (the fastest one that proves the gap):
    a reference solver's ratio means something only with its best formulation. SCIP treats the perspective
    cone ``t z >= y^2`` as a bilinear (non-convex) constraint and stalls in root separation; on the MIQP
    (``t >= y^2`` with the region rows) its own perspective handler strengthens the relaxation."""
    table = Table(title="oa (MISOCP) against SCIP's best formulation: seconds per instance")
    for column in ("n", "group", "inst", "oa s", "oa gap", "scip form", "scip s", "scip gap", "scip/oa"):
        table.add_column(column, justify="right" if column != "group" else "left")
    ratios = []
    oa_times = []
    for oa in [r for r in report.runs if r.backend == "oa" and r.formulation == "misocp"]:
        scips = [
            r
            for r in report.runs
            if r.backend == "scip" and (r.n, r.group, r.instance) == (oa.n, oa.group, oa.instance)
        ]
        oa_times.append(oa.seconds)
        if not scips:
            continue
        scip = min(scips, key=lambda r: (not r.solved, r.seconds))
        ratio = scip.seconds / max(oa.seconds, 1e-3)
        ratios.append(ratio)
        marker = "" if scip.solved else " (scip unfinished: lower bound on the ratio)"
        table.add_row(
            str(oa.n),
            oa.group,
            str(oa.instance),
            f"{oa.seconds:.2f}",
            _pct(oa.gap),
            scip.formulation,
            f"{scip.seconds:.2f}",
            _pct(scip.gap),
            f"{ratio:.1f}x{marker}",
        )
    if ratios:
        table.add_row(
            "median",
            "",
            "",
            f"{statistics.median(oa_times):.2f}",
            "",
            "",
            "",
            "",
            f"{statistics.median(ratios):.1f}x (min {min(ratios):.1f}x)",
            end_section=True,
        )
    return table


def _table_roots(report: Report) -> Table:
    table = Table(title="Root (continuous-relaxation) bound against the best known optimum")
    for column in ("group", "inst", "optimum", "MISOCP root", "MISOCP root gap", "MIQP root", "MIQP root gap"):
        table.add_column(column, justify="right" if column != "group" else "left")
    gaps: dict[str, list[float]] = {"misocp": [], "miqp": []}
    for row in report.roots:
        optimum = row["optimum"]
        cells = [str(row["group"]), str(int(float(row["instance"] or 0))), _num(optimum)]
        for formulation in ("misocp", "miqp"):
            bound = row[formulation]
            gap = None
            if isinstance(bound, float) and isinstance(optimum, float):
                gap = (bound - optimum) / max(1.0, abs(optimum))
                gaps[formulation].append(gap)
            cells += [_num(bound), _pct(gap, 3)]
        table.add_row(*cells)
    table.add_row(
        "median", "", "", "", _pct(_median(gaps["misocp"]), 3), "", _pct(_median(gaps["miqp"]), 3), end_section=True
    )
    return table


def _num(value: object) -> str:
    return f"{value:,.2f}" if isinstance(value, float) else "-"


#: the best plan known for the retailer case (seed 0), from any solver at any time limit, and where it came from
RETAILER_BEST_KNOWN = (2_282_567.8, "oa 100 s: the neighbourhood search beside the MILP round; 2026-11-28, 15:24 UTC")


def _retailer(console: Console, report: Report, backends: list[str], args: argparse.Namespace) -> None:
    from dmplan.solver.mix import available_solvers, solve
    from dmplan.solver.mix.generator import retailer_instance

    case = retailer_instance(args.seed, 4, 25, 4) if args.quick else retailer_instance(args.seed)
    problem = case.problem
    limits = [float(v) for v in args.retailer_limits.split(",") if v.strip()] if args.retailer_limits else []
    limits = limits or [args.time_limit]
    best_known = RETAILER_BEST_KNOWN[0] if not args.quick and args.seed == 0 else None
    table = Table(
        title=f"Retailer case (Section 4.3): {problem.n} activities, {len(problem.rules)} group rules, "
        f"K = {problem.max_changes}, min change 10%, budget 90%"
        + (f"; best plan known {best_known:,.1f} ({RETAILER_BEST_KNOWN[1]})" if best_known else "")
    )
    columns = ("backend", "limit s", "status", "objective", "below best known", "bound", "gap", "seconds", "changes")
    for column in columns:
        table.add_column(column, justify="left" if column in ("backend", "status") else "right")
    names = [b.strip() for b in args.retailer_backends.split(",") if b.strip() and b.strip() != "ecos"]
    results = []
    for backend in [b for b in names if b in available_solvers()]:
        for limit in limits:
            result: MixResult = solve(problem, solver=backend, time_limit=limit, gap=SOLVED_GAP)
            results.append((backend, limit, result))
    best = max(
        [r.objective for _, _, r in results if r.objective is not None] + ([best_known] if best_known else []),
        default=None,
    )
    for backend, limit, result in results:
        below = None if result.objective is None or best is None else (best - result.objective) / max(1.0, abs(best))
        report.retailer.append(
            {
                "backend": backend,
                "limit": limit,
                "status": result.status.value,
                "objective": result.objective,
                "below_best_known": below,
                "bound": result.bound,
                "gap": result.gap,
                "seconds": result.certificate.seconds,
            }
        )
        table.add_row(
            backend,
            f"{limit:g}",
            result.status.value,
            _num(result.objective),
            _pct(below),
            _num(result.bound),
            _pct(result.gap),
            f"{result.certificate.seconds:.2f}",
            str(result.changes),
        )
    console.print(table)
    if args.retailer_pareto_points > 0:
        # as the workbook runs it: the sweep starts from the main solve's plan (the shortest run here)
        plan = next((r.change for _, _, r in results if r.change is not None), None)
        _pareto_table(
            console,
            report,
            problem,
            "retailer",
            args.retailer_pareto_points,
            args.retailer_pareto_time_limit,
            gap=args.retailer_pareto_gap,
            plan=plan,
        )


def _pareto(console: Console, report: Report, args: argparse.Namespace) -> None:
    from dmplan.solver.mix.generator import InstanceSpec, paper_instance

    spec = InstanceSpec(args.pareto_n, "weak", 0.10, 1.0, args.seed + 101)
    name = f"n = {spec.n}, {spec.group.split(' K=')[0]}"
    _pareto_table(console, report, paper_instance(spec), name, args.pareto_points, args.pareto_time_limit)


def _pareto_table(
    console: Console,
    report: Report,
    problem: MixProblem,
    name: str,
    points: int,
    time_limit: float,
    gap: float = SOLVED_GAP,
    plan: np.ndarray | None = None,
) -> None:
    from dmplan.solver.mix.pareto import pareto_over_changes

    start = time.perf_counter()
    sweep = pareto_over_changes(problem, points, time_limit=time_limit, gap=gap, plan=plan)
    seconds = time.perf_counter() - start
    report.pareto_seconds = seconds
    table = Table(
        title=f"Pareto over K: {name}, {len(sweep)} points in {seconds:.1f}s (limit {time_limit:g}s, one budget "
        f"for the sweep, gap {100 * gap:g}% per point); K < {sweep.infeasible_below} proven infeasible"
    )
    columns = ("K", "K % of n", "plan", "revenue % of best", "status", "gap", "seconds", "plan from", "knee")
    for column in columns:
        table.add_column(column, justify="right")
    for point in sweep:
        report.pareto.append(
            {
                "case": name,
                "k": float(point.k),
                "has_plan": point.has_plan,
                "revenue_share": point.revenue_share,
                "status": point.status.value,
                "gap": point.gap,
                "seconds": point.result.certificate.seconds,
                "knee": point.knee,
            }
        )
        table.add_row(
            str(point.k),
            f"{100 * point.k_share:.0f}%",
            "yes" if point.has_plan else "no",
            _share(point.revenue_share),
            point.status.value,
            _pct(point.gap),
            f"{point.result.certificate.seconds:.2f}",
            point.source,
            "<- knee" if point.knee else "",
        )
    console.print(table)
    if sweep.message:
        console.print(f"  {sweep.message}")
    feasible = [p for p in sweep if not p.proven_infeasible]
    within = [p for p in feasible if p.gap is not None and p.gap < 1e-3]
    console.print(
        f"  {sum(p.has_plan for p in feasible)}/{len(feasible)} points not proven infeasible have a plan; "
        f"{len(within)} proven within 0.1%, {sum(p.gap is not None and p.gap <= 1e-4 for p in feasible)} within 0.01%"
    )


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}%"


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry: ``python -m dmplan.addin.bench_mix --quick``."""
    parser = argparse.ArgumentParser(prog="dmplan bench mix", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
