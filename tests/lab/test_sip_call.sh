#!/usr/bin/env bash
# The call works: a SIP user agent on the internet side (sipp in `wan`) calls a PBX on the LAN
# (sipp in `lan`, where natpilotd runs) through the gateway's external address. Three runs:
#   1. no mappings: the call fails;
#   2. mappings, but the PBX advertises its private address (no NAT settings): the call connects
#      and the audio is one-way (LAN->internet RTP arrives, internet->LAN RTP does not);
#   3. the PBX advertises what natpilot says (natpilot pbx-config): RTP flows both ways;
#   4. the gateway gets a new external address between two calls: the second call, made with what
#      natpilotd rewrote into the [[pbx]] file, has two-way audio at the new address.
# RTP is counted with nft counters in `wan` and `lan`; each run uses fresh caller ports, because
# the gateway's connection tracking outlives a call. Also checked: the [[pbx]] file and hook that
# natpilotd keeps current, and the doctor's answers (STUN on `wan` sees the gateway's address).
export GW_NATPMP=no  # UPnP IGD
source "$(dirname "$0")/lab.sh"
command -v sipp >/dev/null || { echo "sipp (sip-tester) is not installed"; exit 77; }
lab_up
SIP_DIR=$(cd "$(dirname "$0")/sip" && pwd)
RTP_FIRST=16000 RTP_LAST=16009
cat >"$LAB_DIR/natpilot.toml" <<TOML
[gateway]
verify_interval_s = 5   # UPnP alone: the periodic check is what notices a new address

[doctor]
stun_server = "$WAN_ADDR:3478"

[[pbx]]
device = "pbx1"
flavor = "json"
file = "$LAB_DIR/pbx1.json"
on_change = ["/bin/sh", "-c", "env | grep ^NATPILOT_ | sort > '$LAB_DIR/hook.env'; echo reloaded"]
hook_timeout_s = 5

[[pbx]]                         # a hook that hangs: killed at its timeout, reported, stalls nothing
device = "pbx1"
on_change = ["sleep", "30"]
hook_timeout_s = 2
TOML
np_start --config "$LAB_DIR/natpilot.toml"

# Counters: RTP from the internet reaching the PBX, and RTP from the PBX reaching the caller.
in_ns "$NS_LAN" nft -f - <<NFT
table ip count {
  chain input {
    type filter hook input priority -10; policy accept;
    ip saddr $WAN_ADDR udp dport $RTP_FIRST-$RTP_LAST counter name "from_wan"
  }
  counter from_wan {}
}
NFT
in_ns "$NS_WAN" nft -f - <<NFT
table ip count {
  chain input {
    type filter hook input priority -10; policy accept;
    ip daddr $WAN_ADDR udp dport 17000-17999 counter name "from_lan"
  }
  counter from_lan {}
}
NFT
packets() { in_ns "$1" nft list counter ip count "$2" | sed -nE 's/.*packets ([0-9]+).*/\1/p'; }

# call RUN SDP_IP SDP_SIP_PORT SDP_RTP_PORT: one call; sets CALL_RC, FROM_WAN, FROM_LAN (packets).
call() {
  local run=$1 sdp_ip=$2 sdp_sip=$3 sdp_rtp=$4
  local wan0 lan0
  wan0=$(packets "$NS_LAN" from_wan) lan0=$(packets "$NS_WAN" from_lan)
  in_ns "$NS_LAN" sipp -sf "$SIP_DIR/uas.xml" -i "$LAN_ADDR" -p 5060 -mp "$RTP_FIRST" -m 1 -nostdin \
    -timeout 25s -key sdp_ip "$sdp_ip" -key sdp_sip_port "$sdp_sip" -key sdp_rtp_port "$sdp_rtp" \
    >"$LAB_DIR/uas.$run.log" 2>&1 &
  local uas=$!
  sleep 0.5
  CALL_RC=0
  # Fresh caller ports each run: SIP 5070+run, RTP 17000+100*run.
  in_ns "$NS_WAN" sipp "$EXT_ADDR:5060" -sf "$SIP_DIR/uac.xml" -i "$WAN_ADDR" -p $((5070 + run)) \
    -mp $((17000 + 100 * run)) -m 1 -nostdin -timeout 15s -recv_timeout 6s \
    >"$LAB_DIR/uac.$run.log" 2>&1 || CALL_RC=$?
  kill "$uas" 2>/dev/null || true
  wait "$uas" 2>/dev/null || true
  FROM_WAN=$(( $(packets "$NS_LAN" from_wan) - wan0 ))
  FROM_LAN=$(( $(packets "$NS_WAN" from_lan) - lan0 ))
  log "run $run: caller exit $CALL_RC; RTP internet->PBX $FROM_WAN packets, PBX->internet $FROM_LAN packets"
}

log "run 1: no mappings"
call 1 "$LAN_ADDR" 5060 "$RTP_FIRST"
[ "$CALL_RC" -ne 0 ] || fail "the call connected without any forward"
[ "$FROM_WAN" -eq 0 ] || fail "RTP reached the PBX without any forward"

np device add pbx1 --address "$LAN_ADDR" --kind pbx --sip 5060-5060 --sip-transports udp \
  --rtp "$RTP_FIRST-$RTP_LAST" >/dev/null
wait_for 30 np_all_active pbx1 11 || { np mapping list; fail "pbx1 not active"; }

log "run 2: mappings, but the PBX advertises its private address"
call 2 "$LAN_ADDR" 5060 "$RTP_FIRST"
[ "$CALL_RC" -eq 0 ] || { tail -20 "$LAB_DIR/uac.2.log"; fail "the call did not connect with the SIP port forwarded"; }
[ "$FROM_LAN" -gt 0 ] || fail "no RTP from the PBX reached the caller"
[ "$FROM_WAN" -eq 0 ] || fail "RTP reached the PBX although it advertised a private address"
log "ok: one-way audio, as a PBX without NAT settings has"

