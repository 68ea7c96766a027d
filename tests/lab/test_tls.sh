#!/usr/bin/env bash
# TLS on the TCP API, listening on the LAN: a client without natpilotd's CA cannot talk to it, a
# client with it can (from another host of the LAN); with a client CA, a client needs its own
# certificate too. Without TLS a LAN address is refused unless the config says so. A device token
# can be tied to the device's own address.
export GW_NATPMP=no
source "$(dirname "$0")/lab.sh"
lab_up
pki=$LAB_DIR/pki
mkdir -p "$pki"
mkcert() {  # mkcert NAME SUBJECT_ALT_NAME CA_NAME
  openssl req -new -newkey rsa:2048 -nodes -keyout "$pki/$1.key" -subj "/CN=$1" -out "$pki/$1.csr" 2>/dev/null
  printf 'subjectAltName=%s\n' "$2" >"$pki/$1.ext"
  openssl x509 -req -in "$pki/$1.csr" -CA "$pki/$3.pem" -CAkey "$pki/$3.key" -CAcreateserial \
    -days 2 -extfile "$pki/$1.ext" -out "$pki/$1.pem" 2>/dev/null
}
for ca in ca other-ca; do
  openssl req -x509 -newkey rsa:2048 -nodes -keyout "$pki/$ca.key" -subj "/CN=$ca" -days 2 \
    -out "$pki/$ca.pem" 2>/dev/null
done
mkcert server "IP:$LAN_ADDR,DNS:natpilot.lan" ca
mkcert client "DNS:client" ca
mkcert rogue "DNS:rogue" other-ca

LISTEN=$LAN_ADDR:50552
log "a LAN address without TLS is refused at start"
printf '[api]\nlisten = "%s"\n' "$LISTEN" >"$LAB_DIR/plain.toml"
rc=0
out=$(cd "$LAB_DIR" && in_ns "$NS_LAN" "$NATPILOTD" --config "$LAB_DIR/plain.toml" --database "$LAB_DIR/x.db" \
  --unix-socket "$LAB_DIR/x.sock" 2>&1) || rc=$?
[ "$rc" -ne 0 ] || fail "natpilotd listened on $LISTEN without TLS"
grep -q "is not loopback" <<<"$out" || fail "refusal does not say why: $out"
log "ok: $out"

cat >"$LAB_DIR/tls.toml" <<TOML
[api]
listen = "$LISTEN"
tls_cert_file = "$pki/server.pem"
tls_key_file = "$pki/server.key"
device_calls_from_own_address = true
TOML
np_start --config "$LAB_DIR/tls.toml"
np device add ata1 --address "$DEV_ADDR" --kind ata --sip 5060-5061 --rtp 10000-10009 >"$LAB_DIR/add"
ata_token=$(sed -n 's/^token: //p' "$LAB_DIR/add")
[ -n "$ata_token" ] || fail "device add printed no token"
admin=(--token-file "$LAB_DIR/natpilot-admin.token")
from_dev() { in_ns "$NS_DEV" "$NATPILOT" --server "$LISTEN" "$@"; }
must_fail() {
  local want=$1; shift
  local out rc=0
  out=$("$@" 2>&1) || rc=$?
  [ "$rc" -ne 0 ] || fail "'$*' succeeded"
  grep -q -- "$want" <<<"$out" || fail "'$*' said '$out', want '$want'"
  log "ok: refused: ${out:0:160}"
}
must_fail "UNAVAILABLE" from_dev "${admin[@]}" device list                              # plain text to a TLS port
must_fail "UNAVAILABLE" from_dev --tls-ca "$pki/other-ca.pem" "${admin[@]}" device list  # wrong CA
must_work() {  # must_work WORD COMMAND...: succeeds and prints WORD
  local want=$1; shift
  local out rc=0
  out=$("$@" 2>&1) || rc=$?
  [ "$rc" -eq 0 ] && grep -q -- "$want" <<<"$out" || fail "'$*' said '$out' (exit $rc), want '$want'"
}
must_work ata1 from_dev --tls-ca "$pki/ca.pem" "${admin[@]}" device list
log "ok: admin over TLS from another LAN host"
must_work ata1 from_dev --tls-ca "$pki/ca.pem" --token "$ata_token" device show ata1
must_fail "requires calls from the device's address" in_ns "$NS_LAN" "$NATPILOT" --server "$LISTEN" \
  --tls-ca "$pki/ca.pem" --token "$ata_token" device show ata1
log "ok: the ATA's token works from the ATA's address only"

log "client certificates"
in_ns "$NS_LAN" kill "$(np_pid)"
wait_for 10 sh -c "! pgrep -f '^$NATPILOTD .*--unix-socket $NP_SOCKET'" || fail "natpilotd did not stop"
printf 'tls_client_ca_file = "%s"\n' "$pki/ca.pem" >>"$LAB_DIR/tls.toml"
np_start --config "$LAB_DIR/tls.toml"
must_fail "UNAVAILABLE" from_dev --tls-ca "$pki/ca.pem" "${admin[@]}" device list
must_fail "UNAVAILABLE" from_dev --tls-ca "$pki/ca.pem" --tls-cert "$pki/rogue.pem" --tls-key "$pki/rogue.key" \
  "${admin[@]}" device list
must_work ata1 from_dev --tls-ca "$pki/ca.pem" --tls-cert "$pki/client.pem" --tls-key "$pki/client.key" \
  "${admin[@]}" device list
log "ok: only a client with a certificate from the client CA gets in"
log "PASS"
