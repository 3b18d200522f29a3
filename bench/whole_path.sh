#!/usr/bin/env bash
# The whole receiving path with the filter, against the anchor stack (issue "Judge mail": >= 5x):
# Postfix + Rspamd milter + clamd (Debian, ../shared/bench/anchors/setup.sh with MILTER=1,
# GREYLIST=0, RSPAMD_DNS=stub, DELIVERY=lmtp: Postfix -> Dovecot LMTP) against postcore with
# Debian's SpamAssassin rules, its Bayes (inactive: nothing learned), the antivirus with the
# same signature directory as clamd, attachment rules on, delivery to Maildir.
# The same 1,000-message corpus (gen_corpus.py: text, HTML with links, attachments, EICAR in
# every 250th), sent by the anchors' smtp_corpus_bench.py (20 smtplib threads, one message per
# connection, client 127.0.0.1 on both sides: postcore has no XCLIENT), runs alternating; each
# run wipes the recipients' Maildirs first (the script's own policy, both sides); a run ends
# when every accepted message is in a Maildir.
#
# env: ASIDE=1  move both servers' Maildirs out of the way (rename, same file system) before
#      each run instead of letting smtp_corpus_bench.py delete them 1 s before it: on ext4
#      without a journal the kernel's inode allocator is 20-30x slower right after a mass
#      delete (see smtp_throughput.sh, SETTLE), which in a profile of postcore's run was a
#      fifth of its CPU. The moved-aside Maildirs are deleted at the end (KEEP=1 keeps them).
#      DNS_LOG=FILE  answer DNS with bench/dns_log_stub.py instead of the anchors' stub (the
#      same answers, on the same port, for both sides) and print how many questions each side
#      asked in each run: Rspamd leaves out its checks about the client for a local address
#      (its local_addrs), postcore for its trusted networks (loopback by default).
#      PERF=FILE  record a profile of postcore's first run (perf record -g); PERF_CALLGRAPH
#      replaces -g, e.g. "--call-graph dwarf,8192" for whole stacks through inlined frames.
#
# usage: bench/whole_path.sh [RUNS=3] [CORPUS=/tmp/anchor-corpus]
# needs: the anchors installed (../shared/bench/anchors/setup.sh install), cargo build --release
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/.." && pwd)
ANCH=${ANCHORS:-$(cd "$TOP/../shared/bench/anchors" && pwd)}
RUNS=${1:-3}; CORPUS=${2:-/tmp/anchor-corpus}
BIN=${BIN:-$TOP/target/release/postcore}
WORK=${WORK:-/tmp/postcore-whole-path}
PORT=3725; ADMIN=3765; IMAP=3743
[ -d "$CORPUS" ] || python3 "$ANCH/gen_corpus.py" "$CORPUS" 1000 1
GREYLIST=0 MILTER=1 CLAMD_TMPDIR=/dev/shm/clamtmp RSPAMD_DNS=stub DELIVERY=lmtp "$ANCH/setup.sh" config >/dev/null
"$ANCH/setup.sh" start >/dev/null
if [ -n "${DNS_LOG:-}" ]; then
  # Every NXDOMAIN stub on the port: setup.sh's (its pid file) and any lib.sh's dns_stub started.
  pkill -f 'dns_stub.py 5353' 2>/dev/null || true; sleep 0.3; : > "$DNS_LOG"
  python3 "$HERE/dns_log_stub.py" 5353 "$DNS_LOG" </dev/null >/dev/null 2>&1 & LOGSTUB=$!
  sleep 0.3
  kill -0 "$LOGSTUB" 2>/dev/null || { echo "DNS_LOG: the logging stub could not bind 127.0.0.1:5353" >&2; exit 1; }
fi
# After the logging stub, the anchors' own stub again.
restore_stub() {
  if [ -n "${LOGSTUB:-}" ]; then
    kill "$LOGSTUB" 2>/dev/null || true; sleep 0.3
    nohup python3 "$ANCH/dns_stub.py" 5353 </dev/null >/dev/null 2>&1 & echo $! > /tmp/anchor-run/dns_stub.pid
  fi
}
rm -rf "$WORK"; mkdir -p "$WORK"
. "$HERE/lib.sh"
postcore_start $ADMIN "smtp=$PORT imap=$IMAP" "[limits]\nmax_connections_per_ip = 1000\n[scanner]\nsignature_dir = \"/tmp/anchor-run/clamdb\"\nspam_rules = [\"/usr/share/spamassassin\"]"
trap 'kill $PC 2>/dev/null; wait $PC 2>/dev/null || true; restore_stub' EXIT
TOKEN=$(cat "$WORK/data/admin.token")
python3 "$HERE/setup_postcore.py" "127.0.0.1:$ADMIN" "$TOKEN" 10 "$IMAP"
settings_patch "$ADMIN" '{"filter": {"antivirus": true, "discard_infected": false, "block_executables": true, "spam": {"greylist": {"enabled": false}}}}'
for _ in $(seq 1800); do
  grep -q 'antivirus: database loaded' "$WORK/server.log" && grep -q 'antispam: rules loaded' "$WORK/server.log" && break
  sleep 0.2
