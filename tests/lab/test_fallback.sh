#!/usr/bin/env bash
# miniupnpd in secure mode maps only for the host that asks: natpilotd's own PBX gets leases, an
# ATA at another address is refused (718), falls back to static rules on its own, and the event,
# `mapping list` and the rule files say so; the rule file then makes the ATA reachable.
source "$(dirname "$0")/lab.sh"
lab_up secure
cat >"$LAB_DIR/natpilotd.toml" <<TOML
[rules]
wan_interface = "wan0"
lan_interface = "br0"
forward_chain = "inet filter forward"
TOML
np_start --config "$LAB_DIR/natpilotd.toml"
wait_for 15 np_gateway_ready || fail "natpilotd did not find the lab gateway"
np device add pbx1 --address "$LAN_ADDR" --kind pbx --sip 5080-5081 --rtp 12000-12009
np device add ata1 --address "$DEV_ADDR" --kind ata --sip 5060-5061 --rtp 10000-10009
wait_for 30 np_all_active pbx1 14 || { np mapping list; fail "the PBX at natpilotd's own address is not mapped"; }
wait_for 30 np_count_is ata1 STATIC_RULE 14 ||
  { np mapping list --device ata1; fail "the refused ATA did not fall back to static rules"; }
np mapping list --device ata1 >"$LAB_DIR/list"
sed -n 1,3p "$LAB_DIR/list"
grep -q "static-rule .*third-party mapping refused" "$LAB_DIR/list" || fail "mapping list does not say why"
grep -q "718 ConflictInMappingEntry" "$LAB_DIR/list" || fail "mapping list does not name the gateway's answer"
np_events_has "mapping.static-rule  ata1  14 mappings now need static rules" || fail "no static-rule event"
gw_table >"$LAB_DIR/table"
if grep -q "$DEV_ADDR" "$LAB_DIR/table"; then fail "the gateway holds entries for the refused ATA"; fi
expect_traffic udp 5080 "$NS_LAN"

log "the daemon's rule file forwards the ATA"
file="$LAB_DIR/natpilot-rules/natpilot.nft"
wait_for 10 grep -q "dnat to $DEV_ADDR" "$file" || fail "the rule file does not forward the ATA"
if grep -q "dnat to $LAN_ADDR" "$file"; then fail "the rule file forwards the PBX, which has leases"; fi
expect_no_traffic udp 5061 "$NS_DEV"
run_header apply "$file" "$NS_GW"
run_header wire "$file" "$NS_GW"
expect_traffic udp 5061 "$NS_DEV"
expect_traffic udp 10009 "$NS_DEV"
expect_traffic udp 5080 "$NS_LAN"
log "PASS"
