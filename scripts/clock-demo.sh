#!/usr/bin/env bash
# The main job of this stage: build Meridian and watch its TrueTime interval.
# Uses the system chronyd when its command socket exists; otherwise starts a
# private pair of chronyd daemons on loopback (-x: the system clock is never
# touched), stopped again on exit. Extra arguments go to `meridian clock`.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/install-deps.sh"
build=${MERIDIAN_BUILD_DIR:-$root/build}
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j"$(nproc)" --target meridian >/dev/null
meridian="$build/cmd/meridian"

sock=/run/chrony/chronyd.sock
if [ ! -S "$sock" ]; then
    chronyd=$(command -v chronyd || echo /usr/sbin/chronyd)
    dir=$(mktemp -d /tmp/meridian-clock.XXXXXX)
    chmod 755 "$dir"  # chronyd drops to _chrony and must traverse it
    port=$((20000 + RANDOM % 20000))
    cat >"$dir/upstream.conf" <<CONF
local stratum 8
port $port
bindaddress 127.0.0.1
allow 127.0.0.1
cmdport 0
bindcmdaddress $dir/sock/upstream.sock
pidfile $dir/upstream.pid
CONF
    cat >"$dir/node.conf" <<CONF
server 127.0.0.1 port $port iburst minpoll -4 maxpoll -4
port 0
cmdport 0
bindcmdaddress $dir/sock/node.sock
pidfile $dir/node.pid
CONF
    "$chronyd" -x -d -f "$dir/upstream.conf" >"$dir/upstream.log" 2>&1 &
    up=$!
    "$chronyd" -x -d -f "$dir/node.conf" >"$dir/node.log" 2>&1 &
    node=$!
    trap 'kill $node $up 2>/dev/null; wait $node $up 2>/dev/null; rm -rf "$dir"' EXIT
    sock=$dir/sock/node.sock
    for _ in $(seq 50); do [ -S "$sock" ] && break; sleep 0.1; done
    echo "clock-demo: private chronyd pair in $dir (upstream pid $up, node pid $node)"
    sleep 1
fi
echo "clock-demo: meridian clock --clock chrony:$sock --watch   (Ctrl-C to stop)"
"$meridian" clock --clock "chrony:$sock" --watch "$@" || true
