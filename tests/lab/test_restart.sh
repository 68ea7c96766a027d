#!/usr/bin/env bash
# kill -9 of natpilotd and a restart: live entries are adopted without being added again, a
# missing one is re-added, a tagged orphan nothing wants is deleted, someone else's entry stays.
export GW_NATPMP=no  # UPnP IGD alone
source "$(dirname "$0")/lab.sh"
lab_up
np_start
wait_for 15 np_gateway_ready || fail "natpilotd did not find the lab gateway"
np device add ata1 --address "$DEV_ADDR" --kind ata --rtp 10000-10049
wait_for 30 np_all_active ata1 72 || fail "ata1's 72 mappings are not active"

instance=$(sqlite3 "$LAB_DIR/natpilot.db" "SELECT value FROM meta WHERE key = 'instance_id'")
log "natpilotd instance $instance; kill -9"
np_kill9

# While natpilotd is down: the router loses one entry, someone adds an entry tagged as ours that no
# device wants (a device removed in the crash window), and another program adds its own.
in_ns "$NS_LAN" upnpc -u "$GW_URL" -d 10020 UDP >/dev/null
in_ns "$NS_LAN" upnpc -u "$GW_URL" -e "natpilot $instance gone" -a "$DEV_ADDR" 7000 7000 UDP 3600 >/dev/null
in_ns "$NS_LAN" upnpc -u "$GW_URL" -e "someone else" -a "$DEV_ADDR" 7001 7001 UDP 3600 >/dev/null
[ "$(gw_count)" -eq 73 ] || fail "setup: gateway has $(gw_count) entries, want 73"
adds_before=$(gw_adds_total)

np_start
wait_for 30 np_all_active ata1 72 || { np mapping list; fail "mappings not active after restart"; }
wait_for 20 sh -c "! ip netns exec $NS_LAN upnpc -u $GW_URL -l 2>/dev/null | grep -q ' 7000->'" ||
  fail "the tagged orphan 7000/udp was not deleted"

gw_has "UDP 10020 $DEV_ADDR:10020" || fail "the lost entry 10020/udp was not re-added"
gw_has "UDP 7001 $DEV_ADDR:7001" || fail "another program's entry 7001/udp was touched"
[ "$(gw_count)" -eq 73 ] || fail "gateway has $(gw_count) entries, want 72 of ours + 1 foreign"
for e in "UDP 5060" "TCP 5060" "UDP 10000" "UDP 10049"; do
  n=$(gw_table | grep -c "^$e ")
  [ "$n" -eq 1 ] || fail "$e appears $n times in the gateway table"
done
adds_after=$(gw_adds_total)
[ $((adds_after - adds_before)) -eq 1 ] ||
  fail "restart sent $((adds_after - adds_before)) add requests, want exactly 1 (10020/udp)"
np_events_has "mapping.adopted  ata1  71 live gateway entries adopted" || fail "no adoption event"
expect_traffic udp 10020 "$NS_DEV"
expect_traffic tcp 5065 "$NS_DEV"

log "natpilot release --all deletes every lease; the devices stay"
np release --all
wait_for 20 sh -c "[ \$(ip netns exec $NS_LAN upnpc -u $GW_URL -l 2>/dev/null | grep -c 'natpilot $instance') -eq 0 ]" ||
  fail "release --all left entries on the gateway"
gw_has "UDP 7001 $DEV_ADDR:7001" || fail "release --all touched another program's entry"
[ "$(np_count ata1 UNMAPPED)" -eq 72 ] || fail "released mappings should show unmapped"
np device show ata1 >/dev/null || fail "release --all removed the device"
log "PASS"
