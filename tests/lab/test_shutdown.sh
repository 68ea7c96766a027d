#!/usr/bin/env bash
# Shutdown: by default leases stay on the gateway (and are adopted at the next start); with
# release_on_shutdown = true a SIGTERM deletes them, and the next start maps them again.
export GW_NATPMP=no  # UPnP IGD alone
source "$(dirname "$0")/lab.sh"
lab_up
np_start
wait_for 15 np_gateway_ready || fail "natpilotd did not find the lab gateway"
np device add ata1 --address "$DEV_ADDR" --kind ata --sip 5060-5061 --rtp 10000-10009
wait_for 30 np_all_active ata1 14 || fail "ata1 not mapped"
pid=$(np_pid)
kill -TERM "$pid"
wait_for 10 sh -c "! kill -0 $pid 2>/dev/null" || fail "natpilotd did not stop on SIGTERM"
[ "$(gw_count)" -eq 14 ] || fail "by default leases stay on the gateway; it has $(gw_count)"
grep -q "leases stay on the gateway" "$LAB_DIR/natpilotd.log" || fail "no word about the kept leases"

log "with release_on_shutdown = true"
printf 'release_on_shutdown = true\n' >"$LAB_DIR/release.toml"
np_start --config "$LAB_DIR/release.toml"
wait_for 30 np_all_active ata1 14 || fail "not active after restart"
pid=$(np_pid)
kill -TERM "$pid"
wait_for 20 sh -c "! kill -0 $pid 2>/dev/null" || fail "natpilotd did not stop on SIGTERM"
[ "$(gw_count)" -eq 0 ] || fail "release_on_shutdown left $(gw_count) entries on the gateway"
expect_no_traffic udp 5060 "$NS_DEV"

log "the intent is kept: the next start maps everything again"
np_start
wait_for 30 np_all_active ata1 14 || fail "not mapped again after the release at shutdown"
[ "$(gw_count)" -eq 14 ] || fail "gateway has $(gw_count) entries, want 14"
expect_traffic udp 5060 "$NS_DEV"
log "PASS"
