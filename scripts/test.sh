#!/usr/bin/env bash
# Builds Meridian with AddressSanitizer + UndefinedBehaviorSanitizer and runs the
# whole test suite under ctest. Extra arguments go to ctest (e.g. -R paxos, -L unit).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/install-deps.sh"
build=${MERIDIAN_BUILD_DIR:-$root/build-asan}
launcher=()
if command -v ccache >/dev/null; then launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache); fi
cmake -S "$root" -B "$build" -G Ninja -DMERIDIAN_SANITIZE=ON -DMERIDIAN_STRICT=ON \
    -DMERIDIAN_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo "${launcher[@]}"
cmake --build "$build" -j"$(nproc)"
cd "$build"
MERIDIAN_LOG=${MERIDIAN_LOG:-warn} ctest --output-on-failure -j2 "$@"
