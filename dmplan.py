"""Entry module named like the add-in file (dmplan.xlam): its VBA runs ``import dmplan; dmplan.main()``."""

from __future__ import annotations

from addin.udf import DMPARETO, DMPLAN, MIXPLAN  # the worksheet functions, for xlwings' "UDF Modules: dmplan"

__all__ = ["DMPARETO", "DMPLAN", "MIXPLAN", "main"]


def main() -> None:
    """Ribbon button: solve every model the active workbook holds and write the result sheets."""
    from addin.xl import main as xl_main

    xl_main()


if __name__ == "__main__":
    import sys

    from addin.cli import main as cli_main

    sys.exit(cli_main())
