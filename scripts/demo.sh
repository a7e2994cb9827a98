#!/usr/bin/env bash
# The main job: install what is missing, build Meridian (the plain RelWithDebInfo
# configuration the README documents) and run `meridian demo`: a local three-zone
# cluster with a chronyd-fed clock and sample data, and the SQL shell on it.
# Arguments go to `meridian demo` (e.g. -e "SELECT * FROM singers", --nodes 5, --keep).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/install-deps.sh" >&2
build=${MERIDIAN_BUILD_DIR:-$root/build}
launcher=()
if command -v ccache >/dev/null; then launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache); fi
echo "demo.sh: building meridian in $build" >&2
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "${launcher[@]}" >/dev/null
cmake --build "$build" -j"$(nproc)" --target meridian >/dev/null
exec "$build/cmd/meridian" demo "$@"
