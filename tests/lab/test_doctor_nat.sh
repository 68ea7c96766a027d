#!/usr/bin/env bash
# The NAT doctor behind another NAT: the gateway's WAN side is in carrier-grade NAT space
# (100.64.0.0/10) or a private range, with the provider's (or a first router's) NAT between it and
# the internet. miniupnpd 2.3.1 then reports no external address at all (it will not give out a
# reserved one), so the doctor traces the way to the STUN server on `wan` and names the NAT router
# after the gateway by its address. Usage: test_doctor_nat.sh cgnat|private
export LAB_UPSTREAM_NAT=${1:?cgnat or private}
export GW_NATPMP=${GW_NATPMP:-yes}
source "$(dirname "$0")/lab.sh"
lab_up
printf '[doctor]\nstun_server = "%s:3478"\n' "$WAN_ADDR" >"$LAB_DIR/natpilot.toml"
np_start --config "$LAB_DIR/natpilot.toml"
wait_for 20 np_gateway_found || { np gateway; fail "no gateway"; }
np doctor >"$LAB_DIR/doctor"
cat "$LAB_DIR/doctor" >&2
case "$LAB_UPSTREAM_NAT" in
  cgnat) want="router 2 on the way to the internet, 100.64.7.1, is carrier-grade NAT (100.64.0.0/10, RFC 6598)" ;;
  private) want="router 2 on the way to the internet, 192.168.77.1, is private (192.168.0.0/16, RFC 1918): double NAT, another NAT router" ;;
esac
grep -q "^\[PROBLEM\] upstream-nat: $want" "$LAB_DIR/doctor" || fail "doctor does not name the $LAB_UPSTREAM_NAT router"
grep -q "^\[WARNING\] external-address: the gateway answers but does not report an external address" "$LAB_DIR/doctor" ||
  fail "doctor does not say the gateway hides its address"
grep -q "^\[info\] stun: STUN server $WAN_ADDR:3478 sees $EXT_ADDR" "$LAB_DIR/doctor" || fail "doctor: what STUN sees"
np doctor --json >"$LAB_DIR/doctor.json"
grep -q "\"stun_address\":\"$EXT_ADDR\"" "$LAB_DIR/doctor.json" || fail "doctor --json lacks the STUN address"
log "PASS"
