#!/usr/bin/env bash
# Configures and builds natpilot into build/ (ccache is used when present). Extra arguments are
# passed to cmake --build, e.g. --target natpilotd.
set -euo pipefail
cd "$(dirname "$0")/.."
werror=OFF
if [ "${CI:-}" = true ]; then werror=ON; fi
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DNATPILOT_WERROR="$werror" >/dev/null
cmake --build build --parallel "$(nproc)" "$@"
