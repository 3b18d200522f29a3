#!/usr/bin/env bash
# Relay throughput: SMTP in -> durable queue -> SMTP out to smtp-sink on 127.0.0.1:2626,
# postcore vs Postfix alternating in one run (../shared/bench/anchors/relay_throughput.sh),
# 20 inbound sessions, 5,000 x 4 KiB by default; prints medians, the ratio and peak memory.
#
# usage: bench/relay_throughput.sh [COUNT] [RUNS] [SIZE]
# needs: sudo ../shared/bench/anchors/setup.sh all   (Postfix on 127.0.0.1:2525 routing
#        sink.test to 127.0.0.1:2626), cargo build --release
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/.." && pwd)
ANCH=${ANCHORS:-$(cd "$TOP/../shared/bench/anchors" && pwd)}
COUNT=${1:-5000}; RUNS=${2:-3}; SIZE=${3:-4096}
BIN=${BIN:-$TOP/target/release/postcore}
WORK=${WORK:-/tmp/postcore-relay-bench}
PORT=3526; ADMIN=3466
[ -x "$BIN" ] || { echo "build first: cargo build --release" >&2; exit 1; }
ss -ltn | grep -q '127.0.0.1:2525 ' || { echo "Postfix anchor not running: sudo $ANCH/setup.sh all" >&2; exit 1; }
rm -rf "$WORK"; mkdir -p "$WORK"
. "$HERE/lib.sh"
postcore_start $ADMIN "smtp=$PORT" '[limits]\nmax_connections_per_ip = 1000'
trap 'kill $PC 2>/dev/null; wait $PC 2>/dev/null; kill $MS 2>/dev/null || true' EXIT
TOKEN=$(cat "$WORK/data/admin.token")
curl -sf -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
  -d '{"name":"sink.test","kind":"relay","relay_host":"127.0.0.1:2626"}' "http://127.0.0.1:$ADMIN/api/domains" >/dev/null
EXTRA_GROUP=postcore:$BIN "$ANCH/mem_sample.py" watch "$WORK/mempeak.txt" 0.5 & MS=$!
echo "### $(date -u +%FT%TZ) $(nproc) cores, loadavg $(cat /proc/loadavg)"
med() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END{ if(NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2 }'; }
rate() { sed -n 's/.*all-at-sink=[0-9.]*s (\([0-9.]*\) msg\/s).*/\1/p'; }
pf=(); pc=()
for r in $(seq "$RUNS"); do
  out=$(nice -n -10 "$ANCH/relay_throughput.sh" 127.0.0.1 2525 "$COUNT" "$SIZE" 20 1 2626 | grep '^run')
  echo "postfix  $out"; pf+=("$(echo "$out" | rate)")
  out=$(nice -n -10 "$ANCH/relay_throughput.sh" 127.0.0.1 $PORT "$COUNT" "$SIZE" 20 1 2626 | grep '^run')
  echo "postcore $out"; pc+=("$(echo "$out" | rate)")
done
a=$(med "${pf[@]}"); b=$(med "${pc[@]}")
echo "RESULT relay size=$SIZE: postfix $a msg/s, postcore $b msg/s, ratio $(python3 -c "print(f'{$b/$a:.2f}')")x (median of $RUNS, at the sink)"
kill $MS; wait $MS 2>/dev/null || true
echo "peak memory during the runs (group, processes, RSS MiB, PSS MiB; summed over processes):"
grep -E 'postfix|postcore' "$WORK/mempeak.txt" || cat "$WORK/mempeak.txt"
