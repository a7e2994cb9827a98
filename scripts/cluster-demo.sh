#!/usr/bin/env bash
# The main job of this stage: build Meridian and run a local three-zone cluster
# on loopback with mutual TLS and a chrony-fed TrueTime clock and three data
# groups (key ranges split at "h" and "p"), run a few transactions (commit wait
# included), lock-free reads at every replica, the libmeridian bank example
# whose transfers are two-phase commits across groups, and a tablet split, and
# show the cluster. It keeps running until Ctrl-C (or until --exit-after-demo),
# then stops every node cleanly.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/scripts/lib/chrony-pair.sh"
"$root/scripts/install-deps.sh"
build=${MERIDIAN_BUILD_DIR:-$root/build}
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j"$(nproc)" --target meridian meridian-bank >/dev/null
m="$build/cmd/meridian"
bank="$build/examples/meridian-bank"

dir=$(mktemp -d /tmp/meridian-demo.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    chrony_pair_stop
    rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

chrony_pair_start "$dir"
certs=$dir/certs
"$m" cert create-ca --certs-dir "$certs" >/dev/null
"$m" cert create-node --certs-dir "$certs" --host 127.0.0.1,localhost >/dev/null
"$m" cert create-client --certs-dir "$certs" --user root >/dev/null

base=$((21000 + RANDOM % 20000))
join="127.0.0.1:$base,127.0.0.1:$((base + 1)),127.0.0.1:$((base + 2))"
zones=(us-east1-a us-east1-b us-east1-c)
for i in 0 1 2; do
    http=()
    [ "$i" = 0 ] && http=(--http "127.0.0.1:$((base + 10))")
    "$m" start --data "$dir/node$i" --listen "127.0.0.1:$((base + i))" --zone "${zones[$i]}" \
        --region us-east1 --join "$join" --certs "$certs" --clock "chrony:$CHRONY_SOCK" \
        "${http[@]}" >"$dir/node$i.log" 2>&1 &
    pids+=($!)
done
sleep 1
c=(--certs "$certs")
"$m" init --host "127.0.0.1:$base" "${c[@]}" --data-groups 3 --split-at h,p
echo "waiting for leaders..."
leader=""
for _ in $(seq 60); do
    for i in 0 1 2; do
        if "$m" status --host "127.0.0.1:$((base + i))" "${c[@]}" --json 2>/dev/null |
            grep -q '"id":2,[^}]*"state":"leader"'; then
            leader="127.0.0.1:$((base + i))"
        fi
    done
    [ -n "$leader" ] && break
    sleep 0.5
done
[ -n "$leader" ] || { echo "no leader; logs in $dir" >&2; exit 1; }
run() { echo "\$ meridian $*"; "$m" "$@" "${c[@]}"; }
run kv put alice 100 --host "127.0.0.1:$base"
run kv put bob 50 --host "127.0.0.1:$base"
run kv txn get alice get bob put alice 70 put bob 80 --host "127.0.0.1:$((base + 1))"
run kv put zoe 10 --host "127.0.0.1:$base"
# One transaction over two groups (alice in ["", "h"), zoe in ["p", +inf)): two-phase commit.
run kv txn get zoe put alice 60 put zoe 20 --host "$join"
for i in 0 1 2; do
    run kv scan a h --host "127.0.0.1:$((base + i))"
done
echo "\$ meridian-bank --spread (accounts a-... to z-..., over all three groups)"
"$bank" --addrs "$join" --certs "$certs" --accounts 12 --transfers 40 --threads 2 --spread
# A tablet split by hand (they also split by themselves past --split-size): the keys from
# "b" on leave the first group for a new one, through its Paxos log.
run split b --host "127.0.0.1:$base"
run kv get bob --host "127.0.0.1:$((base + 2))"
sleep 0.3
"$m" status --host "127.0.0.1:$base" "${c[@]}"
cat <<INFO

The cluster runs in $dir (logs node*.log). Try, in another terminal:
  $m status  --host 127.0.0.1:$base --certs $certs
  $m kv txn get alice put alice 1 put zoe 2 --host $join --certs $certs
  $m kv get alice --max-staleness 5s --host 127.0.0.1:$((base + 2)) --certs $certs
  curl -s http://127.0.0.1:$((base + 10))/metrics | grep meridian_
INFO
if [ "${1:-}" = "--exit-after-demo" ]; then exit 0; fi
echo "Ctrl-C stops every node cleanly."
wait "${pids[@]}"
