#!/usr/bin/env bash
# Device identity: the ATA's address is taken over by another host with another MAC (an address
# handed out again by DHCP). natpilotd suspends the ATA's mappings, deletes its gateway entries
# and forwards nothing to the newcomer. When the ATA itself answers again, its mappings return.
export GW_NATPMP=no  # UPnP IGD alone: its table is read back with upnpc
source "$(dirname "$0")/lab.sh"
lab_up
cat >"$LAB_DIR/natpilot.toml" <<TOML
[identity]
check_interval_s = 2
absent_after_s = 0
TOML
np_start --config "$LAB_DIR/natpilot.toml"
lab_on_fail() {
  np events -n 60
  gw_table
  in_ns "$NS_GW" nft list chain inet filter prerouting_miniupnpd
}

np device add ata1 --address "$DEV_ADDR" --kind ata --sip 5060-5061 --rtp 10000-10009
wait_for 30 np_all_active ata1 14 || { np mapping list; fail "ata1 not active"; }
dev_mac=$(ip -n "$NS_DEV" -br link show eth0 | awk '{print $3}')
wait_for 20 np_events_has "device.identified  ata1 .*MAC $dev_mac" || { np events; fail "ata1's MAC $dev_mac was not recorded"; }
np device show ata1 >"$LAB_DIR/show"
grep -q "mac: $dev_mac" "$LAB_DIR/show" || fail "device show does not give the MAC"
expect_traffic udp 5060 "$NS_DEV"

log "the ATA leaves; another host gets its address"
ip -n "$NS_DEV" link set eth0 down
NS_IMP=${LAB_ID}-imp
LAB_EXTRA_NS=$NS_IMP
ip netns add "$NS_IMP"
ip -n "$NS_IMP" link set lo up
ip link add "${LAB_ID}i" netns "$NS_IMP" type veth peer name imp0 netns "$NS_GW"
ip -n "$NS_IMP" link set "${LAB_ID}i" name eth0
ip -n "$NS_GW" link set imp0 master br0
ip -n "$NS_GW" link set imp0 up
ip -n "$NS_IMP" addr add "$DEV_ADDR/24" dev eth0
ip -n "$NS_IMP" link set eth0 up
ip -n "$NS_IMP" route add default via "$GW_LAN"
imp_mac=$(ip -n "$NS_IMP" -br link show eth0 | awk '{print $3}')
[ "$imp_mac" != "$dev_mac" ] || fail "the newcomer has the same MAC"
# Like any host that just got an address, it talks on the LAN (here to natpilotd's host), which
# puts its MAC in the neighbour table.
in_ns "$NS_IMP" "$LABTOOL" send udp "$LAN_ADDR" 9 hello || true

wait_for 30 np_events_has "device.suspended  ata1 .*now answers from MAC $imp_mac, not the registered MAC $dev_mac" ||
  { np events; fail "ata1 was not suspended"; }
np device show ata1 >"$LAB_DIR/show"
grep -q "SUSPENDED: " "$LAB_DIR/show" || fail "device show does not say the device is suspended"
# The gateway's table has no entry for the address: upnpc must have talked to it (a busy gateway
# that does not answer would look empty).
no_ata_entries() {
  in_ns "$NS_LAN" upnpc -u "$GW_URL" -l >"$LAB_DIR/upnpc" 2>&1 || return 1
  grep -q "ExternalIPAddress = $EXT_ADDR" "$LAB_DIR/upnpc" || return 1
  ! grep -q -- "->$DEV_ADDR:" "$LAB_DIR/upnpc"
}
wait_for 20 no_ata_entries || { gw_table; fail "ata1's entries are still on the gateway"; }
expect_no_traffic udp 5060 "$NS_IMP"
[ "$(np_count ata1 UNMAPPED)" -eq 14 ] || { np mapping list; fail "ata1's mappings should be unmapped while suspended"; }
np mapping list --device ata1 >"$LAB_DIR/mappings"
grep -q "suspended: " "$LAB_DIR/mappings" || fail "mappings do not say why they are off"

log "the newcomer leaves, the ATA is back"
ip netns del "$NS_IMP"
LAB_EXTRA_NS=""
ip -n "$NS_DEV" link set eth0 up
ip -n "$NS_DEV" route replace default via "$GW_LAN"
in_ns "$NS_DEV" "$LABTOOL" send udp "$LAN_ADDR" 9 back || true
wait_for 30 np_events_has "device.resumed  ata1" || { np events; fail "ata1 was not resumed"; }
wait_for 30 np_all_active ata1 14 || { np mapping list; fail "ata1 not active again"; }
expect_traffic udp 5060 "$NS_DEV"
log "PASS"
