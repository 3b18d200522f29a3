#!/usr/bin/env bash
# Accept-and-deliver throughput, postcore vs Postfix (virtual(8) to Maildir), alternating in one
# run, both fsyncing, 20 concurrent sessions, one message per connection (smtp-source).
# Prints each run, the medians, the ratio with its per-run spread, postcore's share of the no-disk
# ceiling (smtp-source -> smtp-sink, same invocation), and peak memory of both (RSS and PSS summed over
# processes, sampled every 0.5 s by the anchors' mem_sample.py).
#
# usage: bench/smtp_throughput.sh [COUNT] [RUNS] [SIZES] [MODES]
#   COUNT 5000, RUNS 3, SIZES "4096 102400", MODES "one many" by default
# env: SETTLE=N  wipe the server's Maildirs, sync and wait N seconds before each run instead of
#      letting the anchor script wipe them 1 s before it (WIPE=1). Default: unset (WIPE=1).
#      Why: on ext4 without a journal the kernel will not reuse an inode freed less than 60 s
#      ago (360 s while its inode-table block is dirty) and checks every free inode it passes
#      against that rule on every file creation (recently_deleted() in fs/ext4/ialloc.c). Right
#      after a mass delete each new file costs 20-30x more (bench/inode_reuse.py), for both
#      servers. SETTLE=65 removes part of that cost; new files dirty the inode-table blocks of
#      their deleted neighbours, which then count as recent for 360 s.
#      ASIDE=1  move the server's Maildirs out of the way (rename, same file system) before each
#      run instead of deleting them, and delete them all after the last run: every run starts
#      with empty Maildirs and no inode freed nearby, so neither server pays that cost.
#      FILTER=off  postcore with its filter off (antivirus, attachment rules, antispam with its
#      DNS and sender-authentication checks), as the Postfix anchor runs none: the durable
#      receive-and-deliver path alone. Default: the filter as configured by default (on).
#      KEEP=1  with ASIDE=1: keep the moved-aside Maildirs at the end instead of deleting them, so
#      that another invocation right after this one (an A/B of two builds) does not start next to
#      thousands of just-freed inodes. Mind the disk: a 100 KiB run leaves 500 MB per server.
#      PERF=FILE  record a profile of postcore (perf record -g -p) during its first run.
#      FLOOR=1  also run bench/receive_floor (the least a durable Maildir receiver does; its
#      journal mode, Maildir-safe) against the same client, beside the ceiling: how much of the
#      ceiling any server can reach here.
#      FLOOR="syncfs journal nothing" runs those of its flush modes (see its src/main.rs) in turn.
#      PERF_CALLGRAPH  perf's call-graph option instead of -g, e.g. "--call-graph dwarf,8192"
#      (whole stacks through Rust's inlined frames; the release build keeps no frame pointers).
# needs: sudo ../shared/bench/anchors/setup.sh all   (Postfix on 127.0.0.1:2525)
#        cargo build --release
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/.." && pwd)
ANCH=${ANCHORS:-$(cd "$TOP/../shared/bench/anchors" && pwd)}
COUNT=${1:-5000}; RUNS=${2:-3}; SIZES=${3:-"4096 102400"}; MODES=${4:-"one many"}
BIN=${BIN:-$TOP/target/release/postcore}
WORK=${WORK:-/tmp/postcore-bench}
PORT=3525; ADMIN=3465; IMAP=3143
[ -x "$BIN" ] || { echo "build first: cargo build --release" >&2; exit 1; }
ss -ltn | grep -q '127.0.0.1:2525 ' || { echo "Postfix anchor not running: sudo $ANCH/setup.sh all" >&2; exit 1; }

mkdir -p "$WORK"
. "$HERE/lib.sh"
postcore_start $ADMIN "smtp=$PORT imap=$IMAP" '[limits]\nmax_connections_per_ip = 1000'
trap 'kill $PC 2>/dev/null; wait $PC 2>/dev/null; kill $MS 2>/dev/null || true' EXIT
# The recipients' mailboxes are known to IMAP (opened once), as every active user's is.
python3 "$HERE/setup_postcore.py" "127.0.0.1:$ADMIN" "$(cat "$WORK/data/admin.token")" "$COUNT" "$IMAP"
if [ "${FILTER:-}" = off ]; then
  settings_patch "$ADMIN" '{"filter": {"antivirus": false, "block_executables": false, "block_archives": false, "spam": {"enabled": false}}}'
fi

