#!/usr/bin/env bash
# The router reboots and forgets every mapping (miniupnpd restarted with its lease file removed):
# natpilotd notices on its own (PCP: the epoch went back; UPnP: entries read back are missing) and
# restores every mapping; traffic flows again within the bound the README states: 20 s from the
# start of a 4 s reboot with the check interval at 5 s (the downtime, one check interval, the
# probe backoff of 5 s, and the time to re-map).
#   test_reboot.sh pcp            all protocols on, PCP chosen, checked every 5 s
#   test_reboot.sh upnp           UPnP IGD alone, checked every 5 s
#   test_reboot.sh pcp-announce   PCP, the periodic check at 10 min: the ANNOUNCE the restarted
#                                 gateway multicasts is what brings the mappings back
VERIFY_S=5
case "${1:-}" in
  pcp) export GW_PCP_THIRDPARTY=yes want=PCP event=gateway.state-lost ;;
  pcp-announce) export GW_PCP_THIRDPARTY=yes want=PCP event=gateway.state-lost VERIFY_S=600 ;;
  # UPnP: a read-back sample after the reboot misses entries (gateway.entries-missing), or, when
  # the periodic check's GetExternalIPAddress meets the router while it is down, the table read on
  # its return does (mapping.lost ... entries missing on the gateway): either is natpilotd noticing.
  upnp) export GW_NATPMP=no want=UPNP_IGD event='gateway.entries-missing\|entries missing on the gateway' ;;
  *) echo "usage: test_reboot.sh pcp|upnp|pcp-announce"; exit 2 ;;
esac
source "$(dirname "$0")/lab.sh"
BOUND_S=20
lab_up
printf '[gateway]\nverify_interval_s = %s\n' "$VERIFY_S" >"$LAB_DIR/natpilotd.toml"
np_start --config "$LAB_DIR/natpilotd.toml" --lease-lifetime 600
wait_for 15 np_protocol_is "$want" || { np gateway; fail "$want was not chosen"; }
np device add ata1 --address "$DEV_ADDR" --kind ata --sip 5060-5061 --rtp 10000-10009
wait_for 30 np_all_active ata1 14 || { np mapping list; fail "ata1 not mapped"; }
expect_traffic udp 10005 "$NS_DEV"

log "the router reboots and forgets everything"
start=$SECONDS
lab_gateway_stop forget
# A reboot takes a while; the epoch check of RFC 6887 8.5 allows 2 s of drift, so a restart
# quicker than that is indistinguishable from a working gateway.
sleep 4
lab_gateway_start
[ "$(gw_dnat_count)" -eq 0 ] || [ "$1" != upnp ] || fail "the restarted gateway still has $(gw_dnat_count) forwards"
wait_for $((BOUND_S + 10)) sh -c "[ \$(ip netns exec $NS_GW nft list chain inet filter prerouting_miniupnpd | grep -c 'dnat ip to $DEV_ADDR') -eq 14 ]" ||
  { np mapping list; fail "mappings were not restored"; }
took=$((SECONDS - start))
log "restored 14 mappings ${took} s after the reboot began (bound ${BOUND_S} s)"
[ "$took" -le "$BOUND_S" ] || fail "restoring took ${took} s, more than ${BOUND_S} s"
expect_traffic udp 10005 "$NS_DEV"
expect_traffic tcp 5060 "$NS_DEV"
np_events_has "$event" || fail "no $event event"
np_all_active ata1 14 || fail "mapping list does not show all active"
if [ "$1" = pcp-announce ]; then
  grep -q "PCP ANNOUNCE from $GW_LAN" "$LAB_DIR/natpilotd.log" || fail "the restore did not come from the ANNOUNCE"
fi
log "PASS"
