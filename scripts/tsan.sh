#!/usr/bin/env bash
# ThreadSanitizer checks of tagwall's concurrency: builds a clang -fsanitize=thread build (TSAN_BUILD_DIR,
# default build-tsan) and runs the code that shares memory between threads.  See --help for what is and
# is not checked.  Not part of scripts/test.sh (it needs a build of its own); run it after touching
# src/dataplane/publisher.*, pipeline adoption, the appliance's worker loop or the replay's threads.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
ROOT=$(pwd)

usage() {
    cat <<'EOF'
usage: scripts/tsan.sh [--no-build] [--daemon]

Builds TSAN_BUILD_DIR (default build-tsan: clang, -Db_sanitize=thread, debugoptimized) and runs under
ThreadSanitizer (every report fatal, halt_on_error=1):
  1. the unit tests tagged [rcu]: the RCU publication test (tests/dataplane/test_publisher.cpp: two
     worker threads deciding new connections while the control thread publishes 1000 generations)
     and the publication without running workers;
  2. tagwall-bench replay --workers 2 and --workers 4 on every pcaps/NNN-*.pcap and on all of them
     merged: worker threads sharing the published identity table and classifier (shared_ptr reference
     counts, read-only tables) and writing disjoint verdict slots; the verdicts must also equal
     pcaps/NNN-*.verdicts;
  3. with --daemon: the appliance itself (needs root: DPDK).  tests/cli/daemon-publish-live.sh:
     tagwall --config with 2 workers on net_pcap ports replaying their captures in a loop, while
     tagwallctl publishes 60 generations (policy loads, endpoint re-tags, acknowledged by both
     workers), lists flows, reads stats and flushes; tests/cli/daemon-workers.sh (2 workers, one wire
     pair each) and tests/cli/daemon-pcap.sh (the worker loop, reject answers, the event log).

What TSan checks here: every memory access made by tagwall's code (compiled with -fsanitize=thread),
and the synchronisation it can see: C++ atomics, pthread and libc calls (TSan intercepts them even from
uninstrumented libraries), and DPDK's inline functions, which are compiled into tagwall's objects -
among them rte_rcu_qsbr_start/check/quiescent/online/offline, the whole grace-period protocol.

What it cannot check: the code inside DPDK's shared libraries (librte_*.so are not instrumented):
rte_rcu_qsbr_init/thread_register/unregister, the EAL's threads, rings, mempools, mbufs inside the PMDs
and the PMDs themselves.  Two synchronisations tagwall relies on happen in there: the worker's launch
(rte_eal_remote_launch: TSan sees it anyway, through the pipe the EAL writes and the worker reads) and
its join (rte_eal_wait_lcore: made visible by an acquire of the worker's last store in
Appliance::stop()).  tests/tsan.supp suppresses, by function, only the control thread's deliberate
unsynchronised reads of live worker counters and flow tables (stats, ports, rules, flows, policy load
--dry-run), which the design accepts as "a packet stale" and which TSan rightly calls data races.
Everything else, including every race between the RCU publisher and the workers, is fatal.

environment: TSAN_BUILD_DIR, NINJA_JOBS (default 2)
EOF
}

build=1
daemon=0
while [ $# -gt 0 ]; do
    case $1 in
        -h|--help) usage; exit 0 ;;
        --no-build) build=0 ;;
        --daemon) daemon=1 ;;
        *) printf 'tsan.sh: unknown argument %s\n\n' "$1" >&2; usage >&2; exit 2 ;;
    esac
    shift
done

TSAN_BUILD_DIR=${TSAN_BUILD_DIR:-build-tsan}
case $TSAN_BUILD_DIR in /*) ;; *) TSAN_BUILD_DIR=$ROOT/$TSAN_BUILD_DIR ;; esac
if [ "$build" = 1 ]; then
    if [ ! -f "$TSAN_BUILD_DIR/build.ninja" ]; then
        command -v clang++ >/dev/null || { echo "tsan.sh: clang++ is missing (scripts/setup.sh installs it)" >&2; exit 2; }
        CC=clang CXX=clang++ meson setup "$TSAN_BUILD_DIR" --buildtype=debugoptimized -Db_sanitize=thread \
            -Db_lundef=false >/dev/null || exit 2
    fi
    ninja -C "$TSAN_BUILD_DIR" -j"${NINJA_JOBS:-2}" tests/tagwall-unit-tests src/tools/tagwall-bench src/tools/tagwall \
        src/tools/tagwallctl || { echo "tsan.sh: build failed" >&2; exit 2; }
fi

# halt_on_error: the first report fails the run; second_deadlock_stack: both stacks of a lock inversion.
export TSAN_OPTIONS="halt_on_error=1:abort_on_error=1:second_deadlock_stack=1:history_size=4:suppressions=$ROOT/tests/tsan.supp:print_suppressions=0"

passed=0
failed=0
SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/tagwall-tsan.XXXXXX")
trap 'rm -rf "$SCRATCH"' EXIT

# check NAME COMMAND...: runs COMMAND; passes on exit status 0 with no ThreadSanitizer report.
check() {
    local name=$1 rc=0
    shift
    "$@" >"$SCRATCH/out" 2>&1 || rc=$?
    if [ "$rc" -eq 0 ] && ! grep -q 'WARNING: ThreadSanitizer' "$SCRATCH/out"; then
        echo "PASS $name"
        passed=$((passed + 1))
    else
        echo "FAIL $name (exit status $rc):"
        grep -A30 -m1 'WARNING: ThreadSanitizer' "$SCRATCH/out" | sed 's/^/    | /' || tail -n 30 "$SCRATCH/out" | sed 's/^/    | /'
        [ -n "${KEEP_LOG:-}" ] && cp "$SCRATCH/out" "$KEEP_LOG.$name.log"
        failed=$((failed + 1))
    fi
}

bench=$TSAN_BUILD_DIR/src/tools/tagwall-bench
check "unit [rcu]" "$TSAN_BUILD_DIR/tests/tagwall-unit-tests" '[rcu]'

# replay_same NAME W PCAP-ARGS...: W workers; the verdicts must be the expected ones (one pcap) or those
# of one worker (all pcaps merged).
replay_same() {
    local name=$1 w=$2 want=$3
    shift 3
    "$bench" replay --policy pcaps/policy.yaml "$@" --workers "$w" --iterations 3 --verdicts "$SCRATCH/$name.got" \
        || return 1
    diff -u "$want" "$SCRATCH/$name.got"
}
all=()
for f in pcaps/[0-9][0-9][0-9]-*.pcap; do
    all+=(--pcap "$f")
    for w in 2 4; do check "replay $(basename "$f" .pcap) --workers $w" replay_same "$(basename "$f")-$w" "$w" \
        "${f%.pcap}.verdicts" --pcap "$f"; done
done
"$bench" replay --policy pcaps/policy.yaml "${all[@]}" --verdicts "$SCRATCH/all.w1" >/dev/null 2>&1
for w in 2 4; do check "replay all pcaps --workers $w" replay_same "all-$w" "$w" "$SCRATCH/all.w1" "${all[@]}"; done

if [ "$daemon" = 1 ]; then
    for t in daemon-publish-live daemon-workers daemon-pcap; do
        check "daemon: tests/cli/$t.sh" env TAGWALL_BIN="$TSAN_BUILD_DIR/src/tools/tagwall" TAGWALL_ROOT="$ROOT" \
            "tests/cli/$t.sh"
    done
fi

echo "tsan: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
