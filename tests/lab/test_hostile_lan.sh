#!/usr/bin/env bash
# A hostile host on the LAN (issue 15): namespace `evil` (192.168.50.66) on the router's bridge
#  - puts an entry with invalid UTF-8, terminal escape sequences and a newline in its description
#    on the router (real miniupnpd), on a port the device wants (5061/udp);
#  - answers SSDP as a second IGD (a second miniupnpd, "Rogue IGD", claiming 203.0.114.1);
#  - floods natpilotd with packets that claim to come from the router (raw socket, source
#    192.168.50.1:5351): PCP ANNOUNCEs and NAT-PMP address announcements naming 198.51.100.99,
#    PCP answers with nonces nobody sent (which found a PCP server before the probe checked the
#    nonce), truncated and oversized ones, random bytes;
# while the status page stays open in chromium (tests/web/hostile_page.mjs). natpilotd must stay up,
# keep the real gateway and its external address, keep the device's forwards (packets from wan
# arrive), show exactly the entries the gateway holds as active, say who holds 5061 without passing
# on the control characters, and the page must keep streaming.
export GW_NATPMP=no  # the router speaks UPnP alone: every PCP / NAT-PMP packet natpilotd gets is forged
source "$(dirname "$0")/lab.sh"
WEB_DIR=$(cd "$(dirname "$0")/../web" && pwd)
[ -x /usr/bin/chromium ] && [ -d "$WEB_DIR/node_modules/playwright-core" ] ||
  { echo "chromium or playwright-core missing (bash scripts/setup.sh --test installs them)"; exit 77; }
lab_up

NS_EVIL=${LAB_ID}-evil EVIL_ADDR=192.168.50.66
lab_lan_host "$NS_EVIL" "$EVIL_ADDR" e
lab_rogue_igd "$NS_EVIL" "$EVIL_ADDR" 203.0.114.1
hostile=$'\xff\xfe evil \x1b[2J\x1b]0;owned\x07\nCOMMIT \xc3\x28'
in_ns "$NS_EVIL" upnpc -u "$GW_URL" -e "$hostile" -a "$EVIL_ADDR" 5061 5061 UDP >/dev/null ||
  fail "the evil host could not add its entry"
gw_has "UDP 5061 $EVIL_ADDR:5061" || fail "the evil entry is not on the router"

np_start
pid=$(np_pid)
in_ns "$NS_LAN" node "$WEB_DIR/hostile_page.mjs" http://127.0.0.1:8080/ "$LAB_DIR/page-ready" "$LAB_DIR/attack-done" \
  >"$LAB_DIR/page.log" 2>&1 &
page=$!
np device add ata1 --address "$DEV_ADDR" --kind ata --sip 5060-5061 --rtp 10000-10009 >/dev/null
wait_for 60 test -e "$LAB_DIR/page-ready" || { cat "$LAB_DIR/page.log" >&2; fail "the page did not show ata1"; }

log "attack: forged PCP / NAT-PMP packets from the router's address, the rogue IGD answering SSDP"
in_ns "$NS_EVIL" ip route replace 224.0.0.0/4 dev eth0
# The forger, in the background, 40 packets a round: every kind to the announcement port, unicast
# and multicast (224.0.0.1); PCP-versioned, truncated and random ones to every other UDP socket
# natpilotd has open at the moment (its probes' sockets come and go; ss tells the lab what a real
# attacker would have to guess). Not forged there: NAT-PMP answers, which have no nonce (RFC 6886)
# and so cannot be told from the router's by anyone (README, what does not work).
forge() {
  local port ports
  while [ ! -e "$LAB_DIR/forge-stop" ]; do
    ports=$(in_ns "$NS_LAN" ss -Hunap | grep "pid=$pid," | awk '{print $4}' | sed 's/.*://' | sort -un)
    in_ns "$NS_EVIL" "$LABTOOL" spoof "$GW_LAN" "$LAN_ADDR" 5350 40 && echo "5350 40"
    for port in $ports; do
      [ "$port" = 5350 ] && continue
      in_ns "$NS_EVIL" "$LABTOOL" spoof "$GW_LAN" "$LAN_ADDR" "$port" 40 pcp && echo "$port 40"
    done
    in_ns "$NS_EVIL" "$LABTOOL" spoof "$GW_LAN" 224.0.0.1 5350 40 && echo "224.0.0.1 40"
  done >>"$LAB_DIR/forged"
}
forge &
forger=$!
lab_cleanup() { touch "$LAB_DIR/forge-stop"; kill "$forger" 2>/dev/null; }
for round in 1 2 3 4 5; do
  np gateway --rediscover >/dev/null  # a probe: the rogue IGD answers SSDP, forged answers race the real ones
  wait_for 20 np_gateway_ready || { np gateway; fail "natpilotd lost the router after round $round"; }
