#!/usr/bin/env bash
# Installs the Debian packages s1d needs to build, test and run the demo,
# only those that are missing. Safe to run again.
set -euo pipefail

packages=(
    meson ninja-build pkg-config gcc clang clang-format libclang-rt-14-dev
    libpq-dev libuv1-dev libsystemd-dev libjansson-dev libinih-dev
    libpcre2-dev libutf8proc-dev libcmocka-dev libssl-dev
    postgresql postgresql-client
    python3 python3-numpy python3-regex python3-psycopg2 acl
)

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "installing: ${missing[*]}"
as_root=()
[ "$(id -u)" -eq 0 ] || as_root=(sudo)
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -q
"${as_root[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
