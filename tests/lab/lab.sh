# The namespace lab: a real miniupnpd gateway between an internet side and a LAN, made and torn down
# by the test that sources this file. Traffic stays inside the lab's own namespaces.
#
#   wan  (203.0.113.2, STUN responder)  ── wan0 ── gw (miniupnpd, 203.0.113.1 / 192.168.50.1, br0)
#   lan  (192.168.50.2, natpilotd)      ── br0 ──┤
#   dev  (192.168.50.10, a device)      ── br0 ──┘
#
# Needs root. Set NATPILOTD, NATPILOT and LABTOOL to the binaries before sourcing.
set -euo pipefail
: "${NATPILOTD:?set NATPILOTD to the natpilotd binary}" "${NATPILOT:?set NATPILOT to the natpilot binary}" "${LABTOOL:?set LABTOOL to the labtool binary}"

LAB_ID=${LAB_ID:-np$$}
LAB_DIR=$(mktemp -d "/tmp/natpilot-lab.${LAB_ID}.XXXX")
NS_WAN=${LAB_ID}-wan NS_GW=${LAB_ID}-gw NS_LAN=${LAB_ID}-lan NS_DEV=${LAB_ID}-dev
WAN_ADDR=203.0.113.2 EXT_ADDR=203.0.113.1 GW_LAN=192.168.50.1
LAN_ADDR=192.168.50.2 DEV_ADDR=192.168.50.10
GW_HTTP_PORT=2189
GW_URL="http://${GW_LAN}:${GW_HTTP_PORT}/rootDesc.xml"
NP_SOCKET=$LAB_DIR/natpilot.sock
LAB_EXTRA_NS=""  # namespaces a test adds (LAB_ID-...), torn down with the lab
# LAB_UPSTREAM_NAT=cgnat|private: another NAT (namespace `isp`) between gw and wan. The gateway's
# WAN address is then GW_WAN (100.64.7.2 or 192.168.77.2), the public one EXT_ADDR stays on `isp`,
# and miniupnpd runs without STUN, so it reports GW_WAN as its external address.
GW_WAN=$EXT_ADDR
case "${LAB_UPSTREAM_NAT:-}" in
  cgnat) GW_WAN=100.64.7.2 ;;
  private) GW_WAN=192.168.77.2 ;;
esac
NS_ISP=${LAB_ID}-isp

log() { printf '[lab %s] %s\n' "$(date +%T)" "$*" >&2; }
fail() {
  log "FAIL: $*"
  if declare -F lab_on_fail >/dev/null; then lab_on_fail >&2 || true; fi  # a test's own evidence
  exit 1
}
in_ns() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

# Runs until the condition command succeeds or the timeout (seconds) passes.
wait_for() {
  local timeout=$1; shift
  local end=$((SECONDS + timeout))
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$end" ] || return 1
    sleep 0.2
  done
}

