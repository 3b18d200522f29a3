#!/usr/bin/env bash
# POP3 against Dovecot on the same 5,000-message maildrop (../shared/bench/anchors/gen_corpus.py,
# seed 2, delivered over SMTP to both), with the anchors' pop3_bench.py (poplib, USER/PASS):
# login, STAT, UIDL and RETR of 500 messages; alternating runs, medians and the RETR ratio.
#
# usage: bench/pop3_bench.sh [RUNS]
# needs: sudo ../shared/bench/anchors/setup.sh all (Postfix 2525, Dovecot POP3 1110),
#        cargo build --release
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/.." && pwd)
ANCH=${ANCHORS:-$(cd "$TOP/../shared/bench/anchors" && pwd)}
RUNS=${1:-3}
BIN=${BIN:-$TOP/target/release/postcore}
WORK=${WORK:-/tmp/postcore-pop3-bench}
CORPUS=/tmp/anchor-corpus-imap
SMTP=3527; POP3=3110; ADMIN=3467
[ -x "$BIN" ] || { echo "build first: cargo build --release" >&2; exit 1; }
[ -d "$CORPUS" ] || python3 "$ANCH/gen_corpus.py" "$CORPUS" 5000 2 >/dev/null
rm -rf "$WORK"; mkdir -p "$WORK"
. "$HERE/lib.sh"
postcore_start $ADMIN "smtp=$SMTP pop3=$POP3"
trap 'kill $PC 2>/dev/null; wait $PC 2>/dev/null || true' EXIT
P="$BIN admin --config $WORK/postcore.toml"
$P domain add example.test >/dev/null
echo pass | $P user add imapuser --password-stdin >/dev/null
$P settings set allow_unencrypted=true >/dev/null
python3 "$ANCH/seed_mailbox.py" 127.0.0.1 $SMTP imapuser@example.test "$CORPUS" 4
DV=/tmp/anchor-vmail/example.test/imapuser
have=$( (find "$DV" -type f 2>/dev/null || true) | wc -l)
if [ "$have" -lt 5000 ]; then
  rm -rf "$DV"
  python3 "$ANCH/seed_mailbox.py" 127.0.0.1 2525 imapuser@example.test "$CORPUS" 4
  for _ in $(seq 600); do [ "$( (find "$DV" -type f -path '*/new/*' 2>/dev/null || true) | wc -l)" -ge 5000 ] && break; sleep 0.5; done
fi
echo "### $(date -u +%FT%TZ) $(nproc) cores, loadavg $(cat /proc/loadavg)"
med() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END{ if(NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2 }'; }
retr() { sed -n 's/.*retr(500 msgs, [0-9.]*MB)=\([0-9.]*\)s.*/\1/p'; }
dv=(); pc=()
for r in $(seq "$RUNS"); do
  out=$(nice -n -10 python3 "$ANCH/pop3_bench.py" 127.0.0.1 1110 imapuser@example.test pass --runs 1 | grep '^run')
  echo "dovecot  $out"; dv+=("$(echo "$out" | retr)")
  out=$(nice -n -10 python3 "$ANCH/pop3_bench.py" 127.0.0.1 $POP3 imapuser pass --runs 1 | grep '^run')
  echo "postcore $out"; pc+=("$(echo "$out" | retr)")
done
a=$(med "${dv[@]}"); b=$(med "${pc[@]}")
echo "RESULT pop3 RETR 500: dovecot ${a}s, postcore ${b}s, speed ratio $(python3 -c "print(f'{$a/$b:.2f}')")x (median of $RUNS)"
