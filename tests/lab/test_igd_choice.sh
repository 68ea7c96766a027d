#!/usr/bin/env bash
# Which UPnP IGD: next to the real router, another LAN host (namespace `rogue`, 192.168.50.20) runs
# an IGD of its own (a second miniupnpd) whose WAN side claims a public address, while the real
# router sits behind another NAT (private WAN address; miniupnpd then reports no external
# address). miniupnpc's ranking (UPNP_GetValidIGD) preferred the rogue one. natpilotd must never
# send it SOAP, must list it in `natpilot gateway` as skipped, and must say what the router's IGD is.
export GW_NATPMP=no  # UPnP IGD alone
export LAB_UPSTREAM_NAT=private
source "$(dirname "$0")/lab.sh"
lab_up

NS_ROGUE=${LAB_ID}-rogue ROGUE_ADDR=192.168.50.20
lab_lan_host "$NS_ROGUE" "$ROGUE_ADDR" r
lab_rogue_igd "$NS_ROGUE" "$ROGUE_ADDR" 203.0.114.1
rogue_soap() { grep -c "SOAPAction" "$LAB_DIR/rogue.log" || true; }
before=$(rogue_soap)  # upnpc's own check above

np_start
np_lists_rogue() { np gateway --json >"$LAB_DIR/gateway.json" && grep -q "$ROGUE_ADDR" "$LAB_DIR/gateway.json"; }
wait_for 20 np_lists_rogue ||
  { np gateway; fail "natpilot gateway does not list the rogue IGD"; }
np gateway >"$LAB_DIR/gateway.txt"
np gateway --json >"$LAB_DIR/gateway.json"
cat "$LAB_DIR/gateway.txt" >&2

grep -q "\"address\":\"$ROGUE_ADDR\"" "$LAB_DIR/gateway.json" || fail "no other_igds entry for $ROGUE_ADDR"
grep -q '"skipped":true' "$LAB_DIR/gateway.json" || fail "the rogue IGD is not marked skipped"
grep -q '"friendly_name":"Rogue IGD"' "$LAB_DIR/gateway.json" || fail "the rogue IGD's name was not read"
grep -q "control_url\":\"http://$ROGUE_ADDR" "$LAB_DIR/gateway.json" && fail "natpilotd uses the rogue IGD"
grep -q "OTHER IGD" "$LAB_DIR/gateway.txt" || fail "natpilot gateway prints no table of other IGDs"
grep -q "a UPnP IGD answered at the gateway" "$LAB_DIR/gateway.json" ||
  fail "the detail does not say what the router's IGD answered"

log "a device: no protocol maps it (the router's IGD has no external address), and never through the rogue"
np device add ata1 --address "$DEV_ADDR" --kind ata --sip 5060-5060 --rtp 10000-10001
sleep 3
[ "$(rogue_soap)" -eq "$before" ] || { grep SOAPAction "$LAB_DIR/rogue.log" >&2; fail "natpilotd sent SOAP to the rogue IGD"; }
log "PASS"
