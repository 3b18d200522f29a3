#!/usr/bin/env bash
# Runs every fuzz target for a fixed time, then minimises its corpus (kept in fuzz/corpus/,
# committed), and prints one line per target: executions, coverage (libFuzzer's cov: edges
# and ft: features), corpus files and octets, and crashes. Any crash fails the script (the
# input is left in fuzz/artifacts/<target>/ to become a regression test).
#
# usage: bench/fuzz.sh [SECONDS] [TARGET...]    (default 600 s each, every target)
# needs: cargo install cargo-fuzz; nightly features through RUSTC_BOOTSTRAP=1 on stable
set -uo pipefail
cd "$(dirname "$0")/../fuzz"
SECS=${1:-600}; shift || true
TARGETS=${*:-$(sed -n 's/^name = "\(.*\)"/\1/p' Cargo.toml | grep -v postcore-fuzz)}
export RUSTC_BOOTSTRAP=1
echo "### $(date -u +%FT%TZ) $(nproc) cores, $SECS s per target, cargo-fuzz $(cargo fuzz --version 2>/dev/null | awk '{print $2}')"
printf '%-14s %8s %12s %8s %8s %8s %10s %8s\n' target seconds execs cov ft files octets crashes
failed=0
for t in $TARGETS; do
  mkdir -p "corpus/$t"
  before=$(ls "artifacts/$t" 2>/dev/null | grep -c '^crash-' || true)
  log=$(mktemp)
  cargo fuzz run "$t" "corpus/$t" -- -max_total_time="$SECS" -print_final_stats=1 >"$log" 2>&1
  status=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | awk '{print $2}')
  ft=$(grep -o 'ft: [0-9]*' "$log" | tail -1 | awk '{print $2}')
  crashes=$(( $(ls "artifacts/$t" 2>/dev/null | grep -c '^crash-' || true) - before ))
  if [ "$status" -ne 0 ] || [ "$crashes" -gt 0 ]; then failed=1; tail -30 "$log"; fi
  cargo fuzz cmin "$t" "corpus/$t" >/dev/null 2>&1 || true
  files=$(find "corpus/$t" -type f | wc -l)
  octets=$(du -sb "corpus/$t" | cut -f1)
  printf '%-14s %8s %12s %8s %8s %8s %10s %8s\n' "$t" "$SECS" "${execs:-?}" "${cov:-?}" "${ft:-?}" "$files" "$octets" "$crashes"
  rm -f "$log"
done
exit $failed