lab_down() {
  local rc=$?
  set +e
  if declare -F lab_cleanup >/dev/null; then lab_cleanup; fi  # a test's own, before the namespaces go
  for ns in "$NS_DEV" "$NS_LAN" "$NS_GW" "$NS_WAN" ${LAB_EXTRA_NS:-}; do
    if ip netns list | grep -w "$ns" >/dev/null; then
      ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null
      ip netns del "$ns" 2>/dev/null
    fi
  done
  if [ "$rc" -ne 0 ] && [ -d "$LAB_DIR" ]; then
    for f in "$LAB_DIR"/*.log; do [ -f "$f" ] && { echo "---- $f (tail)"; tail -n 40 "$f"; }; done >&2
  fi
  rm -rf "$LAB_DIR"
  return "$rc"
}

lab_up() {
  [ "$(id -u)" -eq 0 ] || { echo "the lab needs root (network namespaces)"; exit 77; }
  trap lab_down EXIT
  trap 'exit 130' INT TERM
  for ns in "$NS_WAN" "$NS_GW" "$NS_LAN" "$NS_DEV"; do
    ip netns add "$ns"
    ip -n "$ns" link set lo up
  done
  ip link add "${LAB_ID}w" netns "$NS_WAN" type veth peer name wan0 netns "$NS_GW"
  ip link add "${LAB_ID}l" netns "$NS_LAN" type veth peer name lan0 netns "$NS_GW"
  ip link add "${LAB_ID}d" netns "$NS_DEV" type veth peer name dev0 netns "$NS_GW"
  ip -n "$NS_WAN" link set "${LAB_ID}w" name eth0
  ip -n "$NS_LAN" link set "${LAB_ID}l" name eth0
  ip -n "$NS_DEV" link set "${LAB_ID}d" name eth0

  # A fixed MAC, as a router's LAN has: a bridge otherwise takes the lowest of its ports' MACs, and a
  # port added later (test_identity's newcomer) would change it under the hosts' neighbour caches.
  ip -n "$NS_GW" link add br0 address 02:00:00:00:50:01 type bridge
  ip -n "$NS_GW" link set lan0 master br0
  ip -n "$NS_GW" link set dev0 master br0
  for l in wan0 lan0 dev0 br0; do ip -n "$NS_GW" link set "$l" up; done
  ip -n "$NS_GW" addr add "$GW_LAN/24" dev br0
  in_ns "$NS_GW" sysctl -qw net.ipv4.ip_forward=1
  if [ -n "${LAB_UPSTREAM_NAT:-}" ]; then
    # wan0 leads to the provider's NAT, not to the internet.
    LAB_EXTRA_NS="$LAB_EXTRA_NS $NS_ISP"
    ip netns add "$NS_ISP"
    ip -n "$NS_ISP" link set lo up
    ip -n "$NS_GW" link set wan0 netns "$NS_ISP"
    ip -n "$NS_ISP" link set wan0 name out0
    ip link add "${LAB_ID}i" netns "$NS_ISP" type veth peer name wan0 netns "$NS_GW"
    ip -n "$NS_ISP" link set "${LAB_ID}i" name in0
    ip -n "$NS_ISP" addr add "$EXT_ADDR/24" dev out0
    ip -n "$NS_ISP" addr add "${GW_WAN%.*}.1/24" dev in0
    ip -n "$NS_ISP" link set out0 up
    ip -n "$NS_ISP" link set in0 up
    in_ns "$NS_ISP" sysctl -qw net.ipv4.ip_forward=1
    in_ns "$NS_ISP" nft add table ip nat
    in_ns "$NS_ISP" nft add chain ip nat post '{ type nat hook postrouting priority 100; }'
    in_ns "$NS_ISP" nft add rule ip nat post oifname out0 masquerade
    ip -n "$NS_GW" link set wan0 up
    ip -n "$NS_GW" addr add "$GW_WAN/24" dev wan0
    ip -n "$NS_GW" route add default via "${GW_WAN%.*}.1"
  else
    ip -n "$NS_GW" addr add "$EXT_ADDR/24" dev wan0
  fi

  ip -n "$NS_WAN" addr add "$WAN_ADDR/24" dev eth0
  ip -n "$NS_WAN" link set eth0 up
  ip -n "$NS_LAN" addr add "$LAN_ADDR/24" dev eth0
  ip -n "$NS_LAN" link set eth0 up
  ip -n "$NS_LAN" route add default via "$GW_LAN"
  ip -n "$NS_DEV" addr add "$DEV_ADDR/24" dev eth0
  ip -n "$NS_DEV" link set eth0 up
  ip -n "$NS_DEV" route add default via "$GW_LAN"

  # The router's firewall, with the chains miniupnpd's config names (Debian's nft_init.sh is broken).
  in_ns "$NS_GW" nft -f - <<NFT
table inet filter {
  chain forward {
    type filter hook forward priority 0; policy drop;
    ct state established,related accept
    iifname "br0" oifname "br0" accept
    iifname "br0" oifname "wan0" accept
    jump miniupnpd
  }
  chain miniupnpd {
  }
  chain prerouting {
    type nat hook prerouting priority -100; policy accept;
    jump prerouting_miniupnpd
  }
  chain postrouting {
    type nat hook postrouting priority 100; policy accept;
    jump postrouting_miniupnpd
    oifname "wan0" masquerade
  }
  chain prerouting_miniupnpd {
  }
  chain postrouting_miniupnpd {
  }
}
NFT
  in_ns "$NS_WAN" "$LABTOOL" stun 3478 >"$LAB_DIR/stun.log" 2>&1 &
  lab_gateway_start "${1:-}"
}

# The lines every lab miniupnpd shares: its nftables table and chains, the LAN it serves, and its
# notify interval.
miniupnpd_lab_conf() {
  cat <<CONF
upnp_table_name=filter
upnp_nat_table_name=filter
upnp_forward_chain=miniupnpd
upnp_nat_chain=prerouting_miniupnpd
upnp_nat_postrouting_chain=postrouting_miniupnpd
notify_interval=60
allow 1024-65535 192.168.50.0/24 1024-65535
deny 0-65535 0.0.0.0/0 0-65535
CONF
}
# miniupnpd_run NS NAME: starts miniupnpd in NS, in the background, with $LAB_DIR/NAME.conf,
# .pid and .log. It logs with LOG_CONS: with no syslog daemon every line would go to /dev/console
# (slow, and it spams the host), so it runs in a private mount namespace with /dev/console on
# /dev/null.
miniupnpd_run() {
  in_ns "$1" unshare -m --propagation private sh -c \
    "mount --bind /dev/null /dev/console && exec miniupnpd -d -f '$LAB_DIR/$2.conf' -P '$LAB_DIR/$2.pid'" \
    >>"$LAB_DIR/$2.log" 2>&1 &
}

# lab_gateway_start [secure]: miniupnpd, secure_mode as asked. Switches (environment):
#   GW_UPNP=yes|no          UPnP IGD
#   GW_NATPMP=yes|no        NAT-PMP and PCP (one switch in miniupnpd; they share UDP 5351)
#   GW_ONLY=pcp|nat-pmp     drop the other one's packets (by the version byte) in gw's input hook
#   GW_PCP_THIRDPARTY=yes   allow PCP THIRD_PARTY mappings
lab_gateway_start() {
  local secure=no
  [ "${1:-}" = secure ] && secure=yes
  in_ns "$NS_GW" nft delete table inet labgate 2>/dev/null || true
  local drop_version=""
  case "${GW_ONLY:-}" in
    pcp) drop_version=0x00 ;;      # NAT-PMP's version byte
    nat-pmp) drop_version=0x02 ;;  # PCP's
  esac
  if [ -n "$drop_version" ]; then
    in_ns "$NS_GW" nft -f - <<NFT
table inet labgate {
  chain input {
    type filter hook input priority 0; policy accept;
    udp dport 5351 @th,64,8 $drop_version drop
  }
}
NFT
  fi
  cat >"$LAB_DIR/miniupnpd.conf" <<CONF
ext_ifname=wan0
listening_ip=br0
http_port=$GW_HTTP_PORT
enable_upnp=${GW_UPNP:-yes}
enable_natpmp=${GW_NATPMP:-yes}
pcp_allow_thirdparty=${GW_PCP_THIRDPARTY:-no}
min_lifetime=30
secure_mode=$secure
system_uptime=no
lease_file=$LAB_DIR/miniupnpd.leases
uuid=3d3cec3a-8cf0-11e0-98ee-001a6bd2d07b
ext_perform_stun=$([ -n "${LAB_UPSTREAM_NAT:-}" ] && echo no || echo yes)
ext_stun_host=$WAN_ADDR
ext_stun_port=3478
$(miniupnpd_lab_conf)
CONF
  miniupnpd_run "$NS_GW" miniupnpd
  echo $! >"$LAB_DIR/miniupnpd.runner"
  if [ "${GW_UPNP:-yes}" = yes ]; then
    wait_for 15 grep -q "HTTP listening on port" "$LAB_DIR/miniupnpd.log" || fail "miniupnpd did not start"
    wait_for 10 in_ns "$NS_LAN" upnpc -u "$GW_URL" -s || fail "miniupnpd does not answer UPnP"
  else
    wait_for 15 grep -q "Listening for NAT-PMP/PCP traffic" "$LAB_DIR/miniupnpd.log" || fail "miniupnpd did not start"
  fi
}

# lab_gateway_stop [forget]: stops miniupnpd; with forget its lease file goes too (a router that
# lost every mapping).
lab_gateway_stop() {
  local pid
  pid=$(cat "$LAB_DIR/miniupnpd.pid" 2>/dev/null || true)
  [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
  wait_for 10 sh -c "! kill -0 $(cat "$LAB_DIR/miniupnpd.runner") 2>/dev/null" || true
  if [ "${1:-}" = forget ]; then
    # A reboot: the lease file and the forwarding rules are gone (miniupnpd would read the rules
    # left in its chains back at start).
    rm -f "$LAB_DIR/miniupnpd.leases"
    for chain in miniupnpd prerouting_miniupnpd postrouting_miniupnpd; do
      in_ns "$NS_GW" nft flush chain inet filter "$chain"
    done
  fi
  return 0
}

# natpilotd in the lan namespace, with its state in the lab folder. Extra flags are passed on.
np_start() {
  (cd "$LAB_DIR" && in_ns "$NS_LAN" "$NATPILOTD" --database "$LAB_DIR/natpilot.db" \
      --unix-socket "$NP_SOCKET" --discovery-timeout-ms 500 "$@" >>"$LAB_DIR/natpilotd.log" 2>&1 &
   echo $! >"$LAB_DIR/natpilotd.pid")
  wait_for 10 np gateway || fail "natpilotd did not start"
}
np_pid() { pgrep -f "^$NATPILOTD .*--unix-socket $NP_SOCKET" | sed -n 1p; }
np_kill9() {
  local pid
  pid=$(np_pid)
  [ -n "$pid" ] || fail "natpilotd is not running"
  kill -9 "$pid"
  wait_for 5 sh -c "! kill -0 $pid 2>/dev/null" || fail "natpilotd $pid survived kill -9"
}
np() { in_ns "$NS_LAN" "$NATPILOT" --socket "$NP_SOCKET" "$@"; }

# Count of a device's mappings in a state.
np_count() { np mapping list --device "$1" --json | grep -o "\"state\":\"MAPPING_STATE_$2\"" | wc -l; }
np_all_active() { [ "$(np_count "$1" ACTIVE)" -eq "$2" ]; }
np_count_is() { [ "$(np_count "$1" "$2")" -eq "$3" ]; }

# The gateway's own table, read with miniupnpc's upnpc from the LAN: "PROTO EXT CLIENT:PORT" lines.
gw_table() {
  # LC_ALL=C: a description that is not UTF-8 (any LAN host can set one) must not hide its line.
  in_ns "$NS_LAN" upnpc -u "$GW_URL" -l 2>/dev/null |
    LC_ALL=C sed -nE 's/^ *[0-9]+ (UDP|TCP) +([0-9]+)->([0-9.]+):([0-9]+) .*/\1 \2 \3:\4/p'
}
gw_count() { gw_table | wc -l; }

