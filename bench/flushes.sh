#!/usr/bin/env bash
# Device flushes per message, postcore vs Postfix, on the same runs (alternating): the
# flush requests the block device completed (/sys/block/DEV/stat, field 16) from the start
# of a smtp-source run until every message is delivered, plus 0.5 s, divided by the count.
# Sessions 1, 10, 20 and 100; mail to one mailbox (one), to ten mailboxes (many), and to
# a remote domain relayed to smtp-sink on 127.0.0.1:2626 (remote; smtp-sink writes nothing).
# Maildirs are moved aside (same file system) before each run, for both servers.
# Also the octets written to the device per message (/sys/block/DEV/stat field 7, sectors),
# counted after a final `sync` so that writeback still pending is included.
#
# usage: bench/flushes.sh [COUNT] [SESSIONS] [MODES]
#   COUNT 1000, SESSIONS "1 10 20 100", MODES "one many remote" by default
# env: SIZE message size in octets (default 4096)
#      DEV block device holding /tmp and /var/spool/postfix (default: the one under /tmp)
# needs: ../shared/bench/anchors/setup.sh all (Postfix on 127.0.0.1:2525, sink.test routed to
#        127.0.0.1:2626), cargo build --release
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/.." && pwd)
COUNT=${1:-1000}; SESSIONS=${2:-"1 10 20 100"}; MODES=${3:-"one many remote"}
SIZE=${SIZE:-4096}
BIN=${BIN:-$TOP/target/release/postcore}
WORK=${WORK:-/tmp/postcore-flush-bench}
PORT=3527; ADMIN=3467
DEV=${DEV:-$(lsblk -no PKNAME "$(findmnt -no SOURCE -T /tmp)" 2>/dev/null | head -1)}
[ -n "$DEV" ] || DEV=$(basename "$(findmnt -no SOURCE -T /tmp)")
[ -r "/sys/block/$DEV/stat" ] || { echo "no /sys/block/$DEV/stat: set DEV" >&2; exit 1; }
[ -x "$BIN" ] || { echo "build first: cargo build --release" >&2; exit 1; }
ss -ltn | grep -q '127.0.0.1:2525 ' || { echo "Postfix anchor not running: ../shared/bench/anchors/setup.sh all" >&2; exit 1; }
rm -rf "$WORK"; mkdir -p "$WORK"
. "$HERE/lib.sh"
postcore_start $ADMIN "smtp=$PORT" '[limits]\nmax_connections_per_ip = 1000'
SINK=""
trap 'kill $PC 2>/dev/null; wait $PC 2>/dev/null; [ -n "$SINK" ] && kill $SINK 2>/dev/null; true' EXIT
python3 "$HERE/setup_postcore.py" "127.0.0.1:$ADMIN" "$(cat "$WORK/data/admin.token")" "$COUNT" >/dev/null
curl -sf -H "Authorization: Bearer $(cat "$WORK/data/admin.token")" -H 'Content-Type: application/json' \
  -d '{"name":"sink.test","kind":"relay","relay_host":"127.0.0.1:2626"}' "http://127.0.0.1:$ADMIN/api/domains" >/dev/null
/usr/sbin/smtp-sink -u nobody -c 127.0.0.1:2626 1024 > "$WORK/sink.out" 2>&1 & SINK=$!
sleep 0.5
flushes() { awk '{print $16}' "/sys/block/$DEV/stat"; }
sectors() { awk '{print $7}' "/sys/block/$DEV/stat"; }
files() { { find "$1" -path '*/new/*' -type f 2>/dev/null || true; } | wc -l; }
sunk() { local n; n=$({ tr '\r' '\n' < "$WORK/sink.out" | grep -o 'mesg=[0-9]*' || true; } | tail -1 | cut -d= -f2); echo "${n:-0}"; }
# run PORT MAILROOT MODE SESSIONS -> "msg/s flushes/msg KiB-written/msg"
run() {
  local port=$1 root=$2 mode=$3 s=$4 base t0 t1 f0 f1 w0 w1 to
  move_aside "$root"; sync; sleep 1
  case $mode in
    one) to="-t user1@example.test"; base=$(files "$root") ;;
    many) to="-N -t u@example.test"; base=$(files "$root") ;;
    remote) to="-N -t u@sink.test"; base=$(sunk) ;;
  esac
  f0=$(flushes); w0=$(sectors); t0=$(date +%s.%N)
  /usr/sbin/smtp-source -s "$s" -m "$COUNT" -l "$SIZE" -f bench@example.test -M client.example.test $to "127.0.0.1:$port"
  local deadline=$(( $(date +%s) + 600 ))
  while :; do
    if [ "$mode" = remote ]; then n=$(( $(sunk) - base )); else n=$(( $(files "$root") - base )); fi
    [ "$n" -ge "$COUNT" ] && break
    [ "$(date +%s)" -gt $deadline ] && { echo "timeout ($n of $COUNT)" >&2; break; }
    sleep 0.05
  done
  t1=$(date +%s.%N); sleep 0.5; f1=$(flushes); sync; w1=$(sectors)
  python3 -c "print(f'{$COUNT/($t1-$t0):.0f} {($f1-$f0)/$COUNT:.3f} {($w1-$w0)/2/$COUNT:.0f}')"
}
echo "### $(date -u +%FT%TZ) $(nproc) cores, device $DEV, $COUNT messages of $SIZE octets per run"
printf '%-7s %-8s %30s %30s %7s\n' mode sessions "postfix msg/s flush/msg KiB/msg" "postcore msg/s flush/msg KiB/msg" ratio
for mode in $MODES; do
  for s in $SESSIONS; do
    read -r pfr pff pfw < <(run 2525 /tmp/anchor-vmail/example.test "$mode" "$s")
    read -r pcr pcf pcw < <(run $PORT "$WORK/data/mail/users" "$mode" "$s")
    printf '%-7s %-8s %12s %9s %7s %12s %9s %7s %7s\n' "$mode" "$s" "$pfr" "$pff" "$pfw" "$pcr" "$pcf" "$pcw" \
      "$(python3 -c "print(f'{$pff/max($pcf,0.001):.1f}x')")"
  done
done
echo "ratio: Postfix's flushes per message / postcore's"
rm -rf /tmp/anchor-vmail/example.test.aside "$WORK/data/mail/users.aside"
