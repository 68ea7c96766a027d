#!/usr/bin/env bash
# No gateway at start: natpilotd still starts and serves the API, keeps the intent, says what it
# found, and maps on its own once the gateway appears.
export GW_NATPMP=no  # UPnP IGD alone
source "$(dirname "$0")/lab.sh"
lab_up
lab_gateway_stop forget
np_start
wait_for 10 sh -c "ip netns exec $NS_LAN $NATPILOT --socket $NP_SOCKET gateway --json | grep -q STATUS_NOT_FOUND" ||
  { np gateway; fail "gateway status should be not-found"; }
np gateway
np device add ata1 --address "$DEV_ADDR" --kind ata --sip 5060-5061 --rtp 10000-10009
wait_for 10 sh -c "[ \$(ip netns exec $NS_LAN $NATPILOT --socket $NP_SOCKET mapping list --json | grep -c 'no usable gateway') -gt 0 ]" ||
  fail "mappings should say there is no usable gateway"
[ "$(np_count ata1 UNMAPPED)" -eq 14 ] || fail "all 14 mappings should be unmapped"
np mapping list --device ata1 | sed -n 1,3p

log "the gateway comes up; natpilotd finds it on its own"
lab_gateway_start
wait_for 60 np_all_active ata1 14 || { np gateway; np mapping list; fail "not mapped after the gateway came up"; }
expect_traffic udp 5061 "$NS_DEV"
np_events_has "gateway.not-found" || fail "no gateway.not-found event"
np_events_has "gateway.found" || fail "no gateway.found event"
log "PASS"
