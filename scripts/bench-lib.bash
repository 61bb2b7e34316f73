# shellcheck shell=bash
# Shared by the benchmark scripts (bench-classify.sh, bench-dataplane.sh); sourced, not run.
# bench_begin NAME: a temporary directory in $TMP and raise_hugepages, both undone on exit.  The script
# defines say() (its messages) and hugepages_gb (how much to reserve) first; HUGEPAGES_SHORT_WARNING,
# when set, is said when fewer hugepages than asked could be reserved.

bench_begin() {
    TMP=$(mktemp -d "${TMPDIR:-/tmp}/tagwall-$1.XXXXXX")
    nr_hugepages=/proc/sys/vm/nr_hugepages
    hugepages_before=""
    mounted_hugetlbfs=0
    trap _bench_cleanup EXIT
    trap 'exit 130' INT TERM
}

# shellcheck disable=SC2317  # called by the EXIT trap
_bench_cleanup() {
    if [ -n "$hugepages_before" ]; then
        echo "$hugepages_before" >"$nr_hugepages" 2>/dev/null || true
        say "hugepages restored to $hugepages_before"
    fi
    if [ "$mounted_hugetlbfs" = 1 ]; then umount /dev/hugepages 2>/dev/null || true; fi
    rm -rf "$TMP"
}

raise_hugepages() {
    local want have page_kb
    page_kb=$(awk '/^Hugepagesize:/ {print $2}' /proc/meminfo)
    [ "${page_kb:-0}" -gt 0 ] || { say "no hugepage support in this kernel"; return; }
    if [ "$(id -u)" -ne 0 ]; then
        say "not root: using the hugepages already reserved ($(cat "$nr_hugepages" 2>/dev/null || echo 0))"
        return
    fi
    # shellcheck disable=SC2154  # hugepages_gb: set by the script that sources this file
    want=$((hugepages_gb * 1024 * 1024 / page_kb))
    have=$(cat "$nr_hugepages")
    if [ "$have" -lt "$want" ]; then
        hugepages_before=$have
        echo "$want" >"$nr_hugepages" || true
        have=$(cat "$nr_hugepages")
        say "hugepages raised from $hugepages_before to $have (asked for $want x ${page_kb} kB)"
        if [ "$have" -lt "$want" ] && [ -n "${HUGEPAGES_SHORT_WARNING:-}" ]; then
            say "WARNING: only $have hugepages could be reserved; $HUGEPAGES_SHORT_WARNING"
        fi
    fi
    if ! awk '$3 == "hugetlbfs" {found = 1} END {exit !found}' /proc/mounts; then
        if mkdir -p /dev/hugepages && mount -t hugetlbfs nodev /dev/hugepages; then mounted_hugetlbfs=1; fi
    fi
}

# build_kind DIR: how a build directory was configured, for the report: "release, LTO, -march=native"
# (buildtype, then b_lto and the project's `native` option when on).  Figures to quote come from
# `meson setup DIR --buildtype=release -Db_lto=true`: without link-time optimisation the worker's
# per-packet steps, spread over several files, are not inlined into one another (the established
# path ran ~1.5x slower).
build_kind() {
    meson introspect --buildoptions "$1" 2>/dev/null | python3 -c '
import json, sys
o = {x["name"]: x["value"] for x in json.load(sys.stdin)}
kind = [o.get("buildtype", "unknown")]
if o.get("b_lto"): kind.append("LTO")
if o.get("native"): kind.append("-march=native")
print(", ".join(kind))' 2>/dev/null || echo unknown
}

# warn_unless_release_lto DIR: says so when DIR is not a release build with LTO.
warn_unless_release_lto() {
    local kind
    kind=$(build_kind "$1")
    case $kind in
        release,\ LTO*) ;;
        *) say "WARNING: $1 is a '$kind' build; figures to quote want meson setup $1 --buildtype=release -Db_lto=true" ;;
    esac
}
