#!/usr/bin/env bash
# Installs what is missing, builds, and starts natpilotd on its embedded defaults in the current
# directory: natpilot.db, natpilot.sock and natpilot-admin.token here, the API also on
# 127.0.0.1:50551, the status page on http://127.0.0.1:8080/. Extra arguments go to natpilotd
# (see natpilotd --help).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
bash "$top/scripts/setup.sh"
NATPILOT_TESTS=OFF bash "$top/scripts/build.sh" --target natpilotd natpilot
echo "natpilotd: state in $(pwd); try: $top/build/clients/natpilot gateway"
exec "$top/build/service/natpilotd" "$@"
