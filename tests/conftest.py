"""Checks run on every test: each workbook DMPlan saves has no name equal to one of its functions."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.workbook_names import assert_no_function_names


@pytest.fixture(autouse=True)
def _written_workbooks_never_shadow_the_functions(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Issue 12: after every ``save_atomically`` (the one file writer of DMPlan: solve, demo, templates)
    the saved workbook is opened and checked with :func:`tests.workbook_names.assert_no_function_names`.

    Covers workbooks written in the test process; those written by a subprocess (the bundle, a CLI run
    through ``subprocess``) are not seen here.
    """
    from dmplan.addin import templates, workbook  # noqa: F401 - templates holds its own reference

    original = workbook.save_atomically

    def checked(wb: Any, target: Path, *args: Any, **kwargs: Any) -> Any:
        report = original(wb, target, *args, **kwargs)
        assert_no_function_names(Path(target))
        return report

    for module in list(sys.modules.values()):
        if (
            getattr(module, "__name__", "").startswith("dmplan")
            and getattr(module, "save_atomically", None) is original
        ):
            monkeypatch.setattr(module, "save_atomically", checked)
    yield
