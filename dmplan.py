"""Entry module named like the add-in file (dmplan.xlam): its VBA runs ``import dmplan; dmplan.main()``."""

from __future__ import annotations


def main() -> None:
    """Ribbon button: solve every model the active workbook holds and write the result sheets."""
    from addin.xl import main as xl_main

    xl_main()


def cli() -> None:
    from addin.cli import main as cli_main

    cli_main()
