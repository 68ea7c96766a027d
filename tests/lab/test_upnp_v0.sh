#!/usr/bin/env bash
# natpilotd v0 against a real miniupnpd: a device registered with the CLI gets its SIP ports and RTP
# range forwarded, a PBX on natpilotd's own address too; leases are renewed before they expire;
# bad input changes nothing; removing a device deletes its entries and traffic stops.
export GW_NATPMP=no  # UPnP IGD alone
source "$(dirname "$0")/lab.sh"
lab_up
np_start --lease-lifetime 30
wait_for 15 np_gateway_ready || { np gateway; fail "natpilotd did not find the lab gateway"; }
np gateway

[ "$(stat -c %a "$NP_SOCKET")" = 660 ] || fail "the API socket's mode is $(stat -c %a "$NP_SOCKET"), want 660"

log "register an ATA at its own address with the default plan"
np device add ata1 --address "$DEV_ADDR" --kind ata
wait_for 30 np_all_active ata1 122 || { np mapping list; fail "ata1's 122 mappings are not active"; }
[ "$(gw_count)" -eq 122 ] || fail "gateway table has $(gw_count) entries, want 122"
gw_has "UDP 5060 $DEV_ADDR:5060" || fail "no 5060/udp entry for the ATA"
gw_has "TCP 5070 $DEV_ADDR:5070" || fail "no 5070/tcp entry for the ATA"
gw_has "UDP 10099 $DEV_ADDR:10099" || fail "no 10099/udp entry for the ATA"
expect_traffic udp 5060 "$NS_DEV"
expect_traffic tcp 5060 "$NS_DEV"
expect_traffic udp 10042 "$NS_DEV"
expect_no_traffic udp 6000 "$NS_DEV"

log "register a PBX at natpilotd's own address"
np device add pbx1 --address "$LAN_ADDR" --kind pbx --sip 5080-5081 --rtp 12000-12009
wait_for 30 np_all_active pbx1 14 || { np mapping list --device pbx1; fail "pbx1 not active"; }
expect_traffic udp 5080 "$NS_LAN"
expect_traffic tcp 5081 "$NS_LAN"
expect_traffic udp 12005 "$NS_LAN"

log "bad input is refused with a reason and changes nothing"
expect_refused() {
  local want=$1; shift
  local out rc=0
  out=$(np "$@" 2>&1) || rc=$?
  [ "$rc" -ne 0 ] || fail "'natpilot $*' was accepted"
  grep -q -- "$want" <<<"$out" || fail "'natpilot $*' said '$out', want '$want'"
  log "ok: refused: $out"
}
expect_refused "already exists" device add ata1 --address 192.168.50.11
expect_refused "overlap another device's; mappings are port-preserving, so each device needs its own SIP and RTP ports (device 'ata1' holds" device add other --address 192.168.50.11 --sip 5070-5072 --rtp 20000-20009
expect_refused "(device 'pbx1' holds" device add other --address 192.168.50.11 --sip 6000-6001 --rtp 12009-12020
expect_refused "refused by policy.internal_ports" device add low --address 192.168.50.11 --sip 80-81
expect_refused "must not exceed the last" device add rev --address 192.168.50.11 --rtp 20010-20000
expect_refused "policy.max_rtp_ports allows at most 1000" device add big --address 192.168.50.11 --rtp 20000-21500
expect_refused "refused by policy.device_networks: allowed are 192.168.50.0/24" device add far --address 10.1.2.3
expect_refused "not an IPv4 address" device add bad --address 192.168.50.300
expect_refused "multicast" device add bad --address 224.0.0.1
expect_refused "IPv6" device add bad --address fd00::1
expect_refused "not allowed" device add 'bad name' --address 192.168.50.11
expect_refused "no device named" device rm nosuch
[ "$(np device list --json | grep -o '"name"' | wc -l)" -eq 2 ] || fail "a refused request changed the registry"
# The gateway's table, not its count of adds: with 30 s leases the renewals of ata1 and pbx1 (at
# half the lease) fall inside this section on a loaded machine.
gw_table >"$LAB_DIR/table.after"
! grep -qE " (192\.168\.50\.11|10\.1\.2\.3):" "$LAB_DIR/table.after" || fail "a refused request reached the gateway"
[ "$(wc -l <"$LAB_DIR/table.after")" -eq 136 ] || fail "the gateway holds $(wc -l <"$LAB_DIR/table.after") entries, want 136"

