#!/usr/bin/env bash
# Installs what postcore needs on Debian, only where it is missing.
#   scripts/deps.sh build   libraries to build the server
#   scripts/deps.sh test    plus the real peers the test suite drives (swaks, python3 with
#                           dkimpy, dnsmasq, fetchmail, …)
# Rust 1.95 (cargo) must already be installed: Debian's own rustc is too old.
set -euo pipefail
mode=${1:-test}
pkgs=(librocksdb-dev libhyperscan-dev libclang-dev pkg-config)
if [ "$mode" = test ]; then
  pkgs+=(swaks python3 python3-dkim python3-nacl procps bc dnsmasq-base curl fetchmail isync mutt e2fsprogs xfsprogs mount clamav-testfiles spamassassin dovecot-sieve dovecot-imapd sieve-connect)
fi
need=()
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
for p in "${pkgs[@]}"; do
  have_pkg "$p" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}" >&2
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  # The tests run Dovecot's programs (imap, sieve-test) directly; the daemon the packages
  # start would hold ports 143/993 that postcore serves.
  if [[ " ${need[*]} " == *" dovecot-"* ]] && [ -d /run/systemd/system ]; then
    $SUDO systemctl disable --now dovecot.service dovecot.socket >/dev/null 2>&1 || true
  fi
fi
if ! command -v cargo >/dev/null; then
  echo "cargo not found: install Rust 1.95 (rustup) first" >&2
  exit 1
fi