done
grep -E 'antivirus: database loaded|antispam: rules loaded' "$WORK/server.log" | cut -c1-200
echo "### $(date -u +%FT%TZ) $(nproc) cores; corpus $CORPUS ($(ls "$CORPUS" | wc -l) messages)"
med() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END{ if(NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2 }'; }
rate() { sed -n 's/.*all-delivered=[0-9.]*s (\([0-9.]*\) msg\/s delivered).*/\1/p' | head -1; }
# aside MAILROOT: with ASIDE=1, moves MAILROOT/user* aside (lib.sh's move_aside).
aside() { if [ -n "${ASIDE:-}" ]; then move_aside "$1"; fi; }
[ -n "${ASIDE:-}" ] && echo "### ASIDE=1: Maildirs moved aside (not deleted) before each run, both sides"
# dns_asked SIDE T0: with DNS_LOG, the questions SIDE asked since T0 (a second's grace for
# lookups still under way).
dns_asked() {
  if [ -n "${DNS_LOG:-}" ]; then
    sleep 1; echo "$1 DNS: $(python3 "$HERE/dns_log_stub.py" --count "$DNS_LOG" "$2" "$(date +%s.%N)")"
  fi
}
anchor=(); ours=(); ratio=()
for r in $(seq "$RUNS"); do
  aside /tmp/anchor-vmail/example.test
  t0=$(date +%s.%N)
  a=$(nice -n -10 python3 "$ANCH/smtp_corpus_bench.py" 127.0.0.1 2525 /tmp/anchor-vmail/example.test "$CORPUS" --runs 1 | grep '^run')
  echo "anchor   $a"
  dns_asked "anchor  " "$t0"
  c0=$(cpu_ms)
  # PERF=FILE: a profile of postcore during its first run.
  if [ -n "${PERF:-}" ] && [ "$r" = 1 ]; then perf record -F 999 ${PERF_CALLGRAPH:--g} -p "$PC" -o "$PERF" 2>/dev/null & PERFPID=$!; fi
  aside "$WORK/data/mail/users"
  t0=$(date +%s.%N)
  p=$(nice -n -10 python3 "$ANCH/smtp_corpus_bench.py" 127.0.0.1 $PORT "$WORK/data/mail/users" "$CORPUS" --runs 1 | grep '^run')
  c1=$(cpu_ms)
  if [ -n "${PERFPID:-}" ]; then kill -INT "$PERFPID"; wait "$PERFPID" || true; PERFPID=; fi
  echo "postcore $p cpu=$(python3 -c "print(f'{($c1 - $c0) / $(ls "$CORPUS" | wc -l):.2f}')")ms/msg"
  dns_asked postcore "$t0"
  anchor+=("$(echo "$a" | rate)"); ours+=("$(echo "$p" | rate)")
  ratio+=("$(python3 -c "print(f'{${ours[-1]}/${anchor[-1]}:.2f}')")")
done
echo "median delivered msg/s: Postfix+Rspamd+clamd $(med "${anchor[@]}") (${anchor[*]}), postcore $(med "${ours[@]}") (${ours[*]}); ratio $(python3 -c "print(f'{$(med "${ours[@]}")/$(med "${anchor[@]}"):.2f}')")x (per run ${ratio[*]})"
grep -c 'antispam: (' "$WORK/server.log" | sed 's/^/postcore antispam log lines: /'
grep -E 'antivirus.*(FOUND|infected)|Win.Test.EICAR' "$WORK/server.log" | wc -l | sed 's/^/postcore antivirus detections logged: /'
if [ -n "${ASIDE:-}" ] && [ -z "${KEEP:-}" ]; then rm -rf /tmp/anchor-vmail/example.test.aside "$WORK/data/mail/users.aside"; fi
