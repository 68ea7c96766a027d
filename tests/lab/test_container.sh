#!/usr/bin/env bash
# The container is real: podman builds the project's Dockerfile and runs natpilotd from the image
# inside the lab's `lan` namespace, the way a home server runs it (--network host there is the
# lan namespace here). Checked: a non-root user, the HEALTHCHECK, the lab gateway discovered and a
# device's SIP port forwarded (real packets from `wan`); a new container on the same volume keeps
# the device and adds nothing twice on the gateway; a second natpilotd on the host beside it keeps
# its own entries and neither removes the other's.
#
# No registry is reachable: the debian:bookworm-slim base is made here with debootstrap from apt's
# own mirror and kept (tagged) for the next run. podman changes the host's ip_forward and iptables;
# both are put back at the end.
source "$(dirname "$0")/lab.sh"
TOP=$(cd "$(dirname "$0")/../.." && pwd)
command -v podman >/dev/null && command -v debootstrap >/dev/null ||
  { echo "podman and debootstrap are not installed (bash scripts/setup.sh --test)"; exit 77; }
[ "$(id -u)" -eq 0 ] || { echo "needs root"; exit 77; }
# One container test at a time on a host (two suites in parallel): the image tag, podman's prune
# and the host's forwarding settings are shared.
exec 9>/run/lock/natpilot-container-test.lock
flock -w 1500 9 || { echo "another container test held the lock for 25 minutes"; exit 1; }

WORK=$(mktemp -d /tmp/natpilot-container.XXXX)
export CONTAINERS_CONF=$WORK/containers.conf
cat >"$CONTAINERS_CONF" <<CONF
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]

[engine]
runtime = "runc"
CONF
IMAGE=localhost/natpilot:test
NAME=natpilot-$LAB_ID
VOLUME=natpilot-$LAB_ID
forward_before=$(sysctl -n net.ipv4.ip_forward)
iptables-save >"$WORK/iptables.before" 2>/dev/null || true
lab_cleanup() {
  podman rm -f -t 2 "$NAME" "$NAME-2" >/dev/null 2>&1
  podman volume rm -f "$VOLUME" >/dev/null 2>&1
  podman rmi -f "$IMAGE" >/dev/null 2>&1
  podman image prune -f >/dev/null 2>&1  # the build stage's layers; the tagged base image stays
  sysctl -qw net.ipv4.ip_forward="$forward_before"
  # Chains podman's network backend may have added (netavark, CNI), with the jumps to them; the
  # host's own rules are left as they were.
  local t c
  for t in filter nat mangle; do
    iptables -t "$t" -S 2>/dev/null | grep -E -- '-j (NETAVARK|CNI|PODMAN)' | sed 's/^-A /-D /' |
      while read -r rule; do eval "iptables -t $t $rule" 2>/dev/null; done
    for c in $(iptables -t "$t" -S 2>/dev/null | awk '/^-N (NETAVARK|CNI|PODMAN)/ {print $2}'); do
      iptables -t "$t" -F "$c" 2>/dev/null
    done
    for c in $(iptables -t "$t" -S 2>/dev/null | awk '/^-N (NETAVARK|CNI|PODMAN)/ {print $2}'); do
      iptables -t "$t" -X "$c" 2>/dev/null
    done
  done
  iptables-save 2>/dev/null | diff -q - "$WORK/iptables.before" >/dev/null ||
    echo "note: the host's iptables differ from before the test" >&2
  rm -rf "$WORK"
}

