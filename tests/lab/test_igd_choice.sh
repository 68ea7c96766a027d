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

NS_ROGUE=${LAB_ID}-rogue ROGUE_ADDR=192.168.50.20 ROGUE_WAN=203.0.114.1
LAB_EXTRA_NS="$LAB_EXTRA_NS $NS_ROGUE"
ip netns add "$NS_ROGUE"
ip -n "$NS_ROGUE" link set lo up
ip link add "${LAB_ID}r" netns "$NS_ROGUE" type veth peer name rogue0 netns "$NS_GW"
ip -n "$NS_ROGUE" link set "${LAB_ID}r" name eth0
ip -n "$NS_GW" link set rogue0 master br0
ip -n "$NS_GW" link set rogue0 up
ip -n "$NS_ROGUE" addr add "$ROGUE_ADDR/24" dev eth0
ip -n "$NS_ROGUE" link set eth0 up
# Its "WAN": one end of a veth pair whose both ends stay in the namespace (nothing leaves it).
ip -n "$NS_ROGUE" link add wan0 type veth peer name wan1
ip -n "$NS_ROGUE" link set wan1 up
ip -n "$NS_ROGUE" addr add "$ROGUE_WAN/24" dev wan0
ip -n "$NS_ROGUE" link set wan0 up
in_ns "$NS_ROGUE" nft -f - <<NFT
table inet filter {
  chain forward { type filter hook forward priority 0; policy drop; jump miniupnpd; }
  chain miniupnpd { }
  chain prerouting { type nat hook prerouting priority -100; policy accept; jump prerouting_miniupnpd; }
  chain postrouting { type nat hook postrouting priority 100; policy accept; jump postrouting_miniupnpd; }
  chain prerouting_miniupnpd { }
  chain postrouting_miniupnpd { }
}
NFT
cat >"$LAB_DIR/rogue.conf" <<CONF
ext_ifname=wan0
listening_ip=eth0
http_port=2189
enable_upnp=yes
enable_natpmp=no
secure_mode=no
system_uptime=no
uuid=7a1e0000-8cf0-11e0-98ee-00000000beef
friendly_name=Rogue IGD
ext_perform_stun=no
$(miniupnpd_lab_conf)
CONF
miniupnpd_run "$NS_ROGUE" rogue
wait_for 15 grep -q "HTTP listening on port" "$LAB_DIR/rogue.log" || fail "the rogue miniupnpd did not start"
ROGUE_URL="http://$ROGUE_ADDR:2189/rootDesc.xml"
wait_for 10 in_ns "$NS_LAN" upnpc -u "$ROGUE_URL" -s || fail "the rogue IGD does not answer UPnP"
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
