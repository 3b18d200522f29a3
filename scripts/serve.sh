#!/usr/bin/env bash
# Builds postcore (release) and runs it on its embedded default configuration:
# data in ./postcore-data, a self-signed certificate made on first start, and the ports
# 25/587/465 as root or 2525/5587/5465 otherwise; admin API on 127.0.0.1:8465.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh build
cargo build --release --locked -q
exec target/release/postcore serve "$@"
