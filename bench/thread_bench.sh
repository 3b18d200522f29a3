#!/usr/bin/env bash
# THREAD (REFERENCES, REFS, ORDEREDSUBJECT) and SORT over one 5,000-message threaded mailbox,
# postcore against Dovecot in one run (bench/thread_bench.py: same messages APPENDed to both,
# answers compared, commands timed alternately; medians, spread and ratios).
#
# usage: bench/thread_bench.sh [MESSAGES] [ROUNDS]
# needs: sudo ../shared/bench/anchors/setup.sh all (Dovecot IMAP on 1143), cargo build --release
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/.." && pwd)
N=${1:-5000}
ROUNDS=${2:-7}
BIN=${BIN:-$TOP/target/release/postcore}
WORK=${WORK:-/tmp/postcore-thread-bench}
IMAP=3144; ADMIN=3668
[ -x "$BIN" ] || { echo "build first: cargo build --release" >&2; exit 1; }
ss -ltn | grep -q '127.0.0.1:1143 ' || { echo "start the anchors: sudo ../shared/bench/anchors/setup.sh all" >&2; exit 1; }
rm -rf "$WORK"; mkdir -p "$WORK"
. "$HERE/lib.sh"
postcore_start $ADMIN "imap=$IMAP"
trap 'kill $PC 2>/dev/null; wait $PC 2>/dev/null || true' EXIT
P="$BIN admin --config $WORK/postcore.toml"
$P domain add example.test >/dev/null
echo pass | $P user add bench --password-stdin >/dev/null
$P settings set allow_unencrypted=true >/dev/null
python3 "$HERE/thread_bench.py" "127.0.0.1:$IMAP:bench:pass" "127.0.0.1:1143:bench@example.test:pass" "$N" "$ROUNDS"