log "the loopback TCP API: tokens"
expect_refused "no token" --server 127.0.0.1:50551 device show pbx1
expect_refused "UNAUTHENTICATED" --server 127.0.0.1:50551 --token npa_guess device list
[ "$(stat -c %a "$LAB_DIR/natpilot-admin.token")" = 600 ] || fail "the admin token file is not 0600"
[ "$(stat -c %a "$LAB_DIR/natpilot.db")" = 600 ] || fail "the database is not 0600"
np --server 127.0.0.1:50551 --token-file "$LAB_DIR/natpilot-admin.token" device show pbx1 >/dev/null ||
  fail "the loopback TCP API does not answer the admin token"
np --server 127.0.0.1:50551 --token-file "$LAB_DIR/natpilot-admin.token" device update pbx1 --kind pbx
np_events_has "device.updated  pbx1 .*(by admin token from 127.0.0.1)" || fail "a TCP caller is not named in the event"
ata_token=$(np device token ata1 | sed -n 's/^token: //p')
NATPILOT_TOKEN=$ata_token np --server 127.0.0.1:50551 mapping list >"$LAB_DIR/own"
grep -q ata1 "$LAB_DIR/own" && ! grep -q pbx1 "$LAB_DIR/own" || fail "a device token should list its own mappings only"
NATPILOT_TOKEN=$ata_token expect_refused "PERMISSION_DENIED" --server 127.0.0.1:50551 device rm pbx1
NATPILOT_TOKEN=$ata_token expect_refused "needs the admin" --server 127.0.0.1:50551 device add x --address 192.168.50.12
[ "$(np device list --json | grep -o '"name"' | wc -l)" -eq 2 ] || fail "a refused device-token call changed the registry"

log "leases are renewed before they expire (lease 30 s)"
first=$(gw_lease UDP 5060)
[ "$first" -gt 0 ] && [ "$first" -le 30 ] || fail "5060/udp lease is '$first', want 1-30"
low=$first renewed=0
for _ in $(seq 1 40); do
  sleep 1
  now=$(gw_lease UDP 5060)
  [ "$now" -gt 0 ] || fail "5060/udp vanished from the gateway (lease $now)"
  if [ "$now" -gt $((low + 5)) ]; then renewed=1; break; fi
  [ "$now" -lt "$low" ] && low=$now
done
[ "$renewed" -eq 1 ] || fail "5060/udp was not renewed: remaining time fell to $low s and never reset"
log "ok: remaining lease fell to $low s, then reset to $now s"
[ "$(gw_count)" -eq 136 ] || fail "renewal changed the number of gateway entries: $(gw_count)"
expect_traffic udp 5060 "$NS_DEV"

log "removing the ATA deletes its entries and traffic stops; the event stream shows it live"
np events --follow -n 0 >"$LAB_DIR/follow.out" 2>&1 &
follow=$!
sleep 0.5
np device rm ata1
wait_for 20 sh -c "[ \$(ip netns exec $NS_LAN upnpc -u $GW_URL -l 2>/dev/null | grep -c '$DEV_ADDR') -eq 0 ]" ||
  fail "the ATA's entries are still on the gateway"
[ "$(gw_count)" -eq 14 ] || fail "gateway table has $(gw_count) entries, want the PBX's 14"
expect_no_traffic udp 5060 "$NS_DEV"
expect_no_traffic udp 10042 "$NS_DEV"
expect_traffic udp 5080 "$NS_LAN"
np_events_has "device.removed.*ata1.*by admin via unix socket" || fail "no removal event naming the caller"
np_events_has "mapping.released  ata1 (removed)  122 entries deleted" || fail "no release event"
wait_for 10 grep -q "mapping.released  ata1 (removed)  122 entries deleted" "$LAB_DIR/follow.out" ||
  { cat "$LAB_DIR/follow.out"; fail "the live event stream did not show the release"; }
grep -q "device.removed  ata1 .*(by admin via unix socket)" "$LAB_DIR/follow.out" ||
  fail "the live event stream did not show the removal with its caller"
if grep -q "device.registered" "$LAB_DIR/follow.out"; then fail "backlog 0 replayed old events"; fi
kill "$follow"
log "PASS"
