#!/usr/bin/env bash
# What the filter costs on the SMTP path: postcore's accept-and-deliver rate with attachment
# rules and antivirus on (the anchors' `mixed` signature set loaded: 50,000 body, 5,000 logical,
# 30,000 hash signatures) against the same server with the filter off, runs alternating, same
# data, same wipe policy (Maildirs moved aside before each run), 20 sessions (smtp-source).
#
# CHECK=net measures the DNS and sender-authentication checks instead (SPF, DKIM, DMARC,
# reverse DNS, HELO against the anchors' NXDOMAIN stub): on against off, the antivirus as it is
# on both sides. The client (127.0.0.1) is taken out of the trusted networks for it, since a
# trusted client gets none of the checks about the client.
#
# CHECK=sieve measures Sieve at delivery: every user with bench/sieve_rules20.sieve active (20
# rules, none matching smtp-source's messages, so all of them run) against no script.
#
# usage: [CHECK=av|net|sieve] bench/scan_cost.sh [COUNT=5000] [RUNS=3] [SIZES="4096 102400"]
# needs: cargo build --release; Postfix's smtp-source (package postfix)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/.." && pwd)
ANCH=${ANCHORS:-$(cd "$TOP/../shared/bench/anchors" && pwd)}
COUNT=${1:-5000}; RUNS=${2:-3}; SIZES=${3:-"4096 102400"}
BIN=${BIN:-$TOP/target/release/postcore}
WORK=${WORK:-/tmp/postcore-scan-cost}
PORT=3625; ADMIN=3665; IMAP=3643
rm -rf "$WORK"; mkdir -p "$WORK"
DB=$WORK/clamdb
PYTHONDONTWRITEBYTECODE=1 python3 "$ANCH/make_clamdb.py" "$DB" mixed >/dev/null
. "$HERE/lib.sh"
postcore_start $ADMIN "smtp=$PORT imap=$IMAP" "[limits]\nmax_connections_per_ip = 1000\n[scanner]\nsignature_dir = \"$DB\""
trap 'kill $PC 2>/dev/null; wait $PC 2>/dev/null || true' EXIT
TOKEN=$(cat "$WORK/data/admin.token")
python3 "$HERE/setup_postcore.py" "127.0.0.1:$ADMIN" "$TOKEN" "$COUNT" "$IMAP"
# Wait for the signature database (the log says when it is loaded).
for _ in $(seq 600); do grep -q 'antivirus: database loaded' "$WORK/server.log" && break; sleep 0.2; done
grep 'antivirus: database loaded' "$WORK/server.log" | tail -1
echo "server after the load: $(grep -E 'VmRSS|VmHWM' /proc/$PC/status | tr -s ' \t' ' ' | tr '\n' ' ')"
filter() {
  if [ "${CHECK:-av}" = sieve ]; then sieve_scripts "$1"; return; fi
  settings_patch "$ADMIN" "{\"filter\": $1}"
}
# Sieve on (the 20-rule script active for user0..user9) or off (none active).
sieve_scripts() {
  for u in $(seq 0 9); do
    if [ "$1" = on ]; then
      curl -sf -X POST -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$ADMIN/api/sieve/user$u/rules20/activate" >/dev/null
    else
      curl -sf -X POST -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$ADMIN/api/sieve/user$u/deactivate" >/dev/null
    fi
  done
}
if [ "${CHECK:-av}" = net ]; then
  settings_patch "$ADMIN" '{"relay": {"trusted_networks": []}}'
fi
if [ "${CHECK:-av}" = sieve ]; then
  for u in $(seq 0 9); do
    curl -sf -X PUT -H "Authorization: Bearer $TOKEN" --data-binary @"$HERE/sieve_rules20.sieve" \
      "http://127.0.0.1:$ADMIN/api/sieve/user$u/rules20" >/dev/null
  done
fi
case ${CHECK:-av} in
  sieve) ON=on; OFF=off ;;
  net) ON='{"spam": {"network_checks": true}}'; OFF='{"spam": {"network_checks": false}}' ;;
  *) ON='{"antivirus": true, "block_executables": true, "block_extensions": ["scr", "vbs"]}'
     OFF='{"antivirus": false, "block_executables": false, "block_extensions": []}' ;;
esac
med() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END{ if(NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2 }'; }
rate() { sed -n 's/.*all-delivered=[0-9.]*s (\([0-9.]*\) msg\/s).*/\1/p'; }
ROOT=$WORK/data/mail/users
one_run() {
  move_aside "$ROOT"
  WIPE=0 nice -n -10 "$ANCH/smtp_throughput.sh" 127.0.0.1 $PORT "$ROOT" "$COUNT" "$1" 20 one 1 | grep '^run'
}
echo "### $(date -u +%FT%TZ) $(nproc) cores, loadavg $(cat /proc/loadavg); $COUNT messages per run; CHECK=${CHECK:-av}"
for size in $SIZES; do
  off=(); on=(); cost=()
  for r in $(seq "$RUNS"); do
    filter "$OFF"; out=$(one_run "$size"); echo "off $out"; off+=("$(echo "$out" | rate)")
    filter "$ON"; out=$(one_run "$size"); echo "on  $out"; on+=("$(echo "$out" | rate)")
    cost+=("$(python3 -c "print(f'{100*(1-${on[-1]}/${off[-1]}):.1f}')")")
  done
  a=$(med "${off[@]}"); b=$(med "${on[@]}")
  lo=$(printf '%s\n' "${cost[@]}" | sort -g | head -1); hi=$(printf '%s\n' "${cost[@]}" | sort -g | tail -1)
  echo "RESULT size=$size: filter off $a msg/s, on $b msg/s: ${CHECK:-av} checks cost $(python3 -c "print(f'{100*(1-$b/$a):.1f}')") % (median of $RUNS; per-run ${cost[*]} %: $lo to $hi)"
done
{ grep -c 'VIRUS_FOUND\|attachment blocked' "$WORK/server.log" || true; } | sed 's/^/findings in the log (should be 0): /'
{ grep -c 'checks: ' "$WORK/server.log" || true; } | sed 's/^/messages with network checks logged: /'
{ grep -c ': sieve: user=' "$WORK/server.log" || true; } | sed 's/^/Sieve runs logged: /'
grep 'checks: ' "$WORK/server.log" | tail -1 || true
rm -rf "$ROOT.aside"
