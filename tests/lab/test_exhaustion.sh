#!/usr/bin/env bash
# Exhaustion (issue 15, classes 4 and 5): while a device is mapped with 30 s leases, hundreds of
# connections to the status page that never finish (idle, a header one byte a second, streams never
# read) and more event and NAT-view streams from the device's token than it may hold. Renewals stay
# on time (no gateway entry lapses over more than a lease's lifetime), the admin socket answers
# within 100 ms of its unloaded time, natpilotd's descriptors stay bounded, extra streams are
# refused with RESOURCE_EXHAUSTED, and everything is served again once the load is gone.
export GW_NATPMP=no
source "$(dirname "$0")/lab.sh"
lab_up
np_start --lease-lifetime 30
np device add ata1 --address "$DEV_ADDR" --kind ata --sip 5060-5061 --rtp 10000-10009 >"$LAB_DIR/add"
token=$(sed -n 's/^token: //p' "$LAB_DIR/add")
[ -n "$token" ] || fail "device add printed no token"
wait_for 30 np_all_active ata1 14 || { np mapping list; fail "ata1 not active"; }
pid=$(np_pid)

fds() { ls "/proc/$pid/fd" | wc -l; }
# Median wall time of five admin calls over the unix socket, in ms (the CLI's own start included).
admin_ms() {
  local i t0 t1 times=()
  for i in 1 2 3 4 5; do
    t0=$(date +%s%N)
    np gateway >/dev/null || fail "the admin socket did not answer"
    t1=$(date +%s%N)
    times+=($(((t1 - t0) / 1000000)))
  done
  printf '%s\n' "${times[@]}" | sort -n | sed -n 3p
}
base_fds=$(fds)
base_ms=$(admin_ms)
adds_before=$(gw_adds_total)
log "unloaded: $base_fds descriptors, admin call $base_ms ms"

log "load: 450 page connections, 24 streams with the device token"
cleanup_pids=() holders=()
# The load's processes are children of background subshells: end them by what runs in this lab's
# namespace (a parallel lab has its own), then the subshells.
lab_cleanup() {
  local p
  for p in $(ip netns pids "$NS_LAN" 2>/dev/null); do
    grep -qaE "hold|--follow" "/proc/$p/cmdline" 2>/dev/null && kill "$p" 2>/dev/null
  done
  kill "${cleanup_pids[@]}" 2>/dev/null
  return 0
}
hold() {
  in_ns "$NS_LAN" "$LABTOOL" hold 127.0.0.1 8080 "$1" "$2" 240 >"$LAB_DIR/hold.$2" &
  cleanup_pids+=($!)
  holders+=($!)
}
hold 200 idle
hold 200 slow
hold 50 stream
for i in $(seq 1 12); do
  in_ns "$NS_LAN" "$NATPILOT" --server 127.0.0.1:50551 --token "$token" events --follow >"$LAB_DIR/ev.$i" 2>&1 &
  cleanup_pids+=($!)
  in_ns "$NS_LAN" "$NATPILOT" --server 127.0.0.1:50551 --token "$token" pbx-config ata1 --follow >"$LAB_DIR/nv.$i" 2>&1 &
  cleanup_pids+=($!)
done
all_held() { for m in idle slow stream; do [ -s "$LAB_DIR/hold.$m" ] || return 1; done; }
wait_for 30 all_held || fail "the connections were not opened"
refused() { grep -l "RESOURCE_EXHAUSTED\|too many" "$LAB_DIR"/ev.* "$LAB_DIR"/nv.* 2>/dev/null | wc -l; }
wait_for 30 sh -c "[ \$(grep -l 'RESOURCE_EXHAUSTED\|too many' $LAB_DIR/ev.* $LAB_DIR/nv.* 2>/dev/null | wc -l) -ge 16 ]" ||
  { tail -n 2 "$LAB_DIR"/ev.* "$LAB_DIR"/nv.* >&2; fail "streams beyond the token's 8 were not refused ($(refused))"; }
log "refused streams: $(refused) of 24 (8 allowed per token)"

# Longer than a lease (30 s): an entry the reconciler failed to renew would lapse on the gateway.
max_fds=0 min_left=999 end=$((SECONDS + 40))
while [ "$SECONDS" -lt "$end" ]; do
  for h in "${holders[@]}"; do kill -0 "$h" 2>/dev/null || fail "the load ended before the measurement did"; done
  n=$(fds); [ "$n" -gt "$max_fds" ] && max_fds=$n
  left=$(gw_lease UDP 5060)
  [ "$left" -ge 0 ] || fail "the gateway lost 5060/udp under load (a renewal was late)"
  [ "$left" -lt "$min_left" ] && min_left=$left
  [ "$(gw_count)" -eq 14 ] || { gw_table >&2; fail "the gateway does not hold ata1's 14 entries under load"; }
  sleep 1
done
load_ms=$(admin_ms)
for h in "${holders[@]}"; do kill -0 "$h" 2>/dev/null || fail "the load ended before the measurement did"; done
renewals=$(($(gw_adds_total) - adds_before))
log "under load: max $max_fds descriptors (unloaded $base_fds), admin call $load_ms ms, $renewals AddPortMapping, lease left at least $min_left s"
[ "$renewals" -ge 14 ] || fail "no renewal during the load ($renewals AddPortMapping)"
[ "$min_left" -ge 5 ] || fail "a renewal came late: $min_left s left on the gateway"
[ "$load_ms" -le $((base_ms + 100)) ] || fail "the admin socket took $load_ms ms under load ($base_ms ms unloaded)"
[ "$max_fds" -le $((base_fds + 80)) ] || fail "descriptors grew from $base_fds to $max_fds"
np_all_active ata1 14 || fail "natpilot does not show ata1 active under load"
[ "$(np_pid)" = "$pid" ] || fail "natpilotd died"

log "the load goes; the page answers again"
lab_cleanup
page_ok() { [ "$(in_ns "$NS_LAN" curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:8080/api/status)" = 200 ]; }
wait_for 30 page_ok || fail "the page does not answer after the load"
wait_for 30 sh -c "[ \$(ls /proc/$pid/fd | wc -l) -le $((base_fds + 10)) ]" || fail "descriptors did not come back ($(fds))"
log "PASS"
