"""Entry point of the frozen ``dmplan`` executable (PyInstaller bundle).

Two ways in:

* ``dmplan <command> ...``: the command line (``dmplan.addin.cli.main``), e.g. ``dmplan demo``.
* ``dmplan [-B] [-u] [-W ignore] -c "<code>" [args]``: behaves like ``python -c``. This is how
  xlwings' RunPython starts its interpreter (``Interpreter_Win``/``Interpreter_Mac`` in the
  add-in's config), so the bundle's executable can stand in for Python: the ribbon button's
  ``import dmplan; dmplan.main()`` then runs inside the bundle, with no Python installed.
"""

from __future__ import annotations

import multiprocessing
import sys

#: Interpreter switches xlwings passes (or a user might); those with a value take the next argument.
FLAGS = {"-B", "-u", "-E", "-s", "-S", "-I", "-O", "-OO", "-q", "-b", "-bb"}
FLAGS_WITH_VALUE = {"-W", "-X"}


def python_command(argv: list[str]) -> tuple[str, list[str]] | None:
    """``(code, sys.argv)`` when ``argv`` is a ``python -c`` call, else None."""
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "-c":
            if i + 1 >= len(argv):
                raise SystemExit("Argument expected for the -c option")
            return argv[i + 1], ["-c", *argv[i + 2 :]]
        if arg.startswith("-c") and len(arg) > 2:
            return arg[2:], ["-c", *argv[i + 1 :]]
        if arg in FLAGS or any(arg.startswith(f) and len(arg) > 2 for f in FLAGS_WITH_VALUE):
            i += 1
        elif arg in FLAGS_WITH_VALUE:
            i += 2
        else:
            return None
    return None


def run_python_command(code: str, argv: list[str]) -> None:
    sys.argv = argv
    namespace = {"__name__": "__main__", "__builtins__": __builtins__}
    exec(compile(code, "<string>", "exec"), namespace)


def main() -> None:
    multiprocessing.freeze_support()
    command = python_command(sys.argv[1:])
    if command is not None:
        run_python_command(*command)
        return
    from dmplan.addin.cli import main as cli_main

    result = cli_main()
    sys.exit(result if isinstance(result, int) else 0)


if __name__ == "__main__":
    main()
