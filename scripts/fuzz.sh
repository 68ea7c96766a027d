#!/usr/bin/env bash
# Runs the libFuzzer targets with clang (AddressSanitizer and UBSan) for SECONDS each (default 60).
# Not part of the tests; the tests replay the corpus with bounded mutations instead.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
seconds=${1:-60}
command -v clang++ >/dev/null || sudo apt-get install -y clang libclang-rt-14-dev
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
clang++ -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -I"$top/service" \
  "$top/tests/fuzz/pcp_decode_fuzz.cc" "$top/service/portmap/pcp_codec.cc" "$top/service/core/error.cc" \
  -o "$out/pcp_decode_fuzz"
mkdir -p "$out/corpus" && cp "$top/tests/fuzz/corpus/pcp/"* "$out/corpus/"
"$out/pcp_decode_fuzz" -max_total_time="$seconds" -max_len=1200 "$out/corpus"
