#!/usr/bin/env bash
# The long suite of meridian-jepsen: every workload (register, bank, list-append, set, sql-bank) under
# every nemesis alone and all of them together, then the store-growth rows (set and bank with
# --store-check 10s: every replica's decision rows and system-key versions must come back to
# none once the load stops), then the negative controls, minutes each, on 5 nodes. Prints one line per run (verdict, operations checked, outcomes, node crashes, faults
# injected, the anomalies found), writes the
# same lines to jepsen/runs/<stamp>-long.txt followed by a table of every run's availability
# beside its verdict, and leaves the run directories in jepsen/runs/.
#
#   jepsen/harness/long-suite.sh BUILD_DIR [SECONDS] [SEED] [WORKLOADS] [NEMESES]
#
# BUILD_DIR holds jepsen/harness/meridian-jepsen and cmd/meridian (any build type; the
# transactional workloads need a build with libmeridian). WORKLOADS and NEMESES are
# comma-separated subsets (default: all; "controls" in WORKLOADS runs only the controls,
# "store" only the store-growth rows).
# Extra harness options (e.g. --net loopback, --groups 1) go in MERIDIAN_JEPSEN_ARGS; CONTROLS
# (comma-separated run names) picks some of the controls.
# Exit status: 0 when every run gave the expected verdict.
set -uo pipefail
build=${1:?usage: long-suite.sh BUILD_DIR [SECONDS] [SEED] [WORKLOADS] [NEMESES]}
secs=${2:-120}
seed=${3:-1}
workloads=${4:-register,bank,list-append,set,sql-bank,store,controls}
nemeses=${5:-kill,pause,partition,clock,split,all}
root=$(cd "$(dirname "$0")/../.." && pwd)
stamp=$(date -u +%Y%m%dT%H%M%SZ)
hj="$build/jepsen/harness/meridian-jepsen"
table="$root/jepsen/runs/$stamp-long.txt"
avail="$root/jepsen/runs/$stamp-long-availability.txt"
read -r -a extra <<<"${MERIDIAN_JEPSEN_ARGS:-}"
run() { # name expected-exit workload args...
    local name=$1 want=$2 wl=$3
    shift 3
    local out="$root/jepsen/runs/$stamp-long-$name"
    local t0=$SECONDS
    "$hj" --workload "$wl" --time "$secs" --nodes 5 --rate 50 --seed "$seed" \
        --meridian "$build/cmd/meridian" --out "$out" "${extra[@]}" "$@" >"$out.log" 2>&1
    local rc=$?
    local ops oks faults verdict anomalies net crashes
    ops=$(grep -m1 '^ops checked:' "$out/summary.txt" 2>/dev/null | awk '{print $3}')
    oks=$(awk '/^operations:/{f=1;next} f&&/^  [a-z]/&&$1!="f"{o+=$2;x+=$3;i+=$4} /^$/{if(f)exit}
               END{if(f)printf "%d/%d/%d",o,x,i}' "$out/summary.txt" 2>/dev/null)
    faults=$(grep -m1 '^faults:' "$out/summary.txt" 2>/dev/null | sed 's/^faults: *//')
    verdict=$(grep '^verdict:' "$out/summary.txt" 2>/dev/null | tail -1 | awk '{print $2}')
    anomalies=$(grep -m1 '^anomalies:' -A12 "$out/summary.txt" 2>/dev/null |
        grep -E '^  [A-Za-z][A-Za-z0-9-]*: [0-9]+$' | tr -d ' ' | paste -sd, -)
    net=$(grep -q 'network namespace' "$out/summary.txt" 2>/dev/null && echo netns || echo loopback)
    local store
    store=$(grep -m1 '^store: *bounded' "$out/summary.txt" 2>/dev/null | sed 's/^store: *bounded:.*versions \([0-9]*\) s after.*/ store: bounded, back to empty in \1 s/')
    grep -q '^store: *NOT BOUNDED' "$out/summary.txt" 2>/dev/null && store=" store: NOT BOUNDED"
    [ -n "$store" ] && store="$store (at the end of the load: $(grep -m1 '^store: *at the end' "$out/summary.txt" |
        sed 's/.*at most \([0-9]*\) decision rows and \([0-9]*\) system.*/\1 decision rows, \2 system versions per replica/'))"
    crashes=$(grep -m1 '^crashes:' "$out/summary.txt" 2>/dev/null | awk '{print $2}')
    # Availability (jepsen/avail.h): live windows, longest gap, commits/s with and without a
    # fault, and per fault kind the longest gap around its faults.
    local live gap fps qps kinds
    live=$(grep -m1 '^availability: [0-9]*/[0-9]* one-second' "$out/summary.txt" 2>/dev/null |
        awk '{print $2}')
    gap=$(grep -m1 '^availability: [0-9]*/[0-9]* one-second' "$out/summary.txt" 2>/dev/null |
        sed 's/.*longest gap \([0-9.]*\) s.*/\1/')
    fps=$(grep -m1 '^availability: committed/s' "$out/summary.txt" 2>/dev/null | awk '{print $3}')
    qps=$(grep -m1 '^availability: committed/s' "$out/summary.txt" 2>/dev/null |
        sed 's/.* windows, \([0-9.]*\) in .*/\1/')
    kinds=$(grep '^  fault ' "$out/summary.txt" 2>/dev/null |
        sed 's/^  fault \([a-z-]*\) *[0-9]*x: longest gap \([0-9.]*\) s.*/\1 \2s/' |
        paste -sd, -)
    # Per group (workloads that know each operation's group): how long after a fault its hit
    # groups committed again at worst, and the other groups' longest gap.
    local blips
    blips=$(grep '^  blips ' "$out/summary.txt" 2>/dev/null |
        sed -e 's/^  blips \([a-z-]*\) *[0-9]*x: /\1 /' \
            -e "s/hit groups' longest gap [0-9.]* s (mean [0-9.]* s), committing again within \(.*\) of a start/back \1/" \
            -e "s/; other groups' longest gap /, others /" | paste -sd';' -)
    printf '%-34s %-8s %-9s %-8s %-9s %-9s %s%s\n' "$name" "${verdict:-?}" "${live:-?}" \
        "${gap:-?}" "${fps:-?}" "${qps:-?}" "${kinds:--}" "${blips:+; blips: $blips}" >>"$avail"
    printf '%-34s exit %d (want %d) %-8s ops %-6s ok/fail/info %-14s %3ds %s crashes %s faults: %s%s%s\n' \
        "$name" "$rc" "$want" "${verdict:-?}" "${ops:-?}" "${oks:-?}" $((SECONDS - t0)) "$net" \
        "${crashes:-?}" "${faults:-?}" "${anomalies:+ anomalies: $anomalies}" "$store" | tee -a "$table"
    [ "$rc" -eq "$want" ]
}
has() { [[ ",$1," == *",$2,"* ]]; }
mkdir -p "$root/jepsen/runs"
echo "# long-suite.sh $build $secs $seed $workloads $nemeses ${MERIDIAN_JEPSEN_ARGS:-}" \
    "(commit $(git -C "$root" rev-parse --short HEAD 2>/dev/null), $(date -u +%FT%TZ))" |
    tee "$table"
