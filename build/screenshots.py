"""Render each result sheet of a real ``dmplan demo`` run to ``docs/img/<sheet>.png`` with LibreOffice.

Usage: ``python build/screenshots.py`` (needs soffice and pdftoppm, as installed by build/setup_dev.sh).
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

import openpyxl

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dmplan.addin.cli import main  # noqa: E402
from tests.libreoffice import convert, pdf_to_png  # noqa: E402

SHEETS = ("DM Plan", "DM Budget", "DM Pareto", "Mix Plan", "Mix Budget", "Mix Pareto")


def render(out_dir: Path = ROOT / "docs" / "img") -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        book = work / "demo.xlsx"
        if main(["demo", "-o", str(book), "-q"]) != 0:
            raise SystemExit("dmplan demo failed")
        for sheet in SHEETS:
            wb = openpyxl.load_workbook(book)
            for name in wb.sheetnames:
                if name != sheet:
                    del wb[name]
            single = work / (sheet.replace(" ", "_").lower() + ".xlsx")
            wb.save(single)
            pdf = convert(single, "pdf", work / "pdf", work)
            pages = pdf_to_png(pdf, work / single.stem, resolution=90)
            target = out_dir / (single.stem + ".png")
            shutil.copy(pages[0], target)
            written.append(target)
    return written


if __name__ == "__main__":
    for path in render():
        print(path)
