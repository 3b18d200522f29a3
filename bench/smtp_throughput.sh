#!/usr/bin/env bash
# Accept-and-deliver throughput, postcore vs Postfix (virtual(8) to Maildir), alternating in one
# run, both fsyncing, 20 concurrent sessions, one message per connection (smtp-source).
# Prints each run, the medians, the ratio, and peak memory of both (RSS and PSS summed over
# processes, sampled every 0.5 s by the anchors' mem_sample.py).
#
# usage: bench/smtp_throughput.sh [COUNT] [RUNS] [SIZES] [MODES]
#   COUNT 5000, RUNS 3, SIZES "4096 102400", MODES "one many" by default
# needs: sudo ../shared/bench/anchors/setup.sh all   (Postfix on 127.0.0.1:2525)
#        cargo build --release
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/.." && pwd)
ANCH=${ANCHORS:-$(cd "$TOP/../shared/bench/anchors" && pwd)}
COUNT=${1:-5000}; RUNS=${2:-3}; SIZES=${3:-"4096 102400"}; MODES=${4:-"one many"}
BIN=$TOP/target/release/postcore
WORK=${WORK:-/tmp/postcore-bench}
PORT=3525; ADMIN=3465
[ -x "$BIN" ] || { echo "build first: cargo build --release" >&2; exit 1; }
ss -ltn | grep -q '127.0.0.1:2525 ' || { echo "Postfix anchor not running: sudo $ANCH/setup.sh all" >&2; exit 1; }

mkdir -p "$WORK"
. "$HERE/lib.sh"
postcore_start $ADMIN "smtp=$PORT" '[limits]\nmax_connections_per_ip = 1000'
trap 'kill $PC 2>/dev/null; wait $PC 2>/dev/null; kill $MS 2>/dev/null || true' EXIT
python3 "$HERE/setup_postcore.py" "127.0.0.1:$ADMIN" "$(cat "$WORK/data/admin.token")" "$COUNT"

EXTRA_GROUP=postcore:$BIN "$ANCH/mem_sample.py" watch "$WORK/mempeak.txt" 0.5 & MS=$!
echo "### $(date -u +%FT%TZ) $(nproc) cores, loadavg $(cat /proc/loadavg)"
med() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END{ if(NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2 }'; }
rate() { sed -n 's/.*all-delivered=[0-9.]*s (\([0-9.]*\) msg\/s).*/\1/p'; }
for size in $SIZES; do
  for mode in $MODES; do
    pf=(); pc=()
    for r in $(seq "$RUNS"); do
      out=$(nice -n -10 "$ANCH/smtp_throughput.sh" 127.0.0.1 2525 /tmp/anchor-vmail/example.test "$COUNT" "$size" 20 "$mode" 1 | grep '^run')
      echo "postfix  $out"; pf+=("$(echo "$out" | rate)")
      out=$(nice -n -10 "$ANCH/smtp_throughput.sh" 127.0.0.1 $PORT "$WORK/data/mail/users" "$COUNT" "$size" 20 "$mode" 1 | grep '^run')
      echo "postcore $out"; pc+=("$(echo "$out" | rate)")
    done
    a=$(med "${pf[@]}"); b=$(med "${pc[@]}")
    echo "RESULT size=$size rcpt=$mode: postfix $a msg/s, postcore $b msg/s, ratio $(python3 -c "print(f'{$b/$a:.2f}')")x (median of $RUNS, delivered)"
  done
done
kill $MS; wait $MS 2>/dev/null || true
echo "peak memory during the runs (group, processes, RSS MiB, PSS MiB; summed over processes):"
grep -E 'postfix|postcore' "$WORK/mempeak.txt" || cat "$WORK/mempeak.txt"
