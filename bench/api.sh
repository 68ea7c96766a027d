#!/usr/bin/env bash
# gRPC API latency and throughput beside a bare server from the same Debian gRPC (issue 9; not part
# of the tests). Usage: bash bench/api.sh [SEQUENTIAL_CALLS] [CONCURRENT_SECONDS]
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
bash "$top/scripts/build.sh" --target api_bench >/dev/null
exec "$top/build/bench/api_bench" "${1:-3000}" "${2:-3}"