log "base image"
if ! podman image exists docker.io/library/debian:bookworm-slim; then
  mirror=$(sed -nE 's/^URIs: (http[^ ]*debian)\/?$/\1/p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)
  mirror=${mirror:-$(sed -nE 's/^deb (http[^ ]*) bookworm main.*/\1/p' /etc/apt/sources.list 2>/dev/null | head -1)}
  debootstrap --variant=minbase bookworm "$WORK/rootfs" "${mirror:-http://deb.debian.org/debian}" >"$WORK/debootstrap.log" 2>&1 ||
    { tail -20 "$WORK/debootstrap.log"; fail "debootstrap failed"; }
  tar -C "$WORK/rootfs" -c . | podman import - docker.io/library/debian:bookworm-slim >/dev/null
fi

log "podman build (the Dockerfile, with the project's setup and build scripts)"
podman build --format docker --network host -t "$IMAGE" "$TOP" >"$WORK/build.log" 2>&1 ||
  { tail -30 "$WORK/build.log"; fail "podman build failed"; }
podman image inspect -f '{{.Config.User}}' "$IMAGE" | grep -qx natpilot || fail "the image does not run as natpilot"
podman image inspect -f '{{json .Config.Healthcheck}}' "$IMAGE" | grep -q '"health"' || fail "the image has no HEALTHCHECK"

lab_up
run_container() {  # run_container NAME
  podman run -d --name "$1" --network "ns:/run/netns/$NS_LAN" -v "$VOLUME:/var/lib/natpilot" \
    "$IMAGE" --discovery-timeout-ms 500 >/dev/null || fail "podman run $1 failed"
}
in_c() { podman exec "$NAME_NOW" natpilot "$@"; }
NAME_NOW=$NAME
run_container "$NAME"
wait_for 20 podman healthcheck run "$NAME" || { podman logs "$NAME"; fail "the HEALTHCHECK does not pass"; }
uid=$(podman exec "$NAME" id -u)
[ "$uid" != 0 ] || fail "natpilotd runs as root in the container"
log "ok: healthy, natpilotd runs as uid $uid"
wait_for 20 sh -c "podman exec $NAME natpilot gateway --json | grep -q '\"external_address\":\"$EXT_ADDR\"'" ||
  { in_c gateway; fail "the container did not discover the lab gateway"; }
in_c device add ata1 --address "$DEV_ADDR" --kind ata --sip 5060-5061 --rtp 10000-10009 >/dev/null
c_active() { [ "$(podman exec "$NAME_NOW" natpilot mapping list --device ata1 --json | grep -o '"state":"MAPPING_STATE_ACTIVE"' | wc -l)" -eq 14 ]; }
wait_for 30 c_active || { in_c mapping list; fail "ata1 not active"; }
expect_traffic udp 5060 "$NS_DEV"

log "a second natpilotd on the host, beside the container"
np_start --listen "" --web ""
np device add pbx2 --address "$LAN_ADDR" --kind pbx --sip 5080-5080 --sip-transports udp --rtp 12000-12001 >/dev/null
wait_for 30 np_all_active pbx2 3 || { np mapping list; fail "the host's pbx2 not active"; }
expect_traffic udp 5080 "$NS_LAN"
[ "$(gw_count)" -eq 17 ] || { gw_table; fail "want 14 + 3 entries on the gateway, see $(gw_count)"; }

log "a new container on the same volume"
adds=$(gw_adds_total)
podman stop -t 10 "$NAME" >/dev/null
podman rm "$NAME" >/dev/null
NAME_NOW=$NAME-2
run_container "$NAME_NOW"
wait_for 20 podman healthcheck run "$NAME_NOW" || fail "the new container is not healthy"
in_c device list >"$LAB_DIR/devices"
grep -q "ata1" "$LAB_DIR/devices" || fail "the device is gone after the new container"
wait_for 30 c_active || { in_c mapping list; fail "ata1 not active in the new container"; }
sleep 2
[ "$(gw_adds_total)" -eq "$adds" ] || fail "the new container added $(( $(gw_adds_total) - adds )) entries again"
[ "$(gw_count)" -eq 17 ] || { gw_table; fail "the gateway has $(gw_count) entries, want 17 (none twice, none removed)"; }
np_all_active pbx2 3 || fail "the host's entries were touched"
expect_traffic udp 5060 "$NS_DEV"
expect_traffic udp 5080 "$NS_LAN"
log "PASS"
