#!/usr/bin/env bash
# natpilotd's footprint (issue 9; root; not part of the tests): binary size, start-up time to
# serving the API, and resident memory and CPU while idle with 0 and then 1,000 mappings across 10
# devices on the lab's miniupnpd, each over SECONDS (default 600: ten minutes). Idle CPU should be
# near zero (timers, no polling loops) and memory flat.
# Usage: sudo bash bench/footprint.sh [SECONDS]
set -euo pipefail
seconds=${1:-600}
top=$(cd "$(dirname "$0")/.." && pwd)
bash "$top/scripts/build.sh" --target natpilotd natpilot labtool >/dev/null
export NATPILOTD=$top/build/service/natpilotd NATPILOT=$top/build/clients/natpilot LABTOOL=$top/build/tests/labtool
export GW_NATPMP=no  # UPnP: the mappings go to devices at other addresses
source "$top/tests/lab/lab.sh"
lab_up >/dev/null 2>&1
hz=$(getconf CLK_TCK)
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

stripped=$(mktemp)
strip -o "$stripped" "$NATPILOTD"
printf '%-44s %s\n' "binary size (stripped / with debug info)" \
  "$(( $(stat -c %s "$stripped") / 1024 )) KiB / $(( $(stat -c %s "$NATPILOTD") / 1024 )) KiB"
rm -f "$stripped"

# Start-up: from exec to the first answered health check (polled every 5 ms).
t0=$(date +%s%N)
(cd "$LAB_DIR" && in_ns "$NS_LAN" "$NATPILOTD" --database "$LAB_DIR/natpilot.db" --unix-socket "$NP_SOCKET" \
   --discovery-timeout-ms 500 >>"$LAB_DIR/natpilotd.log" 2>&1 &)
until in_ns "$NS_LAN" "$NATPILOT" --socket "$NP_SOCKET" health >/dev/null 2>&1; do sleep 0.005; done
printf '%-44s %s ms\n' "start-up to serving the API" "$(( ($(date +%s%N) - t0) / 1000000 ))"
pid=$(np_pid)

idle() {  # idle LABEL: RSS at start, end and max, and CPU used, over $seconds
  local label=$1 r0 rmax r c0 c1
  r0=$(rss_kib "$pid") rmax=$r0 c0=$(cpu_ticks "$pid")
  for _ in $(seq 1 "$seconds"); do
    sleep 1
    r=$(rss_kib "$pid")
    [ "$r" -gt "$rmax" ] && rmax=$r
  done
  c1=$(cpu_ticks "$pid")
  awk -v l="$label" -v a="$r0" -v b="$r" -v m="$rmax" -v t="$(( c1 - c0 ))" -v hz="$hz" -v s="$seconds" 'BEGIN {
    printf "%-44s RSS %.1f -> %.1f MiB (max %.1f); CPU %.2f s in %d s (%.3f %%)\n",
      l, a / 1024, b / 1024, m / 1024, t / hz, s, 100 * t / hz / s }'
}
sleep 2
idle "idle, 0 mappings"
for i in $(seq 0 9); do
  np device add "dev$i" --address "192.168.50.$((100 + i))" --kind phone --sip "$((5100 + 10 * i))" \
    --sip-transports udp --rtp "$((20000 + 100 * i))-$((20098 + 100 * i))" >/dev/null
done
wait_for 600 sh -c "[ \$(ip netns exec $NS_LAN $NATPILOT --socket $NP_SOCKET mapping list --json | grep -o MAPPING_STATE_ACTIVE | wc -l) -eq 1000 ]" ||
  fail "the 1,000 mappings did not all become active"
sleep 2
idle "idle, 1,000 mappings (10 devices)"
