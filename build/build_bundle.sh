#!/usr/bin/env bash
# Builds the one-folder bundle build/out/dmplan/ (executable `dmplan`, templates, add-in) with
# PyInstaller, then smoke-tests it. Usage: bash build/build_bundle.sh [--no-smoke]
# Build on the target OS: a Windows bundle must be built on Windows, a macOS one on macOS.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
start=$(date +%s)
"$PYTHON" build/build_addin.py >/dev/null           # the add-in the bundle carries
"$PYTHON" -m PyInstaller --noconfirm --clean --log-level WARN \
    --distpath build/out --workpath build/work build/dmplan.spec
bundle=build/out/dmplan
# what a user handles sits at the top of the bundle: the add-in, templates, install scripts
cp xlsm/dmplan.xlam xlsm/dmplan_demo.xlsm "$bundle/"
rm -rf "$bundle/templates"; mkdir -p "$bundle/templates"; cp templates/*.xls? "$bundle/templates/"
for f in build/install_windows.ps1 build/install_macos.sh README.md; do [ -f "$f" ] && cp "$f" "$bundle/"; done
end=$(date +%s)
exe="$bundle/dmplan"
[ -x "$exe" ] || exe="$bundle/dmplan.exe"
size=$(du -sm "$bundle" | cut -f1)
echo "bundle: $bundle (${size} MB, built in $((end - start)) s)"
if [ "${1:-}" != "--no-smoke" ]; then
    # the interface xlwings' RunPython uses: the executable as interpreter with -c
    "$exe" -B -c "import dmplan, dmplan.addin.xl, highspy, openpyxl; print('frozen python ok')"
    # the interface of xlwings' function server (Windows): python's -B -c, and xlwings importable
    "$exe" -B -c "import sys, os; import xlwings, dmplan; print('function server imports ok', xlwings.__version__)"
fi
