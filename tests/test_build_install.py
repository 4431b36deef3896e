"""The user install scripts: they cannot run here (no Windows, macOS or Excel), so check what can be.

Syntax, the places they write to agree with what the add-in's VBA and addin.xl read, and the
config-file editing of the macOS script (plain bash + awk) run for real.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

from dmplan.addin import xl

ROOT = Path(__file__).resolve().parent.parent
MAC = ROOT / "build" / "install_macos.sh"
WIN = ROOT / "build" / "install_windows.ps1"


def _build_addin():
    spec = importlib.util.spec_from_file_location("build_addin", ROOT / "build" / "build_addin.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("build_addin", module)
    spec.loader.exec_module(module)
    return module


def test_config_names_agree_with_the_addin_vba() -> None:
    project = _build_addin().VBA_PROJECT_NAME  # PROJECT_NAME in the template's VBA
    assert f"{project}.conf" == xl.CONFIG_FILE
    assert xl.CONFIG_SHEETS[0] == f"{project}.conf"
    assert f"\\.{project}\\{project}.conf" in WIN.read_text()
    assert f"com.microsoft.Excel/Data/{project}.conf" in MAC.read_text()


def test_scripts_register_the_addin_like_xlwings() -> None:
    win, mac = WIN.read_text(), MAC.read_text()
    assert r"Microsoft\Excel\XLSTART" in win and '"INTERPRETER_WIN"' in win and "dmplan.xlam" in win
    assert "Startup.localized/Excel" in mac and "INTERPRETER_MAC" in mac and "dmplan.xlam" in mac
    assert "Application Scripts/com.microsoft.Excel" in mac and "applescript" in mac
    for text in (win, mac):
        assert "xlwings.conf" in text  # the standalone demo's interpreter, only when unset


def test_scripts_set_udf_modules_to_the_module_the_vba_imports() -> None:
    """Import functions takes the module from "UDF Modules"; both scripts write and remove it."""
    module = _build_addin().PYTHON_MODULE
    win, mac = WIN.read_text(), MAC.read_text()
    assert f'Set-Key $conf "UDF Modules" "{module}"' in win
    assert '"UDF Modules"' in re.search(r"foreach \(\$key in @\(([^)]*)\)\)", win).group(1)  # -Uninstall
    assert f'set_key "$ADDIN_CONF" "UDF Modules" {module}' in mac
    assert '"UDF Modules"' in re.search(r"for key in ([^;]*); do remove_key", mac).group(1)  # --uninstall


def test_macos_script_syntax() -> None:
    subprocess.run(["bash", "-n", str(MAC)], check=True)


def test_macos_script_refuses_other_systems() -> None:
    if sys.platform == "darwin":
        return
    proc = subprocess.run(["bash", str(MAC)], capture_output=True, text=True)
    assert proc.returncode == 1 and "for macOS" in proc.stderr


def test_macos_config_editing_is_read_back_by_the_addin(tmp_path: Path) -> None:
    source = MAC.read_text()
    functions = "\n".join(re.findall(r"^(?:set_key|remove_key|has_key)\(\) \{.*?^\}", source, re.S | re.M))
    conf = tmp_path / "myaddin.conf"
    conf.write_text('"Interpreter_Mac","/old/python"\n"LICENSE_KEY","keep-me"\n')
    script = (
        f"set -euo pipefail\n{functions}\n"
        f'set_key "{conf}" INTERPRETER_MAC "/Users/a b/Library/Application Support/DMPlan/dmplan"\n'
        f'set_key "{conf}" time_limit 45\n'
        f'set_key "{conf}" solver highs\n'
        f'set_key "{conf}" "UDF Modules" dmplan\n'
        f'remove_key "{conf}" solver\n'
        f'has_key "{conf}" time_limit && echo has-time-limit\n'
    )
    proc = subprocess.run(["bash", "-c", script], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "has-time-limit" in proc.stdout
    config = xl.read_config_file(conf)
    assert config == {
        "license_key": "keep-me",
        "interpreter_mac": "/Users/a b/Library/Application Support/DMPlan/dmplan",
        "time_limit": "45",
        "udf_modules": "dmplan",
    }