EXTRA_GROUP=postcore:$BIN "$ANCH/mem_sample.py" watch "$WORK/mempeak.txt" 0.5 & MS=$!
echo "### $(date -u +%FT%TZ) $(nproc) cores, loadavg $(cat /proc/loadavg)"
# The machine's idle time (all cores) in milliseconds, from /proc; with lib.sh's cpu_ms
# (postcore's CPU time) it covers the anchor script's 1 s pause before its clock starts.
idle_ms() { awk -v hz="$(getconf CLK_TCK)" '/^cpu /{print ($5 + $6) * 1000 / hz}' /proc/stat; }
# quiesce: waits (at most 60 s) until postcore's CPU time has grown by less than 10 ms in each
# of four 0.5 s windows in a row, so that work it leaves for after a burst (the full-text pass
# waits for a 1 s pause in deliveries) never overlaps the next run of either server; that
# work is reported as after=… ms/msg.
quiesce() {
  local a b quiet=0; a=$(cpu_ms)
  for _ in $(seq 120); do
    sleep 0.5; b=$(cpu_ms)
    if python3 -c "import sys; sys.exit(0 if $b - $a < 10 else 1)"; then
      quiet=$((quiet + 1)); [ "$quiet" -ge 4 ] && return 0
    else
      quiet=0
    fi
    a=$b
  done
}
med() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END{ if(NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2 }'; }
rate() { sed -n 's/.*all-delivered=[0-9.]*s (\([0-9.]*\) msg\/s).*/\1/p'; }
# one_run PORT MAILROOT SIZE MODE: one anchor-script run, with the SETTLE or ASIDE wipe if asked
one_run() {
  local wipe=${WIPE:-1}
  if [ -n "${ASIDE:-}" ]; then
    move_aside "$2"
    wipe=0
  elif [ -n "${SETTLE:-}" ]; then
    rm -rf "$2"/user[0-9]*; sync; sleep "$SETTLE"
    wipe=0
  fi
  # The anchor script syncs and waits 1 s before it starts the clock (and wipes when WIPE=1).
  WIPE=$wipe nice -n -10 "$ANCH/smtp_throughput.sh" 127.0.0.1 "$1" "$2" "$COUNT" "$3" 20 "$4" 1 | grep '^run'
}
[ -n "${ASIDE:-}" ] && echo "### ASIDE=1: Maildirs moved aside (not deleted) before each run"
echo "### postcore's filter: ${FILTER:-on (default configuration)}"
[ -n "${SETTLE:-}" ] && echo "### SETTLE=$SETTLE: Maildirs wiped, synced and left $SETTLE s before each run"
# source_to PORT SIZE: the client of the ceiling and the floor (the anchor script runs its own).
source_to() {
  /usr/sbin/smtp-source -s 20 -m "$COUNT" -l "$2" -f bench@example.test -M client.example.test -t u@example.test "127.0.0.1:$1"
}
# The no-disk ceiling: smtp-source into smtp-sink (answers 250, stores nothing), same
# sessions and sizes, in this invocation.
ceiling() {
  /usr/sbin/smtp-sink -u nobody -c 127.0.0.1:2627 1024 > "$WORK/sink.out" 2>&1 & local sk=$!
  sleep 0.5
  local t0 t1; t0=$(date +%s.%N)
  source_to 2627 "$1"
  t1=$(date +%s.%N); kill $sk; wait $sk 2>/dev/null || true
  python3 -c "print(f'{$COUNT/($t1-$t0):.1f}')"
}
# FLOOR=1: the least a durable Maildir receiver does (bench/receive_floor: the dialogue, one
# file written unnamed in new/ and linked, the 250 after a shared flush, by default its journal
# mode; no parsing, queue, index or logs), same client, sessions and sizes, alternating with the ceiling's runs; each
# run into a new Maildir on the same file system as the servers', removed at the end.
FLOOR_BIN=$TOP/bench/receive_floor/target/release/receive-floor
FLOOR_MODES=
if [ -n "${FLOOR:-}" ]; then
  (cd "$TOP/bench/receive_floor" && cargo build --release --offline -q)
  FLOOR_MODES=$([ "$FLOOR" = 1 ] && echo journal || echo "$FLOOR")
fi
floor_run() {
  local md="$WORK/floor-md.$RANDOM$RANDOM"
  FLOOR_SYNC=$2 "$FLOOR_BIN" 127.0.0.1:2628 "$md" > "$WORK/floor.out" 2>&1 & local fl=$!
  sleep 0.5; sync; sleep 0.5
  local t0 t1 c0 c1 i0 i1; t0=$(date +%s.%N); i0=$(idle_ms)
  c0=$(cpu_ms $fl)
  source_to 2628 "$1"
  t1=$(date +%s.%N); i1=$(idle_ms)
  c1=$(cpu_ms $fl)
  kill $fl; wait $fl 2>/dev/null || true
  local n; n=$(find "$md/new" -type f | wc -l)
  [ "$n" = "$COUNT" ] || echo "floor: $n files, not $COUNT" >&2
  python3 -c "print(f'{$COUNT/($t1-$t0):.1f} {($c1-$c0)/$COUNT:.3f} {100*($i1-$i0)/(1000*$(nproc)*($t1-$t0)):.0f}')"
}
quiesce
for size in $SIZES; do
  cl=(); declare -A fr=() fc=()
  for r in $(seq "$RUNS"); do
    cl+=("$(ceiling "$size")")
    for m in $FLOOR_MODES; do
      read -r a b i < <(floor_run "$size" "$m"); fr[$m]+="$a "; fc[$m]+="$b/$i% "
    done
  done
  c=$(med "${cl[@]}")
  echo "ceiling size=$size: smtp-source -> smtp-sink ${cl[*]} msg/s, median $c"
  for m in $FLOOR_MODES; do
    # shellcheck disable=SC2086
    f=$(med ${fr[$m]})
    echo "floor size=$size sync=$m: smtp-source -> receive-floor ${fr[$m]}msg/s (its CPU a message / machine idle: ${fc[$m]}), median $f, $(python3 -c "print(f'{100*$f/$c:.0f}')") % of the ceiling"
  done
  for mode in $MODES; do
    pf=(); pc=(); ratios=()
    for r in $(seq "$RUNS"); do
      out=$(one_run 2525 /tmp/anchor-vmail/example.test "$size" "$mode")
      echo "postfix  $out"; pf+=("$(echo "$out" | rate)")
      # PERF=FILE: a profile of postcore (perf record -g -p) during its first run.
      if [ -n "${PERF:-}" ] && [ "$r" = 1 ]; then perf record -F 999 ${PERF_CALLGRAPH:--g} -p "$PC" -o "$PERF" 2>/dev/null & PERFPID=$!; fi
      c0=$(cpu_ms); i0=$(idle_ms)
      out=$(one_run $PORT "$WORK/data/mail/users" "$size" "$mode")
      c1=$(cpu_ms); i1=$(idle_ms)
      if [ -n "${PERFPID:-}" ]; then kill -INT "$PERFPID"; wait "$PERFPID" || true; PERFPID=; fi
      quiesce; c2=$(cpu_ms)
      echo "postcore $out cpu=$(python3 -c "print(f'{($c1 - $c0) / $COUNT:.3f}')")ms/msg machine-idle=$(python3 -c "print(f'{($i1 - $i0) / 1000:.2f}')")s after=$(python3 -c "print(f'{($c2 - $c1) / $COUNT:.3f}')")ms/msg"
      pc+=("$(echo "$out" | rate)")
      ratios+=("$(python3 -c "print(f'{${pc[-1]}/${pf[-1]}:.2f}')")")
    done
    a=$(med "${pf[@]}"); b=$(med "${pc[@]}")
    lo=$(printf '%s\n' "${ratios[@]}" | sort -n | head -1); hi=$(printf '%s\n' "${ratios[@]}" | sort -n | tail -1)
    echo "RESULT size=$size rcpt=$mode: postfix $a msg/s, postcore $b msg/s, ratio $(python3 -c "print(f'{$b/$a:.2f}')")x (median of $RUNS, delivered; per-run ratios ${ratios[*]}: $lo-$hi), postcore at $(python3 -c "print(f'{100*$b/$c:.0f}')") % of the no-disk ceiling"
  done
done
kill $MS; wait $MS 2>/dev/null || true
# KEEP=1: leave the moved-aside Maildirs (delete them later, or before the next run only if it
# starts more than 6 minutes after the deletion): a run that starts within minutes of a mass
# delete pays ext4's recently-deleted inode check (see SETTLE above) on every file it creates.
if [ -z "${KEEP:-}" ]; then rm -rf /tmp/anchor-vmail/example.test.aside "$WORK/data/mail/users.aside" "$WORK"/floor-md.*; fi
echo "peak memory during the runs (group, processes, RSS MiB, PSS MiB; summed over processes):"
grep -E 'postfix|postcore' "$WORK/mempeak.txt" || cat "$WORK/mempeak.txt"
