"""SCIP (pyscipopt) is the benchmarks' reference, an extra (dmplan[bench]): DMPlan works without it."""

from __future__ import annotations

import sys

import pytest

from dmplan.solver.mix import MixProblem, available_solvers, solve
from dmplan.solver.mix.backends import BackendUnavailable, load_backend
from dmplan.solver.mix.generator import InstanceSpec, paper_instance


@pytest.fixture
def without_scip(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pyscipopt", None)  # `import pyscipopt` now raises ImportError


def test_asking_for_scip_without_it_says_how_to_get_it(without_scip: None) -> None:
    with pytest.raises(BackendUnavailable, match=r"pip install 'dmplan\[bench\]'"):
        load_backend("scip")
    assert "scip" not in available_solvers() and "oa" in available_solvers()


def test_the_default_solver_needs_no_scip(without_scip: None) -> None:
    problem: MixProblem = paper_instance(InstanceSpec(20, "weak", 0.10, 0.5, 3))
    result = solve(problem, gap=1e-6)
    assert result.status.has_plan and result.gap <= 1e-6


def test_scip_is_an_extra_not_a_dependency() -> None:
    import tomllib
    from pathlib import Path

    project = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())["project"]
    assert not [d for d in project["dependencies"] if d.lower().startswith("pyscipopt")]
    assert any(d.startswith("pyscipopt") for d in project["optional-dependencies"]["bench"])
    assert "dmplan[bench]" in project["optional-dependencies"]["dev"]
