#!/usr/bin/env bash
# The long suite of meridian-jepsen: every nemesis alone, all of them together, and the
# stale-reads negative control, minutes each, on 5 nodes. Prints one line per run (verdict,
# operations checked, faults injected) and leaves the run directories in jepsen/runs/.
#
#   jepsen/harness/long-suite.sh BUILD_DIR [SECONDS] [SEED]
#
# BUILD_DIR holds jepsen/harness/meridian-jepsen and cmd/meridian (any build type).
set -uo pipefail
build=${1:?usage: long-suite.sh BUILD_DIR [SECONDS] [SEED]}
secs=${2:-120}
seed=${3:-1}
root=$(cd "$(dirname "$0")/../.." && pwd)
stamp=$(date -u +%Y%m%dT%H%M%SZ)
hj="$build/jepsen/harness/meridian-jepsen"
run() { # name expected-exit args...
    local name=$1 want=$2
    shift 2
    local out="$root/jepsen/runs/$stamp-long-$name"
    "$hj" --workload register --time "$secs" --nodes 5 --rate 50 --seed "$seed" \
        --meridian "$build/cmd/meridian" --out "$out" "$@" >"$out.log" 2>&1
    local rc=$?
    local ops faults verdict
    ops=$(grep -m1 '^ops checked:' "$out/summary.txt" 2>/dev/null | awk '{print $3}')
    faults=$(grep -m1 '^faults:' "$out/summary.txt" 2>/dev/null | sed 's/^faults: *//')
    verdict=$(grep '^verdict:' "$out/summary.txt" 2>/dev/null | tail -1 | awk '{print $2}')
    printf '%-22s exit %d (want %d) %-8s ops %-6s faults: %s\n' "$name" "$rc" "$want" \
        "${verdict:-?}" "${ops:-?}" "${faults:-?}"
    [ "$rc" -eq "$want" ]
}
mkdir -p "$root/jepsen/runs"
status=0
run kill 0 --nemesis kill || status=1
run pause 0 --nemesis pause || status=1
run partition 0 --nemesis partition || status=1
run clock 0 --nemesis clock || status=1
run all 0 --nemesis kill,pause,partition,clock || status=1
run stale-reads-control 1 --nemesis partition --break stale-reads || status=1
exit $status
