#!/usr/bin/env bash
# Static rules at scale (issue 4's benchmark): generation time, and the time and peak memory of
# `nft -c -f` and of a real apply for natpilot's grouped file versus a one-rule-per-port file of
# the same 61,000 forwards. Runs in a scratch network namespace (root). Not part of the tests.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
bash "$top/scripts/build.sh" --target rules_bench >/dev/null
out=$(mktemp -d)
ns=npbench$$
trap 'ip netns del "$ns" 2>/dev/null || true; rm -rf "$out"' EXIT
ip netns add "$ns"
"$top/build/bench/rules_bench" "$out"
measure() {  # label command...: prints seconds and peak resident memory
  local label=$1 log="$out/time.log"
  shift
  if ! /usr/bin/time -o "$log" -f '%e %M' ip netns exec "$ns" "$@" >"$out/cmd.log" 2>&1; then
    cat "$out/cmd.log" >&2
    echo "failed: $*" >&2
    return 1
  fi
  awk -v l="$label" '{ printf "%-24s %6.2f s  %7.1f MB\n", l, $1, $2 / 1024 }' "$log"
}
for f in grouped per-port; do
  printf '%-24s %s rules\n' "$f rules" "$(sed '/^#/d' "$out/$f.nft" | grep -c -E 'dnat to|ct status dnat accept')"
  measure "nft -c $f" nft -c -f "$out/$f.nft"
  measure "nft apply $f" nft -f "$out/$f.nft"
  ip netns exec "$ns" nft delete table ip natpilot
done
