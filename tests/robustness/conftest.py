"""Fixtures of the robustness tests: the templates as ``dmplan template`` writes them, made once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.robustness import books


@pytest.fixture(scope="session")
def template_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("templates")


@pytest.fixture(scope="session")
def coupon_template(template_dir: Path) -> Path:
    return books.template("coupon", template_dir)


@pytest.fixture(scope="session")
def mix_template(template_dir: Path) -> Path:
    return books.template("mix", template_dir)
