#!/usr/bin/env bash
# Runs every libFuzzer target (clang, AddressSanitizer and UBSan) for SECONDS each (default 60),
# starting from its seed corpus; a crash leaves its input in build-fuzz/crashes. Not part of the
# tests, which replay each corpus with bounded mutations instead (fuzz_*_replay in ctest).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
seconds=${1:-60}
bash "$top/scripts/setup.sh"
if ! command -v clang++ >/dev/null; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get install -y -q clang libclang-rt-14-dev
fi
build=$top/build-fuzz
CC=clang CXX=clang++ cmake -S "$top" -B "$build" -DNATPILOT_FUZZ=ON -DNATPILOT_TESTS=OFF \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
targets=(pcp_decode:pcp natpmp_reply:natpmp upnp_xml:upnp config:config stun_decode:stun)
cmake --build "$build" -j"$(nproc)" --target "${targets[@]/:*/_fuzz}"
mkdir -p "$build/crashes"
for t in "${targets[@]}"; do
  name=${t%%:*} corpus=${t##*:}
  work=$(mktemp -d)
  cp "$top/tests/fuzz/corpus/$corpus/"* "$work/"
  echo "== $name: $seconds s"
  "$build/tests/fuzz/${name}_fuzz" -max_total_time="$seconds" -max_len=4096 -timeout=10 \
    -artifact_prefix="$build/crashes/$name-" "$work" >"$build/$name.log" 2>&1 || true
  grep -E "Done [0-9]+ runs|ERROR|SUMMARY|No such file" "$build/$name.log" || { tail -5 "$build/$name.log"; exit 1; }
  rm -rf "$work"
done
if compgen -G "$build/crashes/*" >/dev/null; then
  echo "fuzz: crashes found:"; ls "$build/crashes"; exit 1
fi
echo "fuzz: no crash in ${#targets[@]} targets x $seconds s"
