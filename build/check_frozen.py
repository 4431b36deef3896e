"""Check that a built bundle's executable stands in for Python where Excel calls it.

``python build/check_frozen.py build/out/dmplan/dmplan[.exe]`` runs, with the bundle's executable
and with this Python, the command xlwings' VBA (0.37.8, ``XLPyCommand``) starts the worksheet-function
server with, up to the ``xlwings.serve(...)`` call itself (which waits for Excel's COM calls):

    <interpreter> -B -c "import sys, os;import xlwings.utils;xlwings.utils.prepare_sys_path(\"...\");
                         import xlwings; xlwings.serve('<clsid>')"

Both must print the same and exit 0. On Windows it also checks what ``xlwings.serve`` needs there
(xlwings.com_server with pywin32's pythoncom/pywintypes/win32com.server) and that xlwings' DLLs sit
beside the executable, where the add-in's VBA loads them. Exit code 0 when everything holds; the
problems are printed otherwise. The release workflow and tests/test_build_bundle.py run it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

#: The function server's start-up as xlwings' VBA writes it, with a print where serve() would block.
SERVER_CODE = (
    'import sys, os;import xlwings.utils;xlwings.utils.prepare_sys_path("true;{book};{addin};;;;");'
    "import xlwings; import dmplan; print('server', callable(xlwings.serve), callable(dmplan.DMPLAN)); "
    "print('argv', sys.argv[1:], 'sum', sum(range(10)))"
)
#: Windows only: the modules xlwings.serve imports (pywin32's COM server) load in the bundle.
WINDOWS_CODE = (
    "import xlwings.com_server, pythoncom, pywintypes, win32com.server.policy; "
    "print('com server', callable(xlwings.com_server.serve))"
)


def _run(args: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "XLWINGS_LICENSE"))}
    return subprocess.run(args, capture_output=True, text=True, timeout=300, env=env, cwd=cwd, stdin=subprocess.DEVNULL)


def problems(exe: Path, python: str = sys.executable) -> list[str]:
    """What is wrong with ``exe`` as xlwings' interpreter (empty when nothing is)."""
    found = []
    with tempfile.TemporaryDirectory() as tmp:
        code = SERVER_CODE.format(book=Path(tmp) / "plan march.xlsx", addin=Path(tmp) / "dmplan (1).xlam")
        code = code.replace("\\", "\\\\")  # Windows paths inside a Python string literal
        frozen = _run([str(exe), "-B", "-c", code, "x", "--y=1"], cwd=Path(tmp))
        reference = _run([python, "-B", "-c", code, "x", "--y=1"], cwd=Path(tmp))
    if frozen.returncode != 0:
        found.append(f"{exe.name} -B -c exited {frozen.returncode}: {frozen.stderr[-2000:]}")
    elif reference.returncode == 0 and frozen.stdout != reference.stdout:
        found.append(f"{exe.name} -B -c printed {frozen.stdout!r}, python printed {reference.stdout!r}")
    elif "server True True" not in frozen.stdout or "argv ['x', '--y=1'] sum 45" not in frozen.stdout:
        found.append(f"{exe.name} -B -c printed {frozen.stdout!r}")
    broken = _run([str(exe), "-B", "-c", "import no_such_module_dmplan"])
    if broken.returncode != 1 or "ModuleNotFoundError" not in broken.stderr:
        found.append(f"an error in -c code must exit 1 with its traceback (got {broken.returncode}: {broken.stderr!r})")
    if sys.platform == "win32":
        com = _run([str(exe), "-B", "-c", WINDOWS_CODE])
        if com.returncode != 0 or "com server True" not in com.stdout:
            found.append(f"xlwings' COM server does not load in the bundle: {com.stderr[-2000:]}")
        import xlwings

        for name in (f"xlwings64-{xlwings.__version__}.dll", f"xlwings32-{xlwings.__version__}.dll"):
            if not (exe.parent / name).is_file():
                found.append(f"{name} is not beside {exe.name}: the add-in's functions cannot load it")
    return found


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print(__doc__.split("\n\n")[0], file=sys.stderr)
        print("usage: python build/check_frozen.py PATH/TO/dmplan[.exe]", file=sys.stderr)
        return 2
    found = problems(Path(args[0]))
    for problem in found:
        print("problem:", problem, file=sys.stderr)
    if not found:
        print(f"{args[0]} answers -B -c like python, as xlwings' function server needs")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
