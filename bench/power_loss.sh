#!/usr/bin/env bash
# The power-loss harness (tests/power_loss.rs) with many copies per file system: postcore on
# loop-mounted ext4 (no journal), ext4 (journal) and XFS images while four sessions send; each
# copy of the image (at random moments and right after 250s) is fsck'd, mounted and recovered,
# and every message acknowledged before it must be there exactly once and whole.
# Prints, per file system, the copies checked and the messages acknowledged.
#
# usage: bench/power_loss.sh [COPIES]     (default 100 per file system; needs root)
set -euo pipefail
cd "$(dirname "$0")/.."
COPIES=${1:-100}
echo "### $(date -u +%FT%TZ) $(nproc) cores, kernel $(uname -r), $COPIES copies per file system"
POWER_LOSS_COPIES=$COPIES cargo test --release --test power_loss -- --test-threads=1 --nocapture 2>&1 \
  | grep -E "copies checked|^test |test result|panicked|assertion"
