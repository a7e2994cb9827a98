#!/usr/bin/env bash
# Build Meridian and watch its TrueTime interval. Uses the system chronyd when
# its command socket exists; otherwise a private chronyd pair on loopback.
# Extra arguments go to `meridian clock`.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/scripts/lib/chrony-pair.sh"
"$root/scripts/install-deps.sh"
build=${MERIDIAN_BUILD_DIR:-$root/build}
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j"$(nproc)" --target meridian >/dev/null

sock=/run/chrony/chronyd.sock
if [ ! -S "$sock" ]; then
    dir=$(mktemp -d /tmp/meridian-clock.XXXXXX)
    trap 'chrony_pair_stop; rm -rf "$dir"' EXIT
    chrony_pair_start "$dir"
    sock=$CHRONY_SOCK
    echo "clock-demo: private chronyd pair in $dir"
fi
echo "clock-demo: meridian clock --clock chrony:$sock --watch   (Ctrl-C to stop)"
"$build/cmd/meridian" clock --clock "chrony:$sock" --watch "$@" || true
