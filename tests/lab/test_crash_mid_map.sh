#!/usr/bin/env bash
# kill -9 of natpilotd in the middle of mapping a 100-port RTP range, then a restart: every wanted
# mapping ends up on the gateway exactly once, nothing natpilot made is left that nobody wants.
#   test_crash_mid_map.sh upnp   UPnP alone: tagged entries are adopted from the gateway's table
#   test_crash_mid_map.sh pcp    PCP alone: nonces stored before each request make re-sends renewals
case "${1:-}" in
  pcp) export GW_UPNP=no GW_ONLY=pcp GW_PCP_THIRDPARTY=yes want=PCP ;;
  upnp) export GW_NATPMP=no want=UPNP_IGD ;;
  *) echo "usage: test_crash_mid_map.sh pcp|upnp"; exit 2 ;;
esac
source "$(dirname "$0")/lab.sh"
lab_up
np_start
wait_for 15 np_protocol_is "$want" || { np gateway; fail "$want was not chosen"; }
np device add ata1 --address "$DEV_ADDR" --kind ata --sip 5060-5061 --rtp 10000-10099
# Kill it as soon as the gateway has some of the 104 forwards (PCP maps one in about a
# millisecond, so this polls without pausing).
pid=$(np_pid)
end=$((SECONDS + 20))
until [ "$(ip netns exec "$NS_GW" nft list chain inet filter prerouting_miniupnpd | grep -c dnat)" -ge 1 ]; do
  [ "$SECONDS" -lt "$end" ] || fail "mapping did not start"
done
kill -9 "$pid"
wait_for 5 sh -c "! kill -0 $pid 2>/dev/null" || fail "natpilotd survived kill -9"
partial=$(gw_dnat_count)
log "killed with $partial of 104 forwards on the gateway"
np_start
wait_for 60 np_all_active ata1 104 || { np mapping list | sed -n 1,5p; fail "not all mapped after restart"; }
gw_dnat >"$LAB_DIR/dnat"
[ "$(wc -l <"$LAB_DIR/dnat")" -eq 104 ] || fail "gateway has $(wc -l <"$LAB_DIR/dnat") forwards, want 104"
dups=$(sort "$LAB_DIR/dnat" | uniq -d | wc -l)
[ "$dups" -eq 0 ] || fail "$dups forwards are on the gateway twice"
expect_traffic udp 10099 "$NS_DEV"
np device rm ata1
wait_for 30 sh -c "[ \$(ip netns exec $NS_GW nft list chain inet filter prerouting_miniupnpd | grep -c dnat) -eq 0 ]" ||
  fail "entries left on the gateway after removal: $(gw_dnat_count)"
[ "$partial" -lt 104 ] || log "note: all 104 were mapped before the kill landed"
log "PASS ($partial forwards existed at the crash)"