done
touch "$LAB_DIR/forge-stop"
wait "$forger" || true
sent=$(awk '{n += $2} END {print n + 0}' "$LAB_DIR/forged")
sockets=$(awk '$1 != "5350" && $1 != "224.0.0.1" {print $1}' "$LAB_DIR/forged" | sort -u | wc -l)
[ "$sent" -gt 0 ] || fail "nothing was forged"
log "sent $sent forged packets ($sockets probe sockets of natpilotd hit besides 5350)"

log "natpilotd is up and truthful"
[ "$(np_pid)" = "$pid" ] || fail "natpilotd restarted or died"
np gateway --json >"$LAB_DIR/gateway.json"
grep -q "\"external_address\":\"$EXT_ADDR\"" "$LAB_DIR/gateway.json" || { cat "$LAB_DIR/gateway.json"; fail "external address"; }
grep -q "198.51.100.99" "$LAB_DIR/gateway.json" && fail "a forged external address was believed"
grep -q "control_url\":\"http://$GW_LAN:" "$LAB_DIR/gateway.json" || { jq . "$LAB_DIR/gateway.json" >&2; grep -v pinhole "$LAB_DIR/natpilotd.log" | tail -30 >&2; fail "natpilotd does not use the router IGD"; }
grep -q "control_url\":\"http://$EVIL_ADDR" "$LAB_DIR/gateway.json" && fail "natpilotd uses the rogue IGD"
grep -q "SOAPAction: .*PortMapping" "$LAB_DIR/rogue.log" && fail "natpilotd asked the rogue IGD for a mapping"

np_conflict() {
  np mapping list --device ata1 --json >"$LAB_DIR/mappings.json"
  jq -e '.mappings[] | select(.external_port == 5061 and (.transport | test("UDP"))) |
         select(.state == "MAPPING_STATE_FAILED") | select(.detail | contains("held on the gateway by 192.168.50.66:5061"))' \
    "$LAB_DIR/mappings.json" >/dev/null
}
wait_for 30 np_all_active ata1 13 || { np mapping list --device ata1; fail "ata1: not 13 active"; }
wait_for 30 np_conflict || { np mapping list --device ata1; fail "5061/udp does not say who holds it"; }
LC_ALL=C grep -q $'[\x01-\x08\x0b-\x1f\x7f]' "$LAB_DIR/mappings.json" && fail "control characters in the mapping list"
np mapping list --device ata1 >"$LAB_DIR/mappings.txt"
LC_ALL=C grep -q $'[\x01-\x08\x0b-\x1f\x7f]' "$LAB_DIR/mappings.txt" && fail "control characters reach the terminal"
np events -n 500 >"$LAB_DIR/events.txt" || fail "events cannot be listed"
LC_ALL=C grep -q $'[\x01-\x08\x0b-\x1f\x7f]' "$LAB_DIR/events.txt" && fail "control characters in the events"
in_ns "$NS_LAN" curl -sf http://127.0.0.1:8080/api/status >"$LAB_DIR/status.json" || fail "/api/status"
jq -e . "$LAB_DIR/status.json" >/dev/null || fail "/api/status is not JSON"

# The gateway's own table: natpilot's entries there are exactly those it shows active.
gw_table | grep -v " $EVIL_ADDR:" | awk '{print tolower($1), $2}' | sort >"$LAB_DIR/gw.set"
jq -r '.mappings[] | select(.state == "MAPPING_STATE_ACTIVE") |
       ((.transport | sub("TRANSPORT_"; "") | ascii_downcase) + " " + (.external_port | tostring))' \
  "$LAB_DIR/mappings.json" | sort >"$LAB_DIR/np.set"
diff -u "$LAB_DIR/gw.set" "$LAB_DIR/np.set" >&2 || fail "the gateway's entries and natpilot's active ones differ"
expect_traffic udp 10003 "$NS_DEV"
expect_traffic tcp 5061 "$NS_DEV"

log "the page kept streaming"
touch "$LAB_DIR/attack-done"
np device add after1 --address 192.168.50.11 --kind phone --sip 5070-5070 --rtp 11000-11001 >/dev/null
wait "$page" || { cat "$LAB_DIR/page.log" >&2; fail "the page test failed"; }
cat "$LAB_DIR/page.log" >&2
[ "$(np_pid)" = "$pid" ] || fail "natpilotd died"
grep -E "terminate|Segmentation|Aborted" "$LAB_DIR/natpilotd.log" && fail "natpilotd logged a crash"
log "PASS ($sent forged packets, 1 hostile description, 1 rogue IGD)"
