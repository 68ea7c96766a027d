#!/usr/bin/env bash
# Another host already holds a port of the ATA's RTP range on the gateway: natpilotd moves the
# whole RTP block to a free range (mapped same-port), says so in an event and in the device, and
# leaves the other host's entry alone.
export GW_NATPMP=no  # UPnP IGD alone
source "$(dirname "$0")/lab.sh"
lab_up
in_ns "$NS_LAN" upnpc -u "$GW_URL" -e "another phone" -a 192.168.50.99 10005 10005 UDP 3600 >/dev/null
np_start
wait_for 15 np_gateway_ready || fail "natpilotd did not find the lab gateway"
np device add ata1 --address "$DEV_ADDR" --kind ata --sip 5060-5061 --rtp 10000-10009
wait_for 30 sh -c "ip netns exec $NS_LAN $NATPILOT --socket $NP_SOCKET device show ata1 --json | grep -q '\"rtp\":{\"first\":10010,\"last\":10019}'" ||
  { np device show ata1 | sed -n 1,3p; fail "the RTP block was not moved to 10010-10019"; }
wait_for 30 np_all_active ata1 14 || { np mapping list; fail "ata1 not mapped after the move"; }
np_events_has "device.rtp-moved  ata1  RTP 10000-10009 -> 10010-10019: port 10005/udp is held on the gateway by 192.168.50.99:10005" ||
  fail "no event for the move"
gw_has "UDP 10005 192.168.50.99:10005" || fail "the other host's entry was touched"
gw_table >"$LAB_DIR/table"
if grep -q "^UDP 1000[0-9] $DEV_ADDR" "$LAB_DIR/table"; then fail "entries of the old block were left"; fi
expect_traffic udp 10015 "$NS_DEV"
log "PASS"
