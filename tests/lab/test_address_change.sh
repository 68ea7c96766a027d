#!/usr/bin/env bash
# The gateway gets a new external address (its WAN address changed, miniupnpd told with SIGUSR1, as
# a router's reconnect script does): how soon does the PBX learn it? Measured from the change to the
# NAT view (`natpilot pbx-config`), the `--follow` stream, the [[pbx]] file and the hook; traffic
# from wan must then reach the PBX at the new address.
#   test_address_change.sh natpmp   NAT-PMP alone: its public address announcement (bound 5 s)
#   test_address_change.sh pcp      PCP: miniupnpd's ANNOUNCE (epoch reset) and the renewals' answers
#                                   (bound 5 s)
#   test_address_change.sh upnp     UPnP alone, default settings: the periodic check's
#                                   GetExternalIPAddress (every 60 s; bound 65 s). GENA events are
#                                   not subscribed to (not built).
case "${1:-}" in
  natpmp) export GW_UPNP=no GW_ONLY=nat-pmp want=NAT_PMP BOUND_S=5 ;;
  pcp) export GW_UPNP=no GW_ONLY=pcp want=PCP BOUND_S=5 ;;
  upnp) export GW_NATPMP=no want=UPNP_IGD BOUND_S=65 EVENTS=false ;;
  gena) export GW_NATPMP=no want=UPNP_IGD BOUND_S=5 ;;
  *) echo "usage: test_address_change.sh natpmp|pcp|upnp|gena"; exit 2 ;;
esac
source "$(dirname "$0")/lab.sh"
NEW_ADDR=203.0.113.9
lab_up
cat >"$LAB_DIR/natpilotd.toml" <<TOML
[gateway]
upnp_events = ${EVENTS:-true}

[[pbx]]
device = "pbx1"
flavor = "json"
file = "$LAB_DIR/pbx1.json"
on_change = ["/bin/sh", "-c", "echo \"\$(date +%s.%N) \$NATPILOT_EXTERNAL_ADDRESS\" >> '$LAB_DIR/hook.log'"]
TOML
np_start --config "$LAB_DIR/natpilotd.toml"
wait_for 15 np_protocol_is "$want" || { np gateway; fail "$want was not chosen"; }
np device add pbx1 --address "$LAN_ADDR" --kind pbx --sip 5080-5080 --rtp 12000-12003 >/dev/null
wait_for 30 np_all_active pbx1 6 || { np mapping list; fail "pbx1 not mapped"; }
wait_for 10 grep -q "\"external_address\": \"$EXT_ADDR\"" "$LAB_DIR/pbx1.json" || fail "no [[pbx]] file with $EXT_ADDR"
np pbx-config pbx1 --flavor json --follow >"$LAB_DIR/follow.out" 2>&1 &
follow_pid=$!
wait_for 10 grep -q "$EXT_ADDR" "$LAB_DIR/follow.out" || fail "the --follow stream did not start"
if [ "$1" = gena ]; then
  wait_for 10 grep -q "UPnP events: subscribed to" "$LAB_DIR/natpilotd.log" || fail "natpilotd did not subscribe to the IGD's events"
  grep "UPnP events: subscribed to" "$LAB_DIR/natpilotd.log" | tail -1
fi

# now in seconds with fractions
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
view_has() { np pbx-config pbx1 --flavor json >"$LAB_DIR/view.out" && grep -q "\"external_address\": \"$NEW_ADDR\"" "$LAB_DIR/view.out"; }

log "the gateway's external address changes: $EXT_ADDR -> $NEW_ADDR"
in_ns "$NS_GW" ip addr del "$EXT_ADDR/24" dev wan0
in_ns "$NS_GW" ip addr add "$NEW_ADDR/24" dev wan0
kill -USR1 "$(cat "$LAB_DIR/miniupnpd.pid")"
t0=$(now)
wait_for $((BOUND_S + 10)) view_has || { np gateway; fail "the NAT view still has the old address"; }
t_view=$(since "$t0")
wait_for 10 grep -q "$NEW_ADDR" "$LAB_DIR/follow.out" || fail "the --follow stream did not send the new address"
t_follow=$(since "$t0")
wait_for 10 grep -q "\"external_address\": \"$NEW_ADDR\"" "$LAB_DIR/pbx1.json" || fail "the [[pbx]] file was not rewritten"
t_file=$(since "$t0")
wait_for 10 grep -q " $NEW_ADDR\$" "$LAB_DIR/hook.log" || fail "the hook did not run with the new address"
t_hook=$(since "$t0")
kill "$follow_pid" 2>/dev/null || true
log "new address in the NAT view after ${t_view} s, the stream ${t_follow} s, the file ${t_file} s, the hook ${t_hook} s (bound ${BOUND_S} s)"
awk -v t="$t_hook" -v b="$BOUND_S" 'BEGIN { exit !(t <= b) }' || fail "the PBX learnt it after ${t_hook} s, more than ${BOUND_S} s"
np_events_has "gateway.external-address-changed" || fail "no gateway.external-address-changed event"
grep "gateway.external-address-changed" "$LAB_DIR/events" | tail -1
case "$1" in
  gena) noticed="noticed by the check after a UPnP event" ;;
  upnp) noticed="noticed by the periodic check" ;;  # events off: nothing else can tell
  *) noticed="noticed by" ;;
esac
grep "gateway.external-address-changed" "$LAB_DIR/events" | tail -1 | grep -q "$noticed" ||
  fail "the event does not say: $noticed"
np doctor >"$LAB_DIR/doctor.out" || true
grep -q "changed from $EXT_ADDR to $NEW_ADDR" "$LAB_DIR/doctor.out" || { cat "$LAB_DIR/doctor.out"; fail "the doctor does not tell the change"; }
grep -q "configuration followed" "$LAB_DIR/doctor.out" || { cat "$LAB_DIR/doctor.out"; fail "the doctor does not tell the PBX's lag"; }
if [ "$1" = gena ]; then
  grep -q "UPnP events: subscribed to" "$LAB_DIR/doctor.out" || { cat "$LAB_DIR/doctor.out"; fail "the doctor does not tell the subscription"; }
fi
wait_for 20 np_all_active pbx1 6 || { np mapping list; fail "not all active after the change"; }
np mapping list --json | jq -e --arg a "$NEW_ADDR" '[.mappings[] | select(.external_address != $a)] | length == 0' >/dev/null ||
  { np mapping list; fail "a lease still shows the old address"; }
EXT_ADDR=$NEW_ADDR expect_traffic udp 12001 "$NS_LAN"
EXT_ADDR=$NEW_ADDR expect_traffic tcp 5080 "$NS_LAN"
log "PASS"
