#!/usr/bin/env bash
# The golden rule files are valid for the real tools: nft -c accepts every nftables file,
# iptables-restore --test every iptables file; and because this machine's iptables (nf_tables
# variant) only parses in --test, each iptables file is also applied for real in a scratch
# namespace, twice, and removed with its header's own commands, leaving no trace.
set -euo pipefail
[ "$(id -u)" -eq 0 ] || { echo "needs root (network namespaces)"; exit 77; }
DATA=$(cd "$(dirname "$0")/../data/rules" && pwd)
NS=np$$-rules
fail() { echo "FAIL: $*" >&2; exit 1; }
trap 'ip netns del "$NS" 2>/dev/null || true' EXIT
ip netns add "$NS"
in_ns() { local ns=$1; shift; ip netns exec "$ns" "$@"; }
header_cmds() { sed -n "s/^# $1: *//p" "$2" | sed "s|FILE|$2|g"; }
run_header() {
  local cmd
  while IFS= read -r cmd; do in_ns "$NS" sh -c "$cmd" || fail "'$cmd' failed"; done < <(header_cmds "$1" "$2")
}

for f in "$DATA"/*.nft; do
  in_ns "$NS" nft -c -f "$f" || fail "nft -c rejects $f"
  before=$(in_ns "$NS" nft list ruleset)
  run_header apply "$f"
  run_header apply "$f"   # replacing the table again must work too
  [ "$(in_ns "$NS" nft list table ip natpilot | grep -c 'dnat to')" -eq "$(grep -c 'dnat to' "$f")" ] ||
    fail "$f: applying twice changed the number of rules"
  run_header remove "$f"
  [ "$(in_ns "$NS" nft list ruleset)" = "$before" ] || fail "$f: removal left a trace"
  echo "ok: $(basename "$f"): nft -c, applied twice, removed without a trace"
done

# A router's own iptables rules, which applying and removing ours must leave exactly as they were.
in_ns "$NS" iptables-restore <<'RULES'
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A POSTROUTING -o wan0 -j MASQUERADE
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A FORWARD -i br0 -o wan0 -j ACCEPT
COMMIT
RULES
for f in "$DATA"/*.iptables; do
  in_ns "$NS" iptables-restore --test --noflush "$f" || fail "iptables-restore --test rejects $f"
  before=$(in_ns "$NS" iptables-save | sed '/^#/d')
  run_header apply "$f"
  once=$(in_ns "$NS" iptables-save | sed '/^#/d')
  run_header apply "$f"
  [ "$(in_ns "$NS" iptables-save | sed '/^#/d')" = "$once" ] || fail "$f: applying twice is not the same as once"
  grep -q -- "-j NATPILOT-PREROUTING" <<<"$once" || fail "$f: no jump into NATPILOT-PREROUTING"
  run_header remove "$f"
  after=$(in_ns "$NS" iptables-save | sed '/^#/d')
  [ "$after" = "$before" ] || { diff <(echo "$before") <(echo "$after") || true; fail "$f: removal left a trace"; }
  echo "ok: $(basename "$f"): iptables-restore --test, applied twice, removed without a trace"
done
echo PASS