# expect_traffic udp|tcp PORT NS: a payload sent from wan to the external address arrives at a
# listener on exactly PORT in NS.
expect_traffic() {
  local proto=$1 port=$2 ns=$3
  local token="np-$RANDOM-$port" out="$LAB_DIR/recv.$proto.$port"
  in_ns "$ns" "$LABTOOL" listen "$proto" "$port" 4000 >"$out" &
  local lpid=$!
  sleep 0.3
  in_ns "$NS_WAN" "$LABTOOL" send "$proto" "$EXT_ADDR" "$port" "$token" || true
  wait "$lpid" || true
  grep -q "$token" "$out" || fail "$proto $port: nothing from wan arrived in $ns"
  log "ok: $proto/$port from wan reached $ns"
}

expect_no_traffic() {
  local proto=$1 port=$2 ns=$3
  local out="$LAB_DIR/recv.$proto.$port"
  in_ns "$ns" "$LABTOOL" listen "$proto" "$port" 1500 >"$out" &
  local lpid=$!
  sleep 0.3
  in_ns "$NS_WAN" "$LABTOOL" send "$proto" "$EXT_ADDR" "$port" "should-not-arrive" 2>/dev/null || true
  local rc=0
  wait "$lpid" || rc=$?
  [ "$rc" -eq 3 ] || fail "$proto $port: traffic arrived in $ns but nothing should forward it"
  log "ok: $proto/$port from wan did not reach $ns"
}

