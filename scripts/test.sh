#!/usr/bin/env bash
# Runs the whole test suite: unit tests of every crate and the integration tests, which start
# the real server on loopback ports and drive it with real clients (swaks, Python smtplib).
# Ends with one summary line: "tests: N passed, N failed".
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh test
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
cargo test --workspace --all-targets --locked --no-fail-fast "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
passed=$(sed -n 's/^test result: .* \([0-9]*\) passed; \([0-9]*\) failed.*/\1/p' "$log" | paste -sd+ - | bc)
failed=$(sed -n 's/^test result: .* \([0-9]*\) passed; \([0-9]*\) failed.*/\2/p' "$log" | paste -sd+ - | bc)
echo "tests: ${passed:-0} passed, ${failed:-0} failed"
exit "$status"
