"""LibreOffice headless for tests: a private profile that always recalculates OOXML formulas."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

RECALC_PROFILE = """<?xml version="1.0" encoding="UTF-8"?>
<oor:items xmlns:oor="http://openoffice.org/2001/registry" xmlns:xs="http://www.w3.org/2001/XMLSchema"
 xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
<item oor:path="/org.openoffice.Office.Calc/Formula/Load">
 <prop oor:name="OOXMLRecalcMode" oor:op="fuse"><value>0</value></prop></item>
<item oor:path="/org.openoffice.Office.Calc/Formula/Load">
 <prop oor:name="ODFRecalcMode" oor:op="fuse"><value>0</value></prop></item>
</oor:items>
"""


def available() -> bool:
    return shutil.which("soffice") is not None


def profile(folder: Path) -> Path:
    """A fresh LibreOffice user profile in ``folder`` set to recalculate on load."""
    user = folder / "user"
    user.mkdir(parents=True, exist_ok=True)
    (user / "registrymodifications.xcu").write_text(RECALC_PROFILE)
    return folder


def convert(source: Path, fmt: str, outdir: Path, work: Path, timeout: float = 180) -> Path:
    """Convert ``source`` with LibreOffice headless (e.g. ``pdf``, ``xlsx``); returns the output file."""
    outdir.mkdir(parents=True, exist_ok=True)
    prof = profile(work / "lo-profile")
    cmd = [
        "soffice",
        f"-env:UserInstallation=file://{prof}",
        "--headless",
        "--norestore",
        "--convert-to",
        fmt,
        "--outdir",
        str(outdir),
        str(source),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    out = outdir / (source.stem + "." + fmt.split(":")[0])
    if done.returncode != 0 or not out.exists():
        raise RuntimeError(f"LibreOffice failed ({done.returncode}): {done.stdout} {done.stderr}")
    return out


def pdf_to_png(pdf: Path, outdir: Path, resolution: int = 60) -> list[Path]:
    outdir.mkdir(parents=True, exist_ok=True)
    subprocess.run(["pdftoppm", "-png", "-r", str(resolution), str(pdf), str(outdir / "page")], check=True, timeout=180)
    return sorted(outdir.glob("page*.png"))
