#!/usr/bin/env bash
# Prepares a Debian 12 machine to build, test and demo tagwall.  Idempotent: safe to run again.
#   - installs every Debian package the build, the tests and the demo need (apt-get update at most once);
#   - reserves hugepages when it can, and says plainly when it cannot (tagwall then runs with --no-huge);
#   - configures the meson build directory (BUILD_DIR, default ./build);
#   - configures the sanitizer build directory (ASAN_BUILD_DIR, default ./build-asan): clang, AddressSanitizer
#     and UndefinedBehaviorSanitizer, libFuzzer targets (-Dfuzz=true); scripts/test.sh's `asan` and `fuzz`
#     runners and scripts/fuzz.sh use it.  ASAN_BUILD_DIR= (empty) skips it.
# Environment: BUILD_DIR, BUILDTYPE (debugoptimized|release|debug), WERROR=1 (CI), HUGEPAGES (default 1024),
#              ASAN_BUILD_DIR, TAGWALL_SKIP_APT=1 (skip the package step when you manage packages yourself).
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD_DIR=${BUILD_DIR:-build}
ASAN_BUILD_DIR=${ASAN_BUILD_DIR-build-asan}
BUILDTYPE=${BUILDTYPE:-debugoptimized}
HUGEPAGES=${HUGEPAGES:-1024}

packages=(
  # build
  g++ meson ninja-build pkg-config
  dpdk-dev libdpdk-dev libboost-program-options-dev libyaml-cpp-dev libfmt-dev catch2 libpcap-dev
  nlohmann-json3-dev
  # sanitizer and fuzz builds (clang's ASan/UBSan runtimes and libFuzzer)
  clang libclang-rt-14-dev libfuzzer-14-dev
  # tests, demo and benchmarks
  python3 python3-scapy tcpreplay iproute2 ethtool iputils-ping netcat-openbsd socat iperf3 tshark
  xz-utils procps gnuplot-nox
)

say() { printf 'setup: %s\n' "$*"; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else return 1; fi
}

install_packages() {
  if [ "${TAGWALL_SKIP_APT:-0}" = 1 ]; then say "skipping packages (TAGWALL_SKIP_APT=1)"; return; fi
  local missing=()
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if [ ${#missing[@]} -eq 0 ]; then say "all ${#packages[@]} packages present"; return; fi
  say "installing ${#missing[@]} packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # tshark asks whether non-root users may capture; answer once, non-interactively.
  echo "wireshark-common wireshark-common/install-setuid boolean false" | as_root debconf-set-selections || true
  as_root apt-get update -qq
  as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  say "packages installed"
}

reserve_hugepages() {
  local nr=/proc/sys/vm/nr_hugepages have
  have=$(cat "$nr" 2>/dev/null || echo 0)
  if [ "$have" -lt "$HUGEPAGES" ]; then
    echo "$HUGEPAGES" | as_root tee "$nr" >/dev/null 2>&1 || true
    have=$(cat "$nr" 2>/dev/null || echo 0)
  fi
  if ! grep -qs ' /dev/hugepages hugetlbfs ' /proc/mounts; then
    as_root mkdir -p /dev/hugepages 2>/dev/null || true
    as_root mount -t hugetlbfs nodev /dev/hugepages 2>/dev/null || true
  fi
  if [ "$have" -gt 0 ] && grep -qs ' /dev/hugepages hugetlbfs ' /proc/mounts; then
    say "hugepages: $have x $(awk '/Hugepagesize/ {print $2 $3}' /proc/meminfo) reserved, mounted on /dev/hugepages"
  else
    say "WARNING: hugepages could not be reserved (have $have; need root and free memory)."
    say "         tagwall will fall back to --no-huge: it works, but lookups run several times slower."
  fi
}

# configure_dir DIR MESON_OPTION...: configures DIR, or reconfigures it when its buildtype or werror
# differ from the wanted ones.  The first two options must be --buildtype and -Dwerror.
configure_dir() {
  local dir=$1
  shift
  local opts=("$@") want
  want="${opts[0]#--buildtype=} ${opts[1]#-Dwerror=}"
  if [ -f "$dir/build.ninja" ]; then
    # Reconfigure only on a change: `meson configure` makes the next ninja run regenerate everything.
    local have
    have=$(meson introspect "$dir" --buildoptions 2>/dev/null | python3 -c '
import json, sys
o = {x["name"]: x["value"] for x in json.load(sys.stdin)}
print(o["buildtype"], str(o["werror"]).lower())' 2>/dev/null || true)
    if [ "$have" = "$want" ]; then
      say "build directory $dir up to date (${opts[*]})"
    else
      meson configure "$dir" "${opts[0]}" "${opts[1]}" >/dev/null
      say "build directory $dir reconfigured (${opts[*]})"
    fi
  else
    meson setup "$dir" "${opts[@]}" >/dev/null
    say "build directory $dir configured (${opts[*]})"
  fi
}

configure_build() {
  local werror=false
  [ "${WERROR:-0}" = 1 ] && werror=true
  # Always say which: a build directory once configured by CI (WERROR=1) goes back to plain warnings.
  configure_dir "$BUILD_DIR" --buildtype="$BUILDTYPE" -Dwerror="$werror"
  [ -n "$ASAN_BUILD_DIR" ] || return 0
  if ! command -v clang++ >/dev/null; then
    say "WARNING: clang++ is missing: no sanitizer build ($ASAN_BUILD_DIR); install clang libclang-rt-14-dev"
    return 0
  fi
  # debugoptimized: -O2 keeps the sanitized tests and fuzzers fast enough for CI, -g gives their reports lines.
  CC=clang CXX=clang++ configure_dir "$ASAN_BUILD_DIR" --buildtype=debugoptimized -Dwerror="$werror" \
    -Dfuzz=true -Db_sanitize=address,undefined -Db_lundef=false
}

install_packages
reserve_hugepages
configure_build
