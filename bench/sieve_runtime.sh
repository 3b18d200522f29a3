#!/usr/bin/env bash
# Sieve run time per message: postcore's interpreter against Pigeonhole's sieve-test on the
# same script and message. Process start is left out on both sides: postcore runs the script
# N times in one process (`postcore sieve-test --repeat N`); sieve-test, which runs once per
# process, is timed with the script and with a one-command script ("keep;") alternately, and
# the difference per run is what the script costs it (its compiled binary is cached beside the
# script after the first run, so compilation is out too).
#
# sieve-test's side is CPU time (user + system, from getrusage of the children), the two
# scripts interleaved run by run so drift hits both alike; wall time at 16 ms per process is
# too noisy for a difference of a millisecond.
#
# usage: bench/sieve_runtime.sh [SCRIPT=bench/sieve_rules20.sieve] [RUNS=5] [N=300]
# needs: cargo build --release; sieve-test (package dovecot-sieve)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/.." && pwd)
SCRIPT=${1:-$HERE/sieve_rules20.sieve}; RUNS=${2:-5}; N=${3:-300}
BIN=${BIN:-$TOP/target/release/postcore}
WORK=$(mktemp -d /tmp/sieve-runtime.XXXXXX); chmod 777 "$WORK"
trap 'rm -rf "$WORK"' EXIT
cp "$SCRIPT" "$WORK/rules.sieve"; printf 'keep;\n' > "$WORK/keep.sieve"
# A plain 3 KiB message, as smtp-source sends: no rule matches, every test runs.
{ printf 'From: sender@remote.test\r\nTo: user1@example.test\r\nSubject: test message\r\n'
  printf 'Date: Thu, 3 Dec 2026 10:00:00 +0000\r\nMessage-ID: <bench@remote.test>\r\n\r\n'
  for _ in $(seq 40); do printf '%s\r\n' "$(head -c 72 /dev/zero | tr '\0' 'x')"; done; } > "$WORK/msg.eml"
chmod 666 "$WORK"/*
ST=(sieve-test -o mail_uid=nobody -o mail_gid=nogroup -f sender@remote.test -r user1@example.test)
(cd "$WORK" && "${ST[@]}" rules.sieve msg.eml >/dev/null 2>&1 && "${ST[@]}" keep.sieve msg.eml >/dev/null 2>&1)
# Prints "with without" (µs of CPU per process), the two scripts interleaved.
pair() {
  python3 - "$WORK" "$N" "${ST[@]}" <<'PY'
import os, resource, subprocess, sys
work, n, cmd = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
def cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime
tot = {"rules.sieve": 0.0, "keep.sieve": 0.0}
for _ in range(n):
    for script in tot:
        t = cpu()
        subprocess.run(cmd + [script, "msg.eml"], cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        tot[script] += cpu() - t
print(f"{tot['rules.sieve'] / n * 1e6:.1f} {tot['keep.sieve'] / n * 1e6:.1f}")
PY
}
med() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END{ if(NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2 }'; }
echo "### $(date -u +%FT%TZ) $(nproc) cores, loadavg $(cat /proc/loadavg); script $(basename "$SCRIPT") ($(grep -c '^if' "$SCRIPT") rules), $N sieve-test runs per side per round"
ours=(); theirs=(); ratio=()
for r in $(seq "$RUNS"); do
  us=$("$BIN" sieve-test --repeat 20000 -f sender@remote.test -r user1@example.test "$WORK/rules.sieve" "$WORK/msg.eml" | sed -n 's/.*mean=\([0-9.]*\)us/\1/p')
  read -r with without < <(pair)
  them=$(python3 -c "print(f'{$with - $without:.1f}')")
  echo "round $r: postcore ${us} us; sieve-test ${with} us CPU/process with the script, ${without} without: ${them} us for the script"
  ours+=("$us"); theirs+=("$them"); ratio+=("$(python3 -c "print(f'{$them / $us:.1f}')")")
done
lo=$(printf '%s\n' "${ratio[@]}" | sort -g | head -1); hi=$(printf '%s\n' "${ratio[@]}" | sort -g | tail -1)
echo "RESULT per message: postcore $(med "${ours[@]}") us, sieve-test $(med "${theirs[@]}") us: postcore $(python3 -c "print(f'{$(med "${theirs[@]}") / $(med "${ours[@]}"):.1f}')")x faster (median of $RUNS; per-round ${ratio[*]}: $lo to $hi)"
