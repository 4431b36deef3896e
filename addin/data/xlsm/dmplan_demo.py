"""Module named like the demo workbook: ``dmplan_demo.xlsm``'s button runs ``import dmplan_demo; dmplan_demo.main()``.

xlwings puts the workbook's folder on ``sys.path`` (``ADD_WORKBOOK_TO_PYTHONPATH``), so this file must
stay beside the workbook; it only hands over to the add-in's entry point.
"""

from __future__ import annotations


def main() -> None:
    from dmplan import main as dmplan_main

    dmplan_main()
