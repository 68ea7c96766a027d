#!/usr/bin/env bash
# Configures and builds natpilot into build/ (ccache is used when present). Extra arguments are
# passed to cmake --build, e.g. --target natpilotd.
set -euo pipefail
cd "$(dirname "$0")/.."
# ccache hits across clones and worktrees (a fresh clone in CI, a second checkout): paths relative to
# the tree, and the build folder not hashed (debug info then names paths relative to it).
export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$PWD} CCACHE_NOHASHDIR=${CCACHE_NOHASHDIR:-1}
# Warnings are errors here as in CI (Debian 12's compiler); NATPILOT_WERROR=OFF relaxes it.
werror=${NATPILOT_WERROR:-ON}
# NATPILOT_TESTS=OFF builds without the tests (and their packages): run.sh and the container do.
tests=${NATPILOT_TESTS:-ON}
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DNATPILOT_WERROR="$werror" -DNATPILOT_TESTS="$tests" >/dev/null
cmake --build build --parallel "$(nproc)" "$@"
