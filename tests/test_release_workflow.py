"""The release workflow (.github/workflows/release.yml) cannot run here (no GitHub runners, no Windows
or macOS): parse it, and check that what its steps call exists in the repository and fits together."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
WORKFLOW = ROOT / ".github" / "workflows" / "release.yml"
#: Programs the steps may call besides the repository's own scripts (on the runners' images).
SYSTEM_COMMANDS = {"python", "bash", "mkdir", "cd", "test", "gh", "ditto", "Compress-Archive", "PYTHON=python"}
REPO_PATH = re.compile(r"(?<![\w./-])((?:build|tests|bench|addin|solver|xlsm|templates|dmplan)/[\w./-]+)")


def _workflow() -> dict[str, Any]:
    doc = yaml.safe_load(WORKFLOW.read_text())
    assert isinstance(doc, dict)
    return doc


def _steps(doc: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(job, step) for job, spec in doc["jobs"].items() for step in spec["steps"]]


def _matrix(doc: dict[str, Any]) -> list[dict[str, str]]:
    return doc["jobs"]["bundle"]["strategy"]["matrix"]["include"]


def _expand(text: str, row: dict[str, str]) -> str:
    return re.sub(r"\$\{\{\s*matrix\.(\w+)\s*\}\}", lambda m: row[m.group(1)], text)


def test_workflow_builds_on_windows_and_macos_and_attaches_both_zips() -> None:
    doc = _workflow()
    triggers = doc.get("on", doc.get(True))  # YAML 1.1 reads the key `on` as true
    assert "tags" in triggers["push"]
    rows = _matrix(doc)
    assert {r["os"] for r in rows} == {"windows-latest", "macos-latest"}
    assert {r["os"]: r["asset"] for r in rows} == {
        "windows-latest": "dmplan-windows.zip",
        "macos-latest": "dmplan-macos.zip",
    }
    assert doc["jobs"]["bundle"]["runs-on"] == "${{ matrix.os }}"
    upload = " ".join(step.get("run", "") for job, step in _steps(doc) if job == "release")
    assert "gh release upload" in upload and "dmplan-windows.zip" in upload and "dmplan-macos.zip" in upload
    assert doc["jobs"]["release"]["needs"] == "bundle"
    assert doc["permissions"]["contents"] == "write"


def test_every_step_is_an_action_or_a_command_that_exists() -> None:
    doc = _workflow()
    for job, step in _steps(doc):
        assert ("uses" in step) != ("run" in step), (job, step)
        if "uses" in step:
            assert re.fullmatch(r"actions/[\w-]+@v\d+", step["uses"]), step["uses"]
            continue
        for row in _matrix(doc) if job == "bundle" else [{}]:
            script = _expand(step["run"], row)
            for line in script.replace("\\\n", " ").splitlines():
                line = line.strip()
                if not line:
                    continue
                words = shlex.split(line, posix=True)
                program = words[0]
                assert program in SYSTEM_COMMANDS or program.startswith(("../build/out/", "build/out/")), (job, line)
                for path in REPO_PATH.findall(line):
                    if path.startswith("build/out/"):  # made by build_bundle.sh, checked below
                        continue
                    assert (ROOT / path).exists(), f"{job}: {line!r} names {path}, which is not in the repository"


def test_the_checks_the_issue_asks_for_are_steps() -> None:
    runs = [step.get("run", "") for _, step in _steps(_workflow())]
    assert any("bash build/build_bundle.sh" in r for r in runs)
    assert any('"../${{ matrix.exe }}" demo' in r for r in runs)  # the frozen demo
    assert any("python build/check_frozen.py" in r for r in runs)  # -B -c like python


def test_matrix_executables_are_what_the_bundle_build_writes() -> None:
    script = (ROOT / "build" / "build_bundle.sh").read_text()
    bundle = re.search(r"^bundle=(\S+)", script, re.M)
    assert bundle
    for row in _matrix(_workflow()):
        name = "dmplan.exe" if row["os"].startswith("windows") else "dmplan"
        assert row["exe"] == f"{bundle.group(1)}/{name}"


def test_the_frozen_check_script_runs() -> None:
    proc = subprocess.run([sys.executable, str(ROOT / "build" / "check_frozen.py")], capture_output=True, text=True)
    assert proc.returncode == 2 and "usage" in proc.stderr
