#!/usr/bin/env bash
# Sets up a fresh Debian machine for DMPlan's tests: LibreOffice (headless Calc) and poppler
# for rendering written workbooks, then the package with its development extras.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v soffice >/dev/null 2>&1 || ! command -v pdftoppm >/dev/null 2>&1; then
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
        libreoffice-calc-nogui poppler-utils fonts-dejavu-core >/dev/null
fi
python3 -m pip install -q --upgrade pip >/dev/null
python3 -m pip install -q -e '.[dev]'
