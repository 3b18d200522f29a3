# Shared by the bench scripts (source it after setting BIN and WORK).
#
# postcore_start ADMIN_PORT "LISTENER=PORT ..." [EXTRA_TOML]
#   writes $WORK/postcore.toml with those listeners on 127.0.0.1 and every other listener off,
#   the admin API on ADMIN_PORT, no DNS (a dead loopback resolver), then EXTRA_TOML; starts
#   the release binary (nice -10, log in $WORK/server.log), sets PC to its pid, and waits until
#   the first listener answers.
postcore_start() {
  local admin=$1 listeners=$2 extra=${3:-}
  local first="" kind port
  {
    echo "data_dir = \"$WORK/data\""
    echo 'hostname = "mx.bench.test"'
    echo '[listeners]'
    for kind in smtp submission submissions pop3 pop3s imap imaps; do
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
    grep -q '^\[dns\]' <<<"$extra" || printf '[dns]\nresolvers = ["127.0.0.1:9"]\n'
  } > "$WORK/postcore.toml"
  nice -n -10 "$BIN" serve --config "$WORK/postcore.toml" 2> "$WORK/server.log" &
  PC=$!
  for _ in $(seq 100); do ss -ltn | grep -q "127.0.0.1:$first " && break; sleep 0.1; done
}
