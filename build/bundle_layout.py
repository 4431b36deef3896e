"""What the PyInstaller bundle needs beyond DMPlan's own code, per platform (used by build/dmplan.spec).

Worksheet functions on Windows: the add-in's VBA loads ``xlwings64-<version>.dll`` (64-bit Excel) or
``xlwings32-<version>.dll`` from the folder of its interpreter (``Interpreter_Win``, the bundle's
``dmplan.exe``), and that DLL starts the function server as
``dmplan.exe -B -c "...;import xlwings; xlwings.serve('<clsid>')"``. So on Windows the bundle must
hold both DLLs beside the executable (not in ``_internal``) and the modules ``xlwings.com_server``
imports: pywin32's ``pythoncom``, ``pywintypes``, ``win32api``, ``win32event`` and ``win32com.server``.
xlwings' wheel installs the DLLs as data files into the environment's root (``sys.prefix``, beside
python.exe; in a virtual environment its root, the parent of ``Scripts``).
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterable
from pathlib import Path

#: Imported by ``xlwings.serve`` (xlwings/com_server.py, udfs.py, _xlwindows.py) on Windows, partly
#: inside functions, so PyInstaller's analysis misses them.
WINDOWS_HIDDEN_IMPORTS = [
    "xlwings.com_server",
    "xlwings.udfs",
    "xlwings._xlwindows",
    "xlwings._win32patch",
    "pythoncom",
    "pywintypes",
    "win32api",
    "win32con",
    "win32event",
    "win32gui",
    "win32process",
    "win32timezone",
    "win32com",
    "win32com.client",
    "win32com.server",
    "win32com.server.dispatcher",
    "win32com.server.policy",
    "win32com.server.util",
]

#: Never in the bundle: SCIP is the benchmarks' reference (``dmplan[bench]``), not something users run.
EXCLUDED = ["pyscipopt"]


def xlwings_dll_names(version: str) -> list[str]:
    return [f"xlwings64-{version}.dll", f"xlwings32-{version}.dll"]


def xlwings_dlls(version: str, platform: str = sys.platform, search: Iterable[Path] | None = None) -> list[Path]:
    """The xlwings DLLs of ``version`` to put beside the executable: both on Windows, none elsewhere.

    ``search`` is where to look, in order (default: the environment's roots and the xlwings package).
    Raises FileNotFoundError on Windows when a DLL is missing: a bundle without it cannot run functions.
    """
    if platform != "win32":
        return []
    if search is None:
        import xlwings

        package = Path(xlwings.__file__).resolve().parent
        search = [Path(sys.prefix), Path(sys.base_prefix), Path(sys.executable).parent, package.parent, package]
    folders = list(dict.fromkeys(Path(s) for s in search))
    found = []
    for name in xlwings_dll_names(version):
        path = next((folder / name for folder in folders if (folder / name).is_file()), None)
        if path is None:
            raise FileNotFoundError(
                f"{name} is in none of {', '.join(map(str, folders))}: install xlwings {version} from its "
                f"Windows wheel (pip install xlwings=={version}) before building the bundle"
            )
        found.append(path)
    return found


def place_beside_executable(dlls: Iterable[Path], bundle: Path) -> list[Path]:
    """Copy ``dlls`` into the bundle's top folder, where the executable is; returns the copies."""
    placed = []
    for dll in dlls:
        target = bundle / dll.name
        shutil.copy2(dll, target)
        placed.append(target)
    return placed


def hidden_imports(platform: str = sys.platform) -> list[str]:
    return list(WINDOWS_HIDDEN_IMPORTS) if platform == "win32" else []
