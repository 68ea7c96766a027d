#!/usr/bin/env bash
# The status page in a real browser (chromium via playwright-core, tests/web/page_test.mjs) against
# natpilotd in the lab: the device and its active mappings, a live countdown, a device removed from
# the CLI disappearing without a reload, a refused change without the admin token. Also /metrics and
# the page's admin actions with curl. The screenshot is kept as web-status-page.png in the build's
# tests folder.
export GW_NATPMP=no
source "$(dirname "$0")/lab.sh"
WEB_DIR=$(cd "$(dirname "$0")/../web" && pwd)
[ -x /usr/bin/chromium ] && [ -d "$WEB_DIR/node_modules/playwright-core" ] ||
  { echo "chromium or playwright-core missing (bash scripts/setup.sh --test installs them)"; exit 77; }
lab_up
np_start
np device add ata1 --address "$DEV_ADDR" --kind ata --sip 5060-5061 --rtp 10000-10009 >/dev/null
wait_for 30 np_all_active ata1 14 || { np mapping list; fail "ata1 not active"; }

log "metrics"
in_ns "$NS_LAN" curl -sf http://127.0.0.1:8080/metrics >"$LAB_DIR/metrics" || fail "no /metrics"
grep -q '^natpilot_mappings{state="active",protocol="upnp-igd"} 14$' "$LAB_DIR/metrics" || fail "metrics: active mappings"
grep -q '^natpilot_lease_grants_total{protocol="upnp-igd"} 14$' "$LAB_DIR/metrics" || fail "metrics: grants"
grep -qE '^natpilot_gateway_rtt_seconds\{protocol="upnp-igd"\} [0-9.e-]+$' "$LAB_DIR/metrics" || fail "metrics: rtt"
grep -q '^natpilot_api_calls_total{method="/natpilot.v1.DeviceService/RegisterDevice",code="OK"} 1$' "$LAB_DIR/metrics" ||
  fail "metrics: API calls"

log "admin actions need the token in a header"
code=$(in_ns "$NS_LAN" curl -s -o /dev/null -w '%{http_code}' -X POST -d '{"name":"x","address":"192.168.50.12"}' \
  http://127.0.0.1:8080/api/devices)
[ "$code" = 401 ] || fail "an add without the token got $code"
code=$(in_ns "$NS_LAN" curl -s -o /dev/null -w '%{http_code}' -X DELETE -b "token=$(cat "$LAB_DIR/natpilot-admin.token")" \
  http://127.0.0.1:8080/api/devices/ata1)
[ "$code" = 401 ] || fail "a token in a cookie was accepted ($code)"

log "the page in chromium"
shot=${NATPILOT_ARTIFACTS:-$PWD}/web-status-page.png
in_ns "$NS_LAN" node "$WEB_DIR/page_test.mjs" http://127.0.0.1:8080/ "$NATPILOT" "$NP_SOCKET" "$shot" ||
  fail "the page test failed"
[ -s "$shot" ] || fail "no screenshot"
log "screenshot: $shot"
log "PASS"
