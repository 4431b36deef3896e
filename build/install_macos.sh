#!/usr/bin/env bash
# Installs the DMPlan Excel add-in for the current macOS user (Excel 2016 or newer; no sudo).
#
# What it does, in the style of `xlwings addin install` + `xlwings runpython install`:
#   1. copies the DMPlan bundle (the folder holding the `dmplan` executable) to
#      ~/Library/Application Support/DMPlan, unless --python is given (then DMPlan runs on that
#      Python, which must have `pip install dmplan`);
#   2. copies xlwings' AppleScript into ~/Library/Application Scripts/com.microsoft.Excel: sandboxed
#      Excel can start programs only through it (RunPython on macOS);
#   3. copies dmplan.xlam into Excel's start-up folder, so Excel loads it and shows the DMPlan tab;
#   4. writes the add-in's config file (~/Library/Containers/com.microsoft.Excel/Data/myaddin.conf)
#      with INTERPRETER_MAC pointing at the executable and "UDF Modules" = dmplan ("myaddin" is the
#      add-in's VBA project name; xlwings runs worksheet functions only on Windows, the key is set so a
#      config shared with a Windows machine names the module),
#      and sets INTERPRETER_MAC in xlwings' own config there (xlwings.conf) only when it has none yet,
#      so the standalone dmplan_demo.xlsm runs too without changing existing xlwings projects.
#
# Usage (from the unpacked bundle folder; quit Excel first):
#   bash install_macos.sh                     # use the bundle
#   bash install_macos.sh --python /path/to/python3 [--solver highs] [--time-limit 60]
#   bash install_macos.sh --uninstall
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
INSTALL_DIR="$HOME/Library/Application Support/DMPlan"
EXCEL_DATA="$HOME/Library/Containers/com.microsoft.Excel/Data"
ADDIN_CONF="$EXCEL_DATA/myaddin.conf"
XLWINGS_CONF="$EXCEL_DATA/xlwings.conf"
SCRIPTS_DIR="$HOME/Library/Application Scripts/com.microsoft.Excel"
STARTUP_DIR="$HOME/Library/Group Containers/UBF8T346G9.Office/User Content.localized/Startup.localized/Excel"

PYTHON=""
SOLVER=""
TIME_LIMIT=""
UNINSTALL=0
while [ $# -gt 0 ]; do
    case "$1" in
        --python) PYTHON="$2"; shift 2 ;;
        --solver) SOLVER="$2"; shift 2 ;;
        --time-limit) TIME_LIMIT="$2"; shift 2 ;;
        --uninstall) UNINSTALL=1; shift ;;
        -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
        *) echo "unknown option: $1" >&2; exit 2 ;;
    esac
done

[ "$(uname -s)" = "Darwin" ] || { echo "This script is for macOS; on Windows use install_windows.ps1." >&2; exit 1; }
if pgrep -xq "Microsoft Excel"; then
    echo "Excel is running: quit it first, then run this script again." >&2
    exit 1
fi

