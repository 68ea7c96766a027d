#!/usr/bin/env bash
# Installs the Debian 12 packages natpilot needs to build (no argument), to run a built natpilotd
# (--runtime, the container's last stage) or to build and test (--test). Idempotent: packages
# that are already present are left alone. Nothing is downloaded except from Debian's mirror.
set -euo pipefail

BUILD_PKGS=(
  build-essential cmake pkg-config ccache
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libsqlite3-dev libminiupnpc-dev libnatpmp-dev libssl-dev libcpp-httplib-dev
  libcli11-dev libspdlog-dev nlohmann-json3-dev libtomlplusplus-dev libexpected-dev
)
TEST_PKGS=(
  libgtest-dev libgmock-dev sqlite3
  iproute2 nftables iptables miniupnpd-nftables miniupnpc natpmpc util-linux procps openssl
  sip-tester curl chromium podman buildah runc debootstrap jq
)
# The status page's browser test runs node (Debian's nodejs and npm unless a node is there already)
# with playwright-core from npm, installed into tests/web/node_modules.
top=$(cd "$(dirname "$0")/.." && pwd)

# What the built natpilotd and natpilot need to run (the container's last stage).
RUNTIME_PKGS=(
  libgrpc++1.51 libprotobuf32 libsqlite3-0 libminiupnpc17 libnatpmp1 libspdlog1.10
  libcpp-httplib0.11 libssl3 libtomlplusplus3 ca-certificates
)

want=("${BUILD_PKGS[@]}")
if [ "${1:-}" = "--runtime" ]; then want=("${RUNTIME_PKGS[@]}"); fi
if [ "${1:-}" = "--test" ]; then
  want+=("${TEST_PKGS[@]}")
  command -v node >/dev/null || want+=(nodejs)
  command -v npm >/dev/null || want+=(npm)
fi

web_tests() {
  if [ "${1:-}" = "--test" ] && [ ! -d "$top/tests/web/node_modules/playwright-core" ]; then
    echo "setup: npm install (playwright-core) in tests/web"
    (cd "$top/tests/web" && npm install --no-audit --no-fund --loglevel=error)
  fi
}

missing=()
for p in "${want[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ "${#missing[@]}" -eq 0 ]; then
  echo "setup: all ${#want[@]} packages present"
  web_tests "${1:-}"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
# miniupnpd's maintainer scripts would start a host-wide gateway; policy-rc.d 101 stops that, the lab
# starts its own miniupnpd inside network namespaces.
had_policy=0
if [ -e /usr/sbin/policy-rc.d ]; then had_policy=1; fi
if [ "$had_policy" -eq 0 ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
  $SUDO chmod +x /usr/sbin/policy-rc.d
fi
trap '[ "$had_policy" -eq 1 ] || $SUDO rm -f /usr/sbin/policy-rc.d' EXIT
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
web_tests "${1:-}"
