#!/usr/bin/env bash
# Runs the whole test suite: unit tests of every crate and the integration tests, which start
# the real server on loopback ports and drive it with real clients (swaks, Python smtplib).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cargo test --workspace --locked "$@"
