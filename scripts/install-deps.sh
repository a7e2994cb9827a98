#!/usr/bin/env bash
# Installs the Debian packages Meridian needs to build, test and run, when missing.
# As root it runs apt-get; otherwise it uses sudo when that works without a
# password, or prints the exact command to run and exits 1.
set -euo pipefail

PKGS=(gcc make cmake ninja-build pkg-config rsync
      libsqlite3-dev libuv1-dev libssl-dev libjansson-dev libprotobuf-c-dev protobuf-c-compiler
      libedit-dev sqlite3 chrony iproute2 nftables gnuplot-nox)

missing=()
for p in "${PKGS[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done
if [ ${#missing[@]} -eq 0 ]; then
    echo "install-deps: all packages present"
    exit 0
fi
echo "install-deps: installing ${missing[*]}"

as_root=()
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
        as_root=(sudo -n)
    else
        echo "install-deps: not root; run:" >&2
        echo "  sudo apt-get update && sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
        exit 1
    fi
fi

# Installing chrony must not start the system's chronyd (it would discipline the
# real clock): a policy-rc.d that denies service starts during the install.
policy=/usr/sbin/policy-rc.d
made_policy=0
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | "${as_root[@]}" tee "$policy" >/dev/null
    "${as_root[@]}" chmod 755 "$policy"
    made_policy=1
fi
cleanup() { if [ "$made_policy" = 1 ]; then "${as_root[@]}" rm -f "$policy"; fi; }
trap cleanup EXIT

export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -qq
"${as_root[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "install-deps: done"