# set_key FILE KEY VALUE: replace (case-insensitively) or add a "KEY","VALUE" line.
set_key() {
    local file="$1" key="$2" value="$3" tmp
    mkdir -p "$(dirname "$file")"
    touch "$file"
    tmp="$(mktemp)"
    awk -v key="$key" 'BEGIN { k = tolower(key) }
        { line = $0; if (match(line, /^"[^"]*"/)) { name = tolower(substr(line, 2, RLENGTH - 2)); if (name == k) next } print }' \
        "$file" > "$tmp"
    printf '"%s","%s"\n' "$key" "$value" >> "$tmp"
    mv "$tmp" "$file"
}

# remove_key FILE KEY
remove_key() {
    local file="$1" key="$2" tmp
    [ -f "$file" ] || return 0
    tmp="$(mktemp)"
    awk -v key="$key" 'BEGIN { k = tolower(key) }
        { line = $0; if (match(line, /^"[^"]*"/)) { name = tolower(substr(line, 2, RLENGTH - 2)); if (name == k) next } print }' \
        "$file" > "$tmp"
    mv "$tmp" "$file"
}

has_key() {
    [ -f "$1" ] && grep -qi "^\"$2\"" "$1"
}

if [ "$UNINSTALL" = 1 ]; then
    rm -f "$STARTUP_DIR/dmplan.xlam"
    rm -rf "$INSTALL_DIR"
    for key in INTERPRETER_MAC "UDF Modules" solver time_limit; do remove_key "$ADDIN_CONF" "$key"; done
    echo "DMPlan removed (xlwings.conf and the xlwings AppleScript were left as they are)."
    exit 0
fi

# ---------------------------------------------------------------- the add-in file
XLAM=""
for candidate in "$HERE/dmplan.xlam" "$HERE/../xlsm/dmplan.xlam"; do
    [ -f "$candidate" ] && { XLAM="$candidate"; break; }
done
[ -n "$XLAM" ] || { echo "dmplan.xlam not found next to this script (run it from the DMPlan bundle folder)." >&2; exit 1; }

# ---------------------------------------------------------------- the interpreter and the AppleScript
APPLESCRIPT=""
if [ -n "$PYTHON" ]; then
    "$PYTHON" -c "import dmplan, dmplan.addin.xl" || { echo "$PYTHON cannot import DMPlan: run '$PYTHON -m pip install dmplan' first." >&2; exit 1; }
    INTERPRETER="$(cd "$(dirname "$PYTHON")" && pwd)/$(basename "$PYTHON")"
    APPLESCRIPT="$("$PYTHON" -c 'import pathlib, xlwings; print(next(pathlib.Path(xlwings.__file__).parent.glob("xlwings-*.applescript")))')"
else
    [ -x "$HERE/dmplan" ] || { echo "dmplan executable not found next to this script. Use the bundle, or pass --python." >&2; exit 1; }
    if [ "$HERE" != "$INSTALL_DIR" ]; then
        echo "Copying the DMPlan bundle to $INSTALL_DIR ..."
        rm -rf "$INSTALL_DIR"
        mkdir -p "$INSTALL_DIR"
        cp -R "$HERE/." "$INSTALL_DIR/"
    fi
    # The bundle is not notarised: clear the download quarantine so macOS lets Excel start it.
    xattr -dr com.apple.quarantine "$INSTALL_DIR" 2>/dev/null || true
    INTERPRETER="$INSTALL_DIR/dmplan"
    # The bundle's executable answers -c like python: check it before registering it.
    "$INTERPRETER" -c "import dmplan, dmplan.addin.xl" || { echo "$INTERPRETER does not start; is the bundle complete?" >&2; exit 1; }
    APPLESCRIPT="$(ls "$INSTALL_DIR"/_internal/xlwings/xlwings-*.applescript 2>/dev/null | head -n 1 || true)"
fi
[ -n "$APPLESCRIPT" ] && [ -f "$APPLESCRIPT" ] || { echo "xlwings' AppleScript not found." >&2; exit 1; }

# ---------------------------------------------------------------- register
mkdir -p "$SCRIPTS_DIR" "$STARTUP_DIR"
cp "$APPLESCRIPT" "$SCRIPTS_DIR/"
cp "$XLAM" "$STARTUP_DIR/dmplan.xlam"
xattr -d com.apple.quarantine "$STARTUP_DIR/dmplan.xlam" 2>/dev/null || true

set_key "$ADDIN_CONF" INTERPRETER_MAC "$INTERPRETER"
set_key "$ADDIN_CONF" "UDF Modules" dmplan
[ -n "$SOLVER" ] && set_key "$ADDIN_CONF" solver "$SOLVER"
[ -n "$TIME_LIMIT" ] && set_key "$ADDIN_CONF" time_limit "$TIME_LIMIT"
if has_key "$XLWINGS_CONF" INTERPRETER_MAC; then
    echo "Left $XLWINGS_CONF as it is (it already sets INTERPRETER_MAC)."
else
    set_key "$XLWINGS_CONF" INTERPRETER_MAC "$INTERPRETER"
    echo "Set INTERPRETER_MAC in $XLWINGS_CONF (for the standalone demo workbook)."
fi

echo
echo "DMPlan is installed:"
echo "  add-in       $STARTUP_DIR/dmplan.xlam"
echo "  interpreter  $INTERPRETER"
echo "  config       $ADDIN_CONF"
echo "  AppleScript  $SCRIPTS_DIR/$(basename "$APPLESCRIPT")"
echo "Start Excel: the ribbon has a DMPlan tab. Allow macros when Excel asks about dmplan.xlam."
echo "Worksheet functions (=DMPLAN ...) do not run in Excel for macOS: click DMPlan > Evaluate formulas"
echo "to compute a workbook's DMPlan formulas and write their values."
