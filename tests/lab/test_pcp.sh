#!/usr/bin/env bash
# PCP alone (UPnP off, NAT-PMP packets dropped by their version byte, THIRD_PARTY allowed): an ATA
# at its own address (THIRD_PARTY) and a PBX at natpilotd's address are mapped with PCP and traffic
# flows; after kill -9 and a restart the stored nonces still delete the ATA's mappings.
export GW_UPNP=no GW_ONLY=pcp GW_PCP_THIRDPARTY=yes
source "$(dirname "$0")/lab.sh"
lab_up
np_start --lease-lifetime 120
wait_for 15 np_protocol_is PCP || { np gateway; fail "PCP was not chosen"; }
np gateway
np device add ata1 --address "$DEV_ADDR" --kind ata --sip 5060-5061 --rtp 10000-10009
np device add pbx1 --address "$LAN_ADDR" --kind pbx --sip 5080-5081 --rtp 12000-12009
wait_for 30 np_all_active ata1 14 || { np mapping list; fail "ata1 not mapped with PCP"; }
wait_for 30 np_all_active pbx1 14 || { np mapping list; fail "pbx1 not mapped with PCP"; }
np mapping list --device ata1 >"$LAB_DIR/list"
grep -q " pcp " "$LAB_DIR/list" || fail "mapping list does not say pcp"
gw_dnat >"$LAB_DIR/dnat"
grep -qx "udp 5060 $DEV_ADDR:5060" "$LAB_DIR/dnat" || { in_ns "$NS_GW" nft list chain inet filter prerouting_miniupnpd | sed -n 1,6p; fail "no PCP forward for the ATA on the gateway"; }
[ "$(gw_dnat_count)" -eq 28 ] || fail "gateway has $(gw_dnat_count) forwards, want 28"
wait_for 10 np_gateway_ready || fail "the external address was not learned from PCP"
expect_traffic udp 5060 "$NS_DEV"
expect_traffic tcp 5061 "$NS_DEV"
expect_traffic udp 10005 "$NS_DEV"
expect_traffic udp 5080 "$NS_LAN"
expect_traffic udp 12009 "$NS_LAN"
expect_no_traffic udp 6000 "$NS_DEV"

log "kill -9, restart: leases are kept, and the stored nonces still delete them"
np_kill9
np_start --lease-lifetime 120
wait_for 15 np_protocol_is PCP || fail "PCP not chosen after restart"
np_all_active ata1 14 || { np mapping list; fail "leases were not kept across the restart"; }
[ "$(gw_dnat_count)" -eq 28 ] || fail "restart changed the gateway's forwards: $(gw_dnat_count)"
np device rm ata1
wait_for 20 sh -c "! ip netns exec $NS_GW nft list chain inet filter prerouting_miniupnpd | grep -q '$DEV_ADDR'" ||
  fail "the ATA's PCP mappings were not deleted (nonce lost?)"
[ "$(gw_dnat_count)" -eq 14 ] || fail "gateway has $(gw_dnat_count) forwards, want the PBX's 14"
expect_no_traffic udp 5060 "$NS_DEV"
expect_traffic udp 5081 "$NS_LAN"
log "PASS"
