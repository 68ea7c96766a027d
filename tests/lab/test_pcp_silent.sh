#!/usr/bin/env bash
# PCP goes silent for a while (natpilotd's PCP packets dropped at the gateway; UPnP over TCP still
# answers), as a lossy minute can make it look, and comes back without announcing itself. While it
# is silent natpilotd must not claim what it cannot confirm, and must leave nothing behind; once
# PCP answers again every mapping must be active again within the bound, with nothing announcing
# it (the chaos test's loss episode in CI, made deterministic):
#   - the PCP leases leave `active` when the probe finds PCP gone; UPnP may take them over (or be
#     refused while miniupnpd's PCP side still holds the forward);
#   - PCP is probed again within seconds (5, 10, 20 s ...), not at probe_interval (300 s);
#   - afterwards the gateway's forwards equal the mappings shown active, each once.
export GW_PCP_THIRDPARTY=yes
source "$(dirname "$0")/lab.sh"
BOUND_S=30  # from PCP answering again: the re-probe backoff reached (5 + 10 s), a probe, a pass
lab_up
printf '[gateway]\nverify_interval_s = 5\n' >"$LAB_DIR/natpilotd.toml"
np_start --config "$LAB_DIR/natpilotd.toml" --lease-lifetime 600
wait_for 15 np_protocol_is PCP || { np gateway; fail "PCP was not chosen"; }
np device add ata1 --address "$DEV_ADDR" --kind ata --sip 5060-5061 --rtp 10000-10009 >/dev/null
wait_for 30 np_all_active ata1 14 || { np mapping list; fail "ata1 not mapped"; }

# "proto port addr:port" of the mappings shown active, sorted.
np_active() {
  np mapping list --json | jq -r '.mappings[]? | select(.state == "MAPPING_STATE_ACTIVE") |
    "\(.transport | ltrimstr("TRANSPORT_") | ascii_downcase) \(.external_port) \(.internal_address):\(.internal_port)"' | sort
}
# Every mapping shown active is forwarded by the gateway (no phantom).
no_phantom() {
  local phantom
  phantom=$(comm -23 <(np_active) <(gw_dnat | sort -u))
  [ -z "$phantom" ] || { echo "$phantom" | head -5 >&2; return 1; }
}
truthful() { [ "$(np_active)" = "$(gw_dnat | sort)" ]; }

pcp_link() {
  in_ns "$NS_GW" nft delete table inet silent 2>/dev/null || true
  [ "$1" = off ] || return 0
  in_ns "$NS_GW" nft -f - <<NFT
table inet silent {
  chain input { type filter hook input priority -5; policy accept; ip saddr $LAN_ADDR udp dport 5351 drop; }
}
NFT
}

log "PCP goes silent (UDP 5351 from natpilotd dropped at the gateway)"
pcp_link off
wait_for 40 np_protocol_is UPNP_IGD || { np gateway; fail "natpilotd did not notice that PCP went silent"; }
no_phantom || fail "mappings shown active that the gateway does not forward while PCP was silent"
sleep 6  # UPnP's requests meet the forwards PCP still holds
no_phantom || fail "mappings shown active that the gateway does not forward while PCP was silent"
log "while silent: $(np_count ata1 ACTIVE) active, $(gw_dnat_count) forwards on the gateway"

log "PCP answers again; nothing announces it"
pcp_link on
back=$SECONDS
wait_for $((BOUND_S + 30)) np_protocol_is PCP || { np gateway; fail "PCP was not taken up again"; }
wait_for $((BOUND_S + 30)) np_all_active ata1 14 || { np mapping list; fail "not all active after PCP came back"; }
took=$((SECONDS - back))
wait_for 10 truthful || {
  diff <(np_active) <(gw_dnat | sort) >&2
  fail "the gateway's forwards differ from the mappings shown active"
}
log "PCP in use and all 14 active ${took} s after PCP answered (bound ${BOUND_S} s); gateway table = active set"
[ "$took" -le "$BOUND_S" ] || fail "took ${took} s, more than ${BOUND_S} s"
grep -q "pcp answered before and not now" "$LAB_DIR/natpilotd.log" || fail "no early re-probe was logged"
expect_traffic udp 10005 "$NS_DEV"
expect_traffic tcp 5060 "$NS_DEV"
log "PASS"