# Under pipefail a "cmd | grep -q" fails when grep exits before cmd has written everything (SIGPIPE),
# so checks read whole outputs: grep without -q, or a file.
np_gateway_ready() { np gateway --json | grep "\"external_address\":\"$EXT_ADDR\"" >/dev/null; }
np_gateway_found() { np gateway --json | grep "\"status\":\"STATUS_READY\"" >/dev/null; }
gw_has() { gw_table >"$LAB_DIR/table"; grep -qx -- "$1" "$LAB_DIR/table"; }
np_events_has() { np events -n 100 >"$LAB_DIR/events"; grep -q -- "$1" "$LAB_DIR/events"; }

# Remaining lease seconds of a gateway entry, as the gateway reports it (upnpc -l's last column).
gw_lease() {
  in_ns "$NS_LAN" upnpc -u "$GW_URL" -l 2>/dev/null |
    awk -v p="$1" -v e="$2" '$2 == p && $3 ~ "^"e"->" { print $NF; found = 1 } END { if (!found) print -1 }'
}
# How many times the gateway was asked to add an entry (miniupnpd logs each SOAP action; for
# IGDv2's AddAnyPortMapping that line is all it logs).
gw_adds_total() { grep -cE "SOAPAction: .*#Add(Any)?PortMapping$" "$LAB_DIR/miniupnpd.log" || true; }

