#!/usr/bin/env bash
# Builds natpilot with AddressSanitizer and UndefinedBehaviorSanitizer (build-asan/) and runs the
# whole test suite with it: unit tests, fuzz replays and the namespace lab (which needs root).
# Not part of the README's test command (it doubles the build); run before a release. Warnings are
# not errors here: GCC 12 with ASan reports false maybe-uninitialized in libstdc++'s <regex>.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
bash "$top/scripts/setup.sh" --test
build=$top/build-asan
cmake -S "$top" -B "$build" -DNATPILOT_SANITIZE=ON -DNATPILOT_WERROR=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j"$(nproc)"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
cd "$build" && ctest --output-on-failure --parallel "${NATPILOT_TEST_JOBS:-2}" "$@"
