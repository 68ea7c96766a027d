#!/usr/bin/env bash
# miniupnpd in secure mode with all three protocols on: PCP is chosen; natpilotd's own PBX gets PCP
# leases; an ATA at another address is refused by every protocol that could serve it (PCP
# THIRD_PARTY not allowed, UPnP 606/718; NAT-PMP cannot), falls back to static rules on its own, and the
# event, `mapping list` and the rule files say so; the rule file then makes the ATA reachable.
source "$(dirname "$0")/lab.sh"
lab_up secure
cat >"$LAB_DIR/natpilotd.toml" <<TOML
[rules]
wan_interface = "wan0"
lan_interface = "br0"
forward_chain = "inet filter forward"
TOML
np_start --config "$LAB_DIR/natpilotd.toml"
wait_for 15 np_protocol_is PCP || { np gateway; fail "with all three protocols on, PCP should be chosen"; }
wait_for 10 sh -c "[ \$(ip netns exec $NS_LAN $NATPILOT --socket $NP_SOCKET gateway --json | grep -o '\"answered\":true' | wc -l) -eq 3 ]" ||
  { np gateway; fail "all three protocols should have answered"; }
np device add pbx1 --address "$LAN_ADDR" --kind pbx --sip 5080-5081 --rtp 12000-12009
np device add ata1 --address "$DEV_ADDR" --kind ata --sip 5060-5061 --rtp 10000-10009
wait_for 30 np_all_active pbx1 14 || { np mapping list; fail "the PBX at natpilotd's own address is not mapped"; }
wait_for 30 np_count_is ata1 STATIC_RULE 14 ||
  { np mapping list --device ata1; fail "the refused ATA did not fall back to static rules"; }
np mapping list --device ata1 >"$LAB_DIR/list"
sed -n 1,3p "$LAB_DIR/list"
grep -q "static-rule .*third-party mapping refused" "$LAB_DIR/list" || fail "mapping list does not say why"
# miniupnpd answers 718 to AddPortMapping and 606 to IGDv2's AddAnyPortMapping for another host.
grep -qE "(718 ConflictInMappingEntry|606 ActionNotAuthorized)" "$LAB_DIR/list" ||
  fail "mapping list does not name UPnP's answer"
grep -q "PCP MAP .*UNSUPP_OPTION" "$LAB_DIR/list" || fail "mapping list does not name PCP's answer (THIRD_PARTY not allowed)"
np mapping list --device pbx1 >"$LAB_DIR/pbx"
grep -q " pcp " "$LAB_DIR/pbx" || fail "the PBX should be mapped with PCP"
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