# The commands a generated rule file's header gives for KIND (apply, remove, wire, unwire), with
# FILE replaced by its path: the tests run exactly what an admin is told to run.
header_cmds() { sed -n "s/^# $1: *//p" "$2" | sed "s|FILE|$2|g"; }
# run_header KIND FILE NS: runs those commands in namespace NS.
run_header() {
  local cmd
  while IFS= read -r cmd; do
    in_ns "$3" sh -c "$cmd" || fail "'$cmd' failed in $3"
  done < <(header_cmds "$1" "$2")
}

# The router's rules without traffic counters, which change as packets flow.
gw_ruleset() {
  in_ns "$NS_GW" nft list ruleset | sed -E 's/counter packets [0-9]+ bytes [0-9]+/counter/'
  in_ns "$NS_GW" iptables-save 2>/dev/null | sed -E '/^#/d; s/\[[0-9]+:[0-9]+\]/[]/'
}

# The gateway's forwarding rules themselves (whatever protocol made them): "PROTO PORT ADDR" lines.
gw_dnat() {
  in_ns "$NS_GW" nft list chain inet filter prerouting_miniupnpd 2>/dev/null |
    sed -nE 's/.*@nh,72,8 (0x6|0x11) th dport ([0-9]+) dnat (ip )?to ([0-9.]+):([0-9]+).*/\1 \2 \4:\5/p' |
    sed -e 's/^0x6 /tcp /' -e 's/^0x11 /udp /'
}
gw_dnat_count() { gw_dnat | wc -l; }
# The protocol in use (not one of the per-protocol probe reports, which carry a "protocol" too).
np_protocol_is() { np gateway --json | jq -e --arg p "GATEWAY_PROTOCOL_$1" '.protocol == $p' >/dev/null; }

# lab_lan_host NS ADDR SUFFIX: another host on the LAN (namespace NS, address ADDR/24 on eth0,
# plugged into the gateway's bridge); SUFFIX makes its veth names unique. Torn down with the lab.
lab_lan_host() {
  local ns=$1 addr=$2 suffix=$3
  LAB_EXTRA_NS="$LAB_EXTRA_NS $ns"
  ip netns add "$ns"
  ip -n "$ns" link set lo up
  ip link add "${LAB_ID}${suffix}" netns "$ns" type veth peer name "lan${suffix}0" netns "$NS_GW"
  ip -n "$ns" link set "${LAB_ID}${suffix}" name eth0
  ip -n "$NS_GW" link set "lan${suffix}0" master br0
  ip -n "$NS_GW" link set "lan${suffix}0" up
  ip -n "$ns" addr add "$addr/24" dev eth0
  ip -n "$ns" link set eth0 up
}

# lab_rogue_igd NS ADDR WAN: a second UPnP IGD (miniupnpd, "Rogue IGD", HTTP port 2189) on the LAN
# host NS, whose WAN side claims address WAN: it answers SSDP like the router's. Its "WAN" is one
# end of a veth pair whose both ends stay in the namespace (nothing leaves it).
lab_rogue_igd() {
  local ns=$1 addr=$2 wan=$3
  ip -n "$ns" link add wan0 type veth peer name wan1
  ip -n "$ns" link set wan1 up
  ip -n "$ns" addr add "$wan/24" dev wan0
  ip -n "$ns" link set wan0 up
  in_ns "$ns" nft -f - <<NFT
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
  miniupnpd_run "$ns" rogue
  wait_for 15 grep -q "HTTP listening on port" "$LAB_DIR/rogue.log" || fail "the rogue miniupnpd did not start"
  wait_for 10 in_ns "$NS_LAN" upnpc -u "http://$addr:2189/rootDesc.xml" -s || fail "the rogue IGD does not answer UPnP"
}
