#!/usr/bin/env bash
# The chaos test for 30 minutes (root; not part of the tests): the same faults as CI's 3-minute
# lab_chaos, with outages of 10-90 s. Usage: bench/soak.sh [SECONDS [SEED]]. Its closing figures
# go into the README.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
bash "$top/scripts/build.sh" --target natpilotd natpilot labtool >/dev/null
export NATPILOTD=$top/build/service/natpilotd NATPILOT=$top/build/clients/natpilot LABTOOL=$top/build/tests/labtool
exec bash "$top/tests/lab/test_chaos.sh" "${1:-1800}" ${2:+"$2"}