log "run 3: the PBX advertises what natpilot says"
np pbx-config pbx1 --flavor json >"$LAB_DIR/view.json"
ext=$(sed -nE 's/.*"external_address": "([0-9.]+)".*/\1/p' "$LAB_DIR/view.json")
sip_ext=$(sed -nE 's/.*"sip_external_port": ([0-9]+).*/\1/p' "$LAB_DIR/view.json")
rtp_start=$(sed -nE 's/.*"rtp_start": ([0-9]+).*/\1/p' "$LAB_DIR/view.json")
[ "$ext" = "$EXT_ADDR" ] && [ "$sip_ext" = 5060 ] && [ "$rtp_start" = "$RTP_FIRST" ] ||
  { cat "$LAB_DIR/view.json"; fail "natpilot's view is not the gateway's address and the mapped ports"; }
call 3 "$ext" "$sip_ext" "$rtp_start"
[ "$CALL_RC" -eq 0 ] || { tail -20 "$LAB_DIR/uac.3.log"; fail "the call did not connect"; }
[ "$FROM_LAN" -gt 0 ] || fail "no RTP from the PBX reached the caller"
[ "$FROM_WAN" -gt 0 ] || fail "no RTP from the caller reached the PBX"
log "ok: two-way audio"

log "natpilotd keeps the PBX's file current and runs its hook"
wait_for 10 grep -q "\"external_address\": \"$EXT_ADDR\"" "$LAB_DIR/pbx1.json" || { cat "$LAB_DIR/pbx1.json"; fail "no pbx1.json"; }
grep -q '"complete": true' "$LAB_DIR/pbx1.json" || fail "pbx1.json is not complete"
wait_for 10 grep -q "^NATPILOT_EXTERNAL_ADDRESS=$EXT_ADDR$" "$LAB_DIR/hook.env" || fail "the hook did not get the external address"
grep -q "^NATPILOT_RTP_START=$RTP_FIRST$" "$LAB_DIR/hook.env" || fail "the hook did not get the RTP range"
np_events_has "pbx.hook-ran  pbx1 .*exit 0; output: reloaded" || fail "the hook's run is not in the events"
np_events_has "pbx.config-written  pbx1 .*external $EXT_ADDR" || fail "the file's writing is not in the events"
wait_for 10 np_events_has "pbx.hook-failed  pbx1  sleep: killed after the 2 s timeout" || fail "the hanging hook is not reported"
log "ok: the hanging hook was killed and reported; the calls above ran while it hung"

log "the doctor"
np doctor >"$LAB_DIR/doctor"
cat "$LAB_DIR/doctor" >&2
grep -q "^\[ok\] gateway: .*upnp-igd" "$LAB_DIR/doctor" || fail "doctor: gateway"
grep -q "^\[WARNING\] external-address: .*documentation (203.0.113.0/24" "$LAB_DIR/doctor" || fail "doctor: address range"
grep -q "^\[ok\] stun: STUN server $WAN_ADDR:3478 sees $EXT_ADDR, the same as the gateway reports" "$LAB_DIR/doctor" || fail "doctor: stun"
grep -q "^\[ok\] mappings: all 11 wanted forwards are in place" "$LAB_DIR/doctor" || fail "doctor: mappings"
grep -q "^\[ok\] upstream-nat: the STUN server is reached right after the gateway" "$LAB_DIR/doctor" || fail "doctor: path"
grep -q "^\[info\] sip-alg: " "$LAB_DIR/doctor" || fail "doctor: SIP ALG reminder"

NEW_ADDR=203.0.113.9
log "run 4: the gateway's external address changes ($EXT_ADDR -> $NEW_ADDR) between two calls"
in_ns "$NS_GW" ip addr del "$EXT_ADDR/24" dev wan0
in_ns "$NS_GW" ip addr add "$NEW_ADDR/24" dev wan0
kill -USR1 "$(cat "$LAB_DIR/miniupnpd.pid")"
wait_for 20 grep -q "\"external_address\": \"$NEW_ADDR\"" "$LAB_DIR/pbx1.json" ||
  { cat "$LAB_DIR/pbx1.json"; fail "the [[pbx]] file still has the old address"; }
wait_for 10 grep -q "^NATPILOT_EXTERNAL_ADDRESS=$NEW_ADDR$" "$LAB_DIR/hook.env" || fail "the hook did not get the new address"
# The PBX takes what natpilotd wrote: the call goes to the new address with it in SIP and SDP.
ext=$(sed -nE 's/.*"external_address": "([0-9.]+)".*/\1/p' "$LAB_DIR/pbx1.json")
sip_ext=$(sed -nE 's/.*"sip_external_port": ([0-9]+).*/\1/p' "$LAB_DIR/pbx1.json")
rtp_start=$(sed -nE 's/.*"rtp_start": ([0-9]+).*/\1/p' "$LAB_DIR/pbx1.json")
EXT_ADDR=$ext call 4 "$ext" "$sip_ext" "$rtp_start"
[ "$CALL_RC" -eq 0 ] || { tail -20 "$LAB_DIR/uac.4.log"; fail "the call to the new address did not connect"; }
[ "$FROM_LAN" -gt 0 ] || fail "no RTP from the PBX reached the caller after the change"
[ "$FROM_WAN" -gt 0 ] || fail "no RTP from the caller reached the PBX after the change"
log "ok: two-way audio at the new address, with the configuration natpilotd rewrote"
log "PASS"
