#!/usr/bin/env bash
# Gateway protocols in the lab (issue 3's benchmark; root; not part of the tests): time to a first
# usable gateway, and time to map one device's full plan (22 SIP + 100 RTP = 122 mappings) per
# protocol, beside the raw floor (bench/raw_floor.cc: the same 122 requests sent straight at the
# gateway with nothing around them) and upnpc and natpmpc doing the same work in the same lab, as
# ratios. natpilot's mapping time is measured from `device add` to all 122 active as the CLI sees
# them (polled every 20 ms); upnpc maps all 122 in one process (-r), natpmpc needs one process per
# mapping.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
bash "$top/scripts/build.sh" --target natpilotd natpilot labtool raw_floor >/dev/null
RAW=$top/build/bench/raw_floor
export NATPILOTD=$top/build/service/natpilotd NATPILOT=$top/build/clients/natpilot LABTOOL=$top/build/tests/labtool
export GW_PCP_THIRDPARTY=yes
source "$top/tests/lab/lab.sh"
lab_up >/dev/null 2>&1
ms() { date +%s%3N; }

# The plan, as "port proto" pairs, at natpilotd's own address (NAT-PMP maps only there).
pairs=()
for p in $(seq 5060 5070); do pairs+=("$p UDP" "$p TCP"); done
for p in $(seq 10000 10099); do pairs+=("$p UDP"); done
clear_gateway() { lab_gateway_stop forget; lab_gateway_start >/dev/null; }

printf '%-34s %10s %10s %8s\n' "what" "natpilot" "baseline" "ratio"
row() {  # a time under 1 ms is shown as such, and its ratio as an upper bound
  awk -v w="$1" -v a="$2" -v b="$3" 'BEGIN {
    if (a < 1) printf "%-34s %10s %8d ms   < %.4f\n", w, "<1 ms", b, 1 / b;
    else printf "%-34s %8d ms %8d ms %8.2f\n", w, a, b, a / b }'
}

# First usable gateway: natpilotd probes all three at once; the baselines ask one protocol each.
t0=$(ms); in_ns "$NS_LAN" upnpc -s >/dev/null 2>&1 || true; upnpc_s=$(( $(ms) - t0 ))
t0=$(ms); in_ns "$NS_LAN" natpmpc >/dev/null 2>&1 || true; natpmpc_s=$(( $(ms) - t0 ))
np_start
wait_for 10 np_protocol_is PCP
first=$(np gateway --json | sed -nE 's/.*"protocols":\[\{[^}]*"took_ms":([0-9]+).*/\1/p')
row "first gateway (PCP) vs upnpc -s" "${first:-0}" "$upnpc_s"
row "first gateway (PCP) vs natpmpc" "${first:-0}" "$natpmpc_s"
np_kill9

for proto in pcp nat-pmp upnp-igd; do
  clear_gateway
  rm -f "$LAB_DIR/natpilot.db"*
  printf '[gateway]\nprotocols = ["%s"]\n' "$proto" >"$LAB_DIR/bench.toml"
  np_start --config "$LAB_DIR/bench.toml" >/dev/null
  wait_for 10 np gateway --json >/dev/null
  sleep 1
  t0=$(ms)
  np device add pbx --address "$LAN_ADDR" >/dev/null
  until np_all_active pbx 122; do sleep 0.02; done
  ours=$(( $(ms) - t0 ))
  np_kill9
  clear_gateway
  # The raw floor: the same 122 requests straight at the gateway, nothing around them.
  case "$proto" in
    pcp) raw=$(in_ns "$NS_LAN" "$RAW" pcp "$GW_LAN" "$LAN_ADDR") ;;
    nat-pmp) raw=$(in_ns "$NS_LAN" "$RAW" natpmp "$GW_LAN") ;;
    upnp-igd) raw=$(in_ns "$NS_LAN" "$RAW" upnp "$GW_URL" "$LAN_ADDR") ;;
  esac
  row "122 mappings: $proto vs raw requests" "$ours" "$raw"
  clear_gateway
  t0=$(ms)
  case "$proto" in
    upnp-igd) in_ns "$NS_LAN" upnpc -u "$GW_URL" -r ${pairs[*]} >/dev/null 2>&1; base=upnpc ;;
    *) for pp in "${pairs[@]}"; do
         set -- $pp
         in_ns "$NS_LAN" natpmpc -a "$1" "$1" "${2,,}" 3600 >/dev/null 2>&1
       done; base=natpmpc ;;
  esac
  theirs=$(( $(ms) - t0 ))
  row "122 mappings: $proto vs $base" "$ours" "$theirs"
done
