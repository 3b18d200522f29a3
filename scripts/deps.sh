#!/usr/bin/env bash
# Installs what building and testing postcore needs on Debian, only where it is missing.
# Rust 1.95 (cargo) must already be installed: Debian's own rustc is too old.
set -euo pipefail
need=()
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
for p in librocksdb-dev libclang-dev pkg-config swaks python3 python3-dkim python3-nacl procps bc dnsmasq-base curl fetchmail; do
  have_pkg "$p" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}" >&2
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
if ! command -v cargo >/dev/null; then
  echo "cargo not found: install Rust 1.95 (rustup) first" >&2
  exit 1
fi