status=0
for wl in register bank list-append set sql-bank; do
    has "$workloads" "$wl" || continue
    for nem in kill pause partition clock split all; do
        has "$nemeses" "$nem" || continue
        [ "$wl" = register ] && [ "$nem" = split ] && continue # splits cut at keys
        kinds=$nem
        [ "$nem" = all ] && kinds=kill,pause,partition,clock
        [ "$nem" = all ] && [ "$wl" != register ] && kinds=$kinds,split
        run "$wl-$nem" 0 "$wl" --nemesis "$kinds" || status=1
    done
done
if has "$workloads" store; then
    # Nothing grows for ever: the nodes keep decisions and old versions for 10 s; after the
    # load every replica must come back to no decision row and no system-key version (the
    # harness waits up to 60 s and fails the run otherwise). set: single-group commits; bank:
    # two-phase commits over three groups, whose decisions wait for every participant.
    run set-store-growth 0 set --nemesis kill,partition --store-check 10s || status=1
    run bank-store-growth 0 bank --nemesis kill,partition,split --store-check 10s || status=1
fi
if has "$workloads" controls; then
    # ctl NAME ...: run NAME unless CONTROLS names others.
    ctl() { [ -z "${CONTROLS:-}" ] || has "$CONTROLS" "$1" || return 0; run "$@"; }
    # Each must come out invalid (exit 1); see jepsen/harness/README.md.
    ctl register-stale-reads-control 1 register --nemesis partition --break stale-reads ||
        status=1
    ctl bank-no-read-locks-control 1 bank --nemesis none --break no-read-locks || status=1
    ctl list-append-no-read-locks-control 1 list-append --nemesis none --break no-read-locks ||
        status=1
    # A lying clock within a wide bound: valid with commit wait, invalid without it.
    ctl list-append-fast-leader-200ms 0 list-append --nemesis fast-leader --clock-bound 200ms ||
        status=1
    ctl list-append-no-commit-wait-control 1 list-append --nemesis fast-leader \
        --clock-bound 200ms --break no-commit-wait || status=1
    # A fifth of the commit answers dropped: their outcome comes from the coordinator
    # group's status, which must never call a committed transaction aborted (G1a).
    ctl list-append-lost-answers 0 list-append --nemesis kill,pause,partition,clock,split \
        --lose-commit-answers 20 || status=1
    ctl list-append-fast-leader-lost-answers 0 list-append --nemesis fast-leader \
        --clock-bound 200ms --lose-commit-answers 20 || status=1
    # A clock beyond its bound: invalid, with real-time anomalies only (see results.json).
    ctl list-append-lying-leader-control 1 list-append --nemesis lying-leader \
        --clock-bound 30ms || status=1
    # Strong reads then go to any replica (the harness sets strong_any_replica).
    ctl bank-no-safe-wait-control 1 bank --nemesis partition --break no-safe-wait || status=1
    # The bank through SQL: without read locks, and transfers as two autocommit statements.
    ctl sql-bank-no-read-locks-control 1 sql-bank --nemesis none --break no-read-locks ||
        status=1
    ctl sql-bank-autocommit-control 1 sql-bank-autocommit --nemesis none || status=1
fi
# The availability table beside the verdicts (also in $avail).
{
    echo
    echo "availability (one-second windows with a commit; longest gap without one, s; commits/s in"
    echo "windows with a fault and in quiet ones; per fault kind, the longest gap around its faults;"
    echo "blips: per kind, how long after a fault the groups whose leader it hit committed again at"
    echo "worst, and the other groups' longest gap)"
    printf '%-34s %-8s %-9s %-8s %-9s %-9s %s\n' run verdict live gap_s fault/s quiet/s \
        "per-kind gap"
    cat "$avail" 2>/dev/null
} | tee -a "$table"
echo "table: $table"
exit $status
