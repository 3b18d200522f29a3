# Shared by the bench scripts (source it after setting BIN and WORK).
#
# postcore_start ADMIN_PORT "LISTENER=PORT ..." [EXTRA_TOML]
#   writes $WORK/postcore.toml with those listeners on 127.0.0.1 and every other listener off,
#   the admin API on ADMIN_PORT, DNS from the anchors' loopback stub (every name NXDOMAIN at
#   once, as Rspamd gets it; started on $DNS_STUB_PORT, default 5353, when not running), then
#   EXTRA_TOML; starts
#   the release binary (nice -10, log in $WORK/server.log), sets PC to its pid, and waits until
#   the first listener answers.
# move_aside MAILROOT: moves MAILROOT/user* into a fresh MAILROOT.aside/XXXXXX (a rename on the
# same file system), so that the next run starts with empty Maildirs and no inode freed nearby
# (see smtp_throughput.sh, SETTLE and ASIDE).
move_aside() {
  mkdir -p "$1.aside"; local to; to=$(mktemp -d "$1.aside/XXXXXX")
  for d in "$1"/user[0-9]*; do if [ -e "$d" ]; then mv "$d" "$to/"; fi; done
}
# settings_patch ADMIN_PORT JSON: applies JSON to the settings of the postcore whose data is in
# $WORK (PATCH /api/settings with its admin token); curl -f makes a refusal fail the call.
settings_patch() {
  curl -sf -X PATCH -H "Authorization: Bearer $(cat "$WORK/data/admin.token")" \
    -H 'Content-Type: application/json' -d "$2" "http://127.0.0.1:$1/api/settings" >/dev/null
}
# cpu_ms [PID]: the CPU time (user + system, all threads) of PID, postcore's ($PC) by default,
# in milliseconds, from /proc.
cpu_ms() { awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) * 1000 / hz}' "/proc/${1:-$PC}/stat"; }
# dns_stub: makes sure the anchors' NXDOMAIN stub answers on 127.0.0.1:$DNS_STUB_PORT (UDP)
# and prints the port.
dns_stub() {
  local port=${DNS_STUB_PORT:-5353}
  local stub
  stub="$(dirname "${BASH_SOURCE[0]}")/../../shared/bench/anchors/dns_stub.py"
  if ! ss -lun | grep -q "127.0.0.1:$port "; then
    nohup python3 "$stub" "$port" </dev/null >/dev/null 2>&1 &
    for _ in $(seq 20); do ss -lun | grep -q "127.0.0.1:$port " && break; sleep 0.1; done
  fi
  echo "$port"
}

postcore_start() {
  local admin=$1 listeners=$2 extra=${3:-}
  local first="" kind port
  {
    echo "data_dir = \"$WORK/data\""
    echo 'hostname = "mx.bench.test"'
    echo '[listeners]'
    for kind in smtp submission submissions pop3 pop3s imap imaps managesieve; do
      port=""
      for l in $listeners; do
        [ "${l%%=*}" = "$kind" ] && port=${l#*=}
      done
      if [ -n "$port" ]; then
        echo "$kind = \"127.0.0.1:$port\""
        [ -n "$first" ] || first=$port
      else
        echo "$kind = \"\""
      fi
    done
    echo "admin = \"127.0.0.1:$admin\""
    printf '%b\n' "$extra"
    grep -q '^\[dns\]' <<<"$extra" || printf '[dns]\nresolvers = ["127.0.0.1:%s"]\n' "$(dns_stub)"
  } > "$WORK/postcore.toml"
  nice -n -10 "$BIN" serve --config "$WORK/postcore.toml" 2> "$WORK/server.log" &
  PC=$!
  for _ in $(seq 100); do ss -ltn | grep -q "127.0.0.1:$first " && break; sleep 0.1; done
}
