#!/usr/bin/env bash
# NAT-PMP alone (UPnP off, PCP packets dropped by their version byte): the PBX at natpilotd's own
# address is mapped with NAT-PMP; an ATA at another address cannot be (NAT-PMP maps only for the
# host that asks), so it falls back to static rules and says why.
export GW_UPNP=no GW_ONLY=nat-pmp
source "$(dirname "$0")/lab.sh"
lab_up
np_start
wait_for 15 np_protocol_is NAT_PMP || { np gateway; fail "NAT-PMP was not chosen"; }
np gateway
np device add pbx1 --address "$LAN_ADDR" --kind pbx --sip 5080-5081 --rtp 12000-12009
np device add ata1 --address "$DEV_ADDR" --kind ata --sip 5060-5061 --rtp 10000-10009
wait_for 30 np_all_active pbx1 14 || { np mapping list; fail "pbx1 not mapped with NAT-PMP"; }
wait_for 30 np_count_is ata1 STATIC_RULE 14 || { np mapping list; fail "ata1 should need static rules"; }
np mapping list >"$LAB_DIR/list"
grep -q "pbx1 .* nat-pmp " "$LAB_DIR/list" || fail "mapping list does not say nat-pmp"
grep -q "NAT-PMP maps only to natpilotd's own host" "$LAB_DIR/list" || fail "the ATA's reason is missing"
[ "$(gw_dnat_count)" -eq 14 ] || fail "gateway has $(gw_dnat_count) forwards, want 14"
expect_traffic udp 5080 "$NS_LAN"
expect_traffic tcp 5081 "$NS_LAN"
expect_traffic udp 12000 "$NS_LAN"
np device rm pbx1
wait_for 20 sh -c "[ \$(ip netns exec $NS_GW nft list chain inet filter prerouting_miniupnpd | grep -c dnat) -eq 0 ]" ||
  fail "NAT-PMP mappings were not deleted"
expect_no_traffic udp 5080 "$NS_LAN"
log "PASS"
