#!/usr/bin/env bash
# Install the Debian 12 packages portex needs to build, test and benchmark.
# Only what is missing is installed; safe to run again. Needs root or sudo.
set -euo pipefail

build_pkgs=(
  build-essential cmake pkg-config
  libjansson-dev libxml2-dev libxml2-utils libzip-dev libarchive-dev
  libyaml-dev libpcre2-dev libsqlite3-dev sqlite3 libpq-dev
  libcurl4-openssl-dev libmicrohttpd-dev libssl-dev zlib1g-dev uap-core
)
test_pkgs=(
  libcmocka-dev json-schema-test-suite clang libclang-rt-14-dev
  unzip zip libarchive-tools python3 postgresql-15 time bzip2 xz-utils zstd
)
bench_pkgs=(gzip hyperfine ripgrep)

want=("${build_pkgs[@]}")
case "${1:-build}" in
  build) ;;
  test) want+=("${test_pkgs[@]}") ;;
  all) want+=("${test_pkgs[@]}" "${bench_pkgs[@]}") ;;
  *) echo "usage: $0 [build|test|all]" >&2; exit 2 ;;
esac

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep 'install ok installed' >/dev/null \
    || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  SUDO=sudo
fi
echo "install-deps: installing ${missing[*]}" >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
