#!/usr/bin/env bash
# A device removed while the gateway is unreachable: its entries are deleted once it is back.
export GW_NATPMP=no  # UPnP IGD alone
source "$(dirname "$0")/lab.sh"
lab_up
printf '[gateway]\nverify_interval_s = 5\n' >"$LAB_DIR/natpilotd.toml"
np_start --config "$LAB_DIR/natpilotd.toml"
wait_for 15 np_gateway_ready || fail "natpilotd did not find the lab gateway"
np device add ata1 --address "$DEV_ADDR" --kind ata --sip 5060-5061 --rtp 10000-10009
wait_for 30 np_all_active ata1 14 || fail "ata1 not mapped"
log "the gateway goes away (its rules and lease file stay), and the device is removed meanwhile"
lab_gateway_stop
np device rm ata1
sleep 3
lab_gateway_start
[ "$(gw_dnat_count)" -eq 14 ] || fail "the returning gateway should still have the 14 forwards, has $(gw_dnat_count)"
wait_for 60 sh -c "[ \$(ip netns exec $NS_GW nft list chain inet filter prerouting_miniupnpd | grep -c dnat) -eq 0 ]" ||
  fail "the removed device's entries are still on the gateway"
np_events_has "mapping.released  ata1 (removed)  14 entries deleted" || fail "no release event"
expect_no_traffic udp 5060 "$NS_DEV"
log "PASS"
