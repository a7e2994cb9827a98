# Sourced by the demo scripts: start a private pair of chronyd daemons on
# loopback (-x: they never touch the system clock). Sets CHRONY_SOCK to the
# node daemon's command socket and CHRONY_PIDS; chrony_pair_stop stops them.
# Usage: chrony_pair_start DIR
chrony_pair_start() {
    local dir=$1
    local chronyd
    chronyd=$(command -v chronyd || echo /usr/sbin/chronyd)
    chmod 755 "$dir" # chronyd drops to _chrony and must traverse it
    local port=$((20000 + RANDOM % 20000))
    cat >"$dir/upstream.conf" <<CONF
local stratum 8
port $port
bindaddress 127.0.0.1
allow 127.0.0.1
cmdport 0
bindcmdaddress $dir/sock-upstream/upstream.sock
pidfile $dir/upstream.pid
CONF
    cat >"$dir/node.conf" <<CONF
server 127.0.0.1 port $port iburst minpoll -4 maxpoll -4
port 0
cmdport 0
bindcmdaddress $dir/sock-node/node.sock
pidfile $dir/node.pid
CONF
    "$chronyd" -x -d -f "$dir/upstream.conf" >"$dir/upstream.log" 2>&1 &
    CHRONY_PIDS=$!
    "$chronyd" -x -d -f "$dir/node.conf" >"$dir/node.log" 2>&1 &
    CHRONY_PIDS="$CHRONY_PIDS $!"
    CHRONY_SOCK=$dir/sock-node/node.sock
    for _ in $(seq 50); do [ -S "$CHRONY_SOCK" ] && break; sleep 0.1; done
    [ -S "$CHRONY_SOCK" ] || { echo "chronyd did not start; see $dir/*.log" >&2; return 1; }
    sleep 1 # first samples
}

chrony_pair_stop() {
    # shellcheck disable=SC2086
    kill $CHRONY_PIDS 2>/dev/null || true
    # shellcheck disable=SC2086
    wait $CHRONY_PIDS 2>/dev/null || true
}
