"""DMPlan's entry module: the add-in's VBA runs ``import dmplan; dmplan.main()``.

The distribution installs the repository's ``addin/`` and ``solver/`` folders as ``dmplan.addin`` and
``dmplan.solver``, so no generic top-level package lands in a user's site-packages. In a source
checkout those folders sit beside this package; ``__path__`` then includes the checkout's root so the
same imports work without installing.

The worksheet functions are looked up lazily (``dmplan.DMPLAN`` ...), so a button click or the
function server pays only for what it uses.
"""

from __future__ import annotations

import os
from typing import Any

_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if not os.path.isdir(os.path.join(os.path.dirname(os.path.abspath(__file__)), "addin")) and os.path.isdir(
    os.path.join(_root, "addin")
):
    __path__.append(_root)  # source checkout: dmplan.addin is <root>/addin

__all__ = ["DMPARETO", "DMPLAN", "MIXPLAN", "evaluate_formulas", "import_robyn", "main"]
_UDFS = ("DMPARETO", "DMPLAN", "MIXPLAN")


def __getattr__(name: str) -> Any:
    """The worksheet functions, for xlwings' "UDF Modules: dmplan", imported on first use."""
    if name in _UDFS:
        from dmplan.addin import udf

        return getattr(udf, name)
    raise AttributeError(f"module 'dmplan' has no attribute {name!r}")


def __dir__() -> list[str]:
    """xlwings finds worksheet functions through ``dir(module)``: list the lazy ones too."""
    return sorted({*globals(), *_UDFS})


def main() -> None:
    """Ribbon button: solve every model the active workbook holds and write the result sheets."""
    from dmplan.addin.xl import main as xl_main

    xl_main()


def evaluate_formulas() -> None:
    """Ribbon button Evaluate formulas (Excel for macOS, where worksheet functions do not run): compute
    the active workbook's DMPLAN / DMPARETO / MIXPLAN formulas with the functions' code, write the values."""
    from dmplan.addin.xl import evaluate_formulas as xl_evaluate_formulas

    xl_evaluate_formulas()


def import_robyn() -> None:
    """Ribbon button **Import Robyn curves**: the folder and model chosen in Excel become the Curves sheet."""
    from dmplan.addin.xl import import_robyn as xl_import_robyn

    xl_import_robyn()
