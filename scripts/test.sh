#!/usr/bin/env bash
# Installs what is missing (test tools too), builds everything and runs every test: unit tests and
# the namespace lab with a real miniupnpd gateway (needs root). Exits non-zero on any failure.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
bash "$top/scripts/setup.sh" --test
bash "$top/scripts/build.sh"
cd "$top/build"
ctest --output-on-failure --parallel 2 --timeout 600
