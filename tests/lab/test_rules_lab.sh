#!/usr/bin/env bash
# Static rules on a router that does not map at all (miniupnpd stopped): the files natpilot
# generates, applied in gw with their headers' own commands, forward real UDP and TCP from wan to
# each device on exactly its ports and nothing else; removing them stops the traffic and leaves the
# router's ruleset as it was. First nftables, then iptables.
source "$(dirname "$0")/lab.sh"
lab_up
lab_gateway_stop forget
np_start
np device add ata1 --address "$DEV_ADDR" --kind ata
np device add pbx1 --address "$LAN_ADDR" --kind pbx --sip 5080-5081 --sip-transports udp --rtp 12000-12009

log "the daemon keeps the rule files current for devices no gateway serves"
wait_for 20 test -s "$LAB_DIR/natpilot-rules/natpilot.nft" || fail "no rule file in the daemon's folder"
wait_for 10 np_events_has "rules.written  .*2 devices need static rules" || fail "no rules.written event"

check_forwarding() {
  expect_traffic udp 5060 "$NS_DEV"
  expect_traffic tcp 5065 "$NS_DEV"
  expect_traffic udp 10042 "$NS_DEV"
  expect_traffic udp 5081 "$NS_LAN"
  expect_traffic udp 12009 "$NS_LAN"
  expect_no_traffic udp 6000 "$NS_DEV"
  expect_no_traffic tcp 5080 "$NS_LAN"   # the PBX's SIP is UDP only
  expect_no_traffic udp 12010 "$NS_LAN"
}

for format in nftables iptables; do
  log "== $format"
  if [ "$format" = iptables ]; then
    # A router that uses iptables has its tables and built-in chains already; load them as such a
    # router's firewall script would (iptables-nft would otherwise create chains on first use).
    printf '%s\n' '*nat' ':PREROUTING ACCEPT [0:0]' ':INPUT ACCEPT [0:0]' ':OUTPUT ACCEPT [0:0]' \
      ':POSTROUTING ACCEPT [0:0]' '-A POSTROUTING -o wan0 -j MASQUERADE' 'COMMIT' '*filter' \
      ':INPUT ACCEPT [0:0]' ':FORWARD ACCEPT [0:0]' ':OUTPUT ACCEPT [0:0]' \
      '-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT' 'COMMIT' |
      in_ns "$NS_GW" iptables-restore
  fi
  file="$LAB_DIR/rules.$format"
  np rules --format "$format" --wan-if wan0 --lan-if br0 --forward-chain "inet filter forward" --out "$file"
  grep -q "^# apply: " "$file" || fail "$format file has no apply line"
  before=$(gw_ruleset)
  expect_no_traffic udp 5060 "$NS_DEV"
  run_header apply "$file" "$NS_GW"
  run_header apply "$file" "$NS_GW"   # applying twice is the same as once
  run_header wire "$file" "$NS_GW"
  check_forwarding
  run_header remove "$file" "$NS_GW"
  run_header unwire "$file" "$NS_GW"
  expect_no_traffic udp 5060 "$NS_DEV"
  expect_no_traffic udp 12009 "$NS_LAN"
  after=$(gw_ruleset)
  [ "$after" = "$before" ] || { diff <(echo "$before") <(echo "$after") >&2 || true; fail "the router's rules differ after removal"; }
  log "ok: $format forwards exactly the plan and leaves no trace"
done
log "PASS"
