#!/usr/bin/env bash
# Antivirus alone, side by side: postcore's engine (`postcore scan`, the same code the server's
# scanner threads run) against clamd (`clamdscan --multiscan --fdpass`, its thread pool) and
# clamscan, over the same corpus with the same signature directory, runs alternating.
#
# usage: bench/av_bench.sh [RUNS=3] [DBS="mixed large"] [WORK=/tmp/postcore-av-bench]
#   corpus: the parity corpus (bench/av_parity.py builds it into $WORK/parity if missing)
#   per database (../shared/bench/anchors/make_clamdb.py DIR mixed|large):
#     load:  clamd from start to answering PING; postcore's load+compile (its own report):
#            run 1 cold (empty cache: Hyperscan compiles), later runs warm (compiled
#            databases read back from --cache, as the server does after its first load)
#     scan:  messages/s, median of RUNS, spread (min-max); the ratio postcore/clamd
#     RSS:   clamd's peak (VmHWM) after the runs; postcore scan's peak (GNU time %M), cold/warm
# needs: clamav-daemon, clamdscan, clamscan (Debian), target/release/postcore
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-3}; DBS=${2:-"mixed large"}; WORK=${3:-/tmp/postcore-av-bench}
ANCHORS=../shared/bench/anchors
PC=target/release/postcore
mkdir -p "$WORK"
CORPUS=$WORK/parity/corpus
[ -d "$CORPUS" ] || python3 bench/av_parity.py "$WORK/parity" >/dev/null || true
N=$(ls "$CORPUS" | wc -l); BYTES=$(du -sb --apparent-size "$CORPUS" | cut -f1)
med() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END{ if(NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2 }'; }
span() { printf '%s\n' "$@" | sort -g | awk 'NR==1{lo=$1} {hi=$1} END{print lo "-" hi}'; }
now() { date +%s.%N; }
echo "### $(date -u +%FT%TZ) $(nproc) cores; corpus $N messages, $BYTES bytes; runs $RUNS"
for kind in $DBS; do
  DB=$WORK/db-$kind
  [ -d "$DB" ] || PYTHONDONTWRITEBYTECODE=1 python3 $ANCHORS/make_clamdb.py "$DB" "$kind" >/dev/null
  SOCK=$WORK/clamd-$kind.ctl; CONF=$WORK/clamd-$kind.conf
  cat > "$CONF" <<EOF
LocalSocket $SOCK
Foreground true
DatabaseDirectory $DB
MaxThreads $(nproc)
DisableCache yes
ScanMail true
ScanArchive true
LogFile $WORK/clamd-$kind.log
EOF
  t0=$(now); clamd -c "$CONF" >/dev/null 2>&1 & CLAMD=$!
  until clamdscan -c "$CONF" --ping 1 >/dev/null 2>&1; do sleep 0.05; done
  t1=$(now); CLAMD_LOAD=$(python3 -c "print(f'{$t1-$t0:.2f}')")
  pc_rates=(); cd_rates=(); ratios=(); pc_load=""; pc_rss=""; CACHE=$WORK/cache-$kind; rm -rf "$CACHE"
  for r in $(seq 1 "$RUNS"); do
    t0=$(now); out=$(clamdscan -c "$CONF" --fdpass -m "$CORPUS" 2>&1 || true); t1=$(now)
    cd_found=$(echo "$out" | grep -c 'FOUND$' || true)
    cd=$(python3 -c "print(f'{$N/($t1-$t0):.1f}')"); cd_rates+=("$cd")
    err=$( { /usr/bin/time -f 'RSS %M' $PC scan --cache "$CACHE" -d "$DB" --infected "$CORPUS" >/dev/null; } 2>&1 || true)
    pc_line=$(echo "$err" | grep '^postcore scan:')
    pc_load=$(echo "$pc_line" | sed -n 's/.*load+compile \([0-9.]*\) s.*/\1/p')
    pc_scan=$(echo "$pc_line" | sed -n 's/.*, scan \([0-9.]*\) s.*/\1/p')
    pc_found=$(echo "$pc_line" | sed -n 's/.*files, \([0-9]*\) infected.*/\1/p')
    pc_rss=$(echo "$err" | sed -n 's/^RSS //p')
    pc=$(python3 -c "print(f'{$N/$pc_scan:.1f}')"); pc_rates+=("$pc")
    if [ "$r" = 1 ]; then cold_load=$pc_load; cold_rss=$pc_rss; fi
    ratios+=("$(python3 -c "print(f'{$pc/$cd:.1f}')")")
    echo "  $kind run $r: clamd ${cd} msg/s (FOUND $cd_found); postcore ${pc} msg/s (infected $pc_found, load ${pc_load} s); ratio ${ratios[-1]}x"
  done
  CLAMD_RSS=$(awk '/VmHWM/{print $2}' /proc/$CLAMD/status)
  kill $CLAMD; wait $CLAMD 2>/dev/null || true
  t0=$(now); clamscan --no-summary -d "$DB" /dev/null >/dev/null 2>&1 || true; t1=$(now)
  echo "$kind: clamd $(med "${cd_rates[@]}") msg/s ($(span "${cd_rates[@]}")), load ${CLAMD_LOAD} s, peak RSS $((CLAMD_RSS/1024)) MiB;" \
       "postcore $(med "${pc_rates[@]}") msg/s ($(span "${pc_rates[@]}")), load cold (compile) ${cold_load} s / warm (compiled cache) ${pc_load} s, peak RSS cold $((cold_rss/1024)) / warm $((pc_rss/1024)) MiB;" \
       "ratio $(med "${ratios[@]}")x ($(span "${ratios[@]}")); clamscan load $(python3 -c "print(f'{$t1-$t0:.2f}')") s"
done
