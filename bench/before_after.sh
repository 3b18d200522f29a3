#!/usr/bin/env bash
# Runs the SMTP, IMAP and POP3 benchmarks (each against its anchor in the same invocation) for
# two builds of postcore, in the order BEFORE, AFTER, BEFORE: the two BEFORE runs give the
# noise between two runs of one build, against which the AFTER ratios are judged.
#
# usage: bench/before_after.sh BEFORE_BIN AFTER_BIN [OUTDIR]
#   e.g. git worktree add /tmp/baseline <commit>
#        (cd /tmp/baseline && CARGO_TARGET_DIR=/tmp/baseline-target cargo build --release)
#        cargo build --release
#        bench/before_after.sh /tmp/baseline-target/release/postcore target/release/postcore
# env: SMTP_ARGS (default "2000 3 4096"), IMAP_ARGS ("3 200"), POP3_ARGS ("3"); ASIDE=1 is
#      set for the SMTP runs (Maildirs moved aside, see smtp_throughput.sh).
# needs: ../shared/bench/anchors/setup.sh all
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
BEFORE=$(realpath "$1"); AFTER=$(realpath "$2")
OUT=${3:-$HERE/results/before-after}
mkdir -p "$OUT"
SMTP_ARGS=${SMTP_ARGS:-"2000 3 4096"}
IMAP_ARGS=${IMAP_ARGS:-"3 200"}
POP3_ARGS=${POP3_ARGS:-"3"}
n=0
for bin in "$BEFORE" "$AFTER" "$BEFORE"; do
  n=$((n + 1))
  tag=$([ "$bin" = "$BEFORE" ] && echo before || echo after)
  echo "### run $n: $tag ($bin)"
  # shellcheck disable=SC2086
  ASIDE=1 BIN=$bin "$HERE/smtp_throughput.sh" $SMTP_ARGS 2>&1 | tee "$OUT/smtp-$n-$tag.txt" | grep -E "^RESULT" || true
  # shellcheck disable=SC2086
  BIN=$bin "$HERE/imap_bench.sh" $IMAP_ARGS 2>&1 | tee "$OUT/imap-$n-$tag.txt" | grep -E "^RESULT" || true
  # shellcheck disable=SC2086
  BIN=$bin "$HERE/pop3_bench.sh" $POP3_ARGS 2>&1 | tee "$OUT/pop3-$n-$tag.txt" | grep -E "^RESULT" || true
done
