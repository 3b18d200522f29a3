#!/usr/bin/env bash
# IMAP against Dovecot on the same 5,000-message INBOX (../shared/bench/anchors/gen_corpus.py,
# seed 2, delivered over SMTP to both), with the anchors' imap_bench.py (imaplib, LOGIN):
# LOGIN, SELECT, FETCH of header fields of all messages, UID SEARCH BODY, FETCH 500 full
# bodies, APPEND 1,000. Runs alternate between the two servers; medians and ratios at the end.
# Then the same server work timed with a thin client (bench/imap_raw.py), imaplib's own floor
# for the header FETCH (bench/imap_client_floor.py: each server's reply replayed from memory),
# and the memory of 2,000 IDLE connections on both (bench/imap_idle_mem.py).
#
# usage: bench/imap_bench.sh [RUNS] [IDLE_CONNECTIONS]
# needs: sudo ../shared/bench/anchors/setup.sh all (Postfix 2525, Dovecot IMAP 1143),
#        cargo build --release
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/.." && pwd)
ANCH=${ANCHORS:-$(cd "$TOP/../shared/bench/anchors" && pwd)}
RUNS=${1:-3}
IDLE=${2:-2000}
BIN=${BIN:-$TOP/target/release/postcore}
WORK=${WORK:-/tmp/postcore-imap-bench}
CORPUS=/tmp/anchor-corpus-imap
SMTP=3627; IMAP=3143; ADMIN=3667
[ -x "$BIN" ] || { echo "build first: cargo build --release" >&2; exit 1; }
[ -d "$CORPUS" ] || python3 "$ANCH/gen_corpus.py" "$CORPUS" 5000 2 >/dev/null
ulimit -n 65536 || true
rm -rf "$WORK"; mkdir -p "$WORK"
. "$HERE/lib.sh"
postcore_start $ADMIN "smtp=$SMTP imap=$IMAP" '[limits]\nmax_connections_per_ip = 10000'
trap 'kill $PC 2>/dev/null; wait $PC 2>/dev/null || true' EXIT
P="$BIN admin --config $WORK/postcore.toml"
$P domain add example.test >/dev/null
echo pass | $P user add imapuser --password-stdin >/dev/null
echo pass | $P user add plainuser --password-stdin >/dev/null
$P settings set allow_unencrypted=true imap.max_connections_per_user_ip=0 filter.antivirus=false >/dev/null
# postcore: log in once so the INBOX is known to IMAP; deliveries are then indexed as they
# arrive (header cache, full-text index), which is what the seeding time below includes.
python3 - "$IMAP" <<'PY'
import imaplib, sys
m = imaplib.IMAP4("127.0.0.1", int(sys.argv[1])); m.login("imapuser", "pass"); m.logout()
PY
# The cost of indexing at delivery: the same corpus into a user IMAP has never opened (no
# indexing until its first login) and into imapuser (indexed as it arrives).
p0=$(date +%s.%N)
python3 "$ANCH/seed_mailbox.py" 127.0.0.1 $SMTP plainuser@example.test "$CORPUS" 4
p1=$(date +%s.%N)
t0=$(date +%s.%N)
python3 "$ANCH/seed_mailbox.py" 127.0.0.1 $SMTP imapuser@example.test "$CORPUS" 4
t1=$(date +%s.%N)
DV=/tmp/anchor-vmail/example.test/imapuser
have=$( (find "$DV" -type f -path '*/[nc][eu][wr]/*' 2>/dev/null || true) | wc -l)
if [ "$have" -lt 5000 ]; then
  rm -rf "$DV"
  python3 "$ANCH/seed_mailbox.py" 127.0.0.1 2525 imapuser@example.test "$CORPUS" 4
  for _ in $(seq 600); do [ "$( (find "$DV" -type f -path '*/new/*' 2>/dev/null || true) | wc -l)" -ge 5000 ] && break; sleep 0.5; done
fi
echo "### $(date -u +%FT%TZ) $(nproc) cores, loadavg $(cat /proc/loadavg)"
echo "postcore seeding without indexing: 5000 messages in $(python3 -c "print(f'{$p1-$p0:.1f}')")s; with indexing at delivery: $(python3 -c "print(f'{$t1-$t0:.1f}')")s; per message +$(python3 -c "print(f'{(($t1-$t0)-($p1-$p0))/5000*1000:.2f}')") ms"
du -sh "$WORK/data/db" | sed 's/^/postcore index (RocksDB, all column families): /'
med() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END{ if(NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2 }'; }
field() { sed -n "s/.*$1[^=]*=\([0-9.]*\)\(ms\|s\).*/\1/p"; }
declare -A D P2
for r in $(seq "$RUNS"); do
  out=$(nice -n -10 python3 "$ANCH/imap_bench.py" 127.0.0.1 1143 imapuser@example.test pass --runs 1 --append-dir "$CORPUS" | grep '^run')
  echo "dovecot  $out"
  for k in login select fetch_hdr search fetch_body append; do D[$k]+="$(echo "$out" | field "$k") "; done
  out=$(nice -n -10 python3 "$ANCH/imap_bench.py" 127.0.0.1 $IMAP imapuser pass --runs 1 --append-dir "$CORPUS" | grep '^run')
  echo "postcore $out"
  for k in login select fetch_hdr search fetch_body append; do P2[$k]+="$(echo "$out" | field "$k") "; done
done
for k in login select fetch_hdr search fetch_body append; do
  a=$(med ${D[$k]}); b=$(med ${P2[$k]})
  echo "RESULT imap $k: dovecot $a, postcore $b, speed ratio $(python3 -c "print(f'{$a/$b:.2f}' if $b > 0 else 'inf')")x (median of $RUNS; ms for login/select, s otherwise)"
done
python3 "$HERE/imap_raw.py" 15 1143 imapuser@example.test $IMAP imapuser pass
python3 "$HERE/imap_client_floor.py" 9 1143 imapuser@example.test $IMAP imapuser pass
python3 "$HERE/imap_idle_mem.py" "$IDLE" 127.0.0.1 1143 imapuser@example.test pass dovecot
python3 "$HERE/imap_idle_mem.py" "$IDLE" 127.0.0.1 $IMAP imapuser pass "pid:$PC"
