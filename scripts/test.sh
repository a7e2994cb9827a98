#!/usr/bin/env bash
# Builds Meridian with AddressSanitizer + UndefinedBehaviorSanitizer and runs the
# whole test suite under ctest. Extra arguments go to ctest (e.g. -R paxos, -L unit).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/install-deps.sh"
build=${MERIDIAN_BUILD_DIR:-$root/build-asan}
cmake -S "$root" -B "$build" -G Ninja -DMERIDIAN_SANITIZE=ON -DMERIDIAN_STRICT=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build "$build" -j"$(nproc)"
cd "$build"
MERIDIAN_LOG=${MERIDIAN_LOG:-warn} ctest --output-on-failure -j2 "$@"
