#!/usr/bin/env bash
# Full-size memory-budget run: postcore (release) with memory_budget_mb = 64, 100 slow
# transfers of 25 MiB messages from 20 addresses (bench/memory_budget.py).
# usage: bench/memory_budget.sh [SESSIONS] [SIZE_MB] [BUDGET_MB]
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd); TOP=$(cd "$HERE/.." && pwd)
SESSIONS=${1:-100}; SIZE=${2:-25}; BUDGET=${3:-64}
BIN=${BIN:-$TOP/target/release/postcore}; WORK=${WORK:-/tmp/postcore-budget-bench}
rm -rf "$WORK"; mkdir -p "$WORK"
. "$HERE/lib.sh"
postcore_start 3470 "smtp=3530" "[limits]\nmemory_budget_mb = $BUDGET\nmax_connections_per_ip = 200\nmax_connections_per_network = 200"
trap 'kill $PC 2>/dev/null; wait $PC 2>/dev/null; rm -rf "$WORK"' EXIT
python3 "$HERE/setup_postcore.py" 127.0.0.1:3470 "$(cat "$WORK/data/admin.token")" 10 >/dev/null
settings_patch 3470 '{"max_message_size": 52428800}'
echo "### $(date -u +%FT%TZ) budget $BUDGET MiB"
python3 "$HERE/memory_budget.py" 3530 "$PC" "$WORK/data/mail/users/user1" "$SESSIONS" "$SIZE"
