# shellcheck shell=bash
# Helpers shared by the end-to-end tests (tests/e2e/*.sh); sourced, not run.  Each test is one test case
# for scripts/test.sh (pass = exit 0): it builds a lab of network namespaces (scripts/netns-lab.sh),
# starts `tagwall --config LAB/tagwall.yaml` on the lab's veths, sends real traffic through it, and
# checks what got through, what did not, and what the event log says.  Needs root.
#
# Environment (scripts/test.sh sets both):
#   TAGWALL_BIN   the tagwall binary under test (default: $BUILD_DIR/src/tools/tagwall, BUILD_DIR=build)
#   TAGWALL_ROOT  the repository root (default: two levels above this file)
#   E2E_KEEP=1    keep the scratch directory (lab state, tagwall output, event log) for a post-mortem
#   E2E_STANDIN=bridge  run the checks with a Linux bridge in tagwall's place (netns-lab.sh bridge): a
#                 self-test of the lab and the probes.  Everything then gets through, so the checks of
#                 drops, rejects, events and the summary must FAIL; the allowed flows must pass.
#
# A test calls e2e_setup TOPOLOGY, tw_start, then expect_* checks (each failed check is reported and
# counted; the test goes on, so that one run shows every difference), tw_stop and e2e_finish.  A trap
# stops tagwall and tears the lab down on every exit, also on failure or interruption.

TAGWALL_ROOT=${TAGWALL_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
TAGWALL_BIN=${TAGWALL_BIN:-${BUILD_DIR:-$TAGWALL_ROOT/build}/src/tools/tagwall}
# shellcheck source=scripts/netns-lab.sh
. "$TAGWALL_ROOT/scripts/netns-lab.sh"

E2E_FAILURES=0
E2E_CHECKS=0
TW_PID=""
TW_OUT=""
SCRATCH=""

# e2e_abort MESSAGE: a failure after which the test cannot go on (the trap cleans up).
e2e_abort() {
    echo "FAIL: $*"
    exit 1
}

_e2e_result() {  # OK(0|1) MESSAGE
    E2E_CHECKS=$((E2E_CHECKS + 1))
    if [ "$1" = 0 ]; then
        echo "ok    $2"
    else
        echo "FAIL  $2"
        E2E_FAILURES=$((E2E_FAILURES + 1))
    fi
}

# _e2e_same GOT WANT MESSAGE: a check that passes when GOT equals WANT.
_e2e_same() {
    if [ "$1" = "$2" ]; then _e2e_result 0 "$3"; else _e2e_result 1 "$3"; fi
}

# Stops tagwall if it still runs, shows what helps on failure, tears the lab down.
_e2e_cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    set +e   # every step below must run, whatever the one before it did
    if [ -n "$TW_PID" ] && kill -0 "$TW_PID" 2>/dev/null; then
        kill -TERM "$TW_PID" 2>/dev/null
        for _ in $(seq 50); do kill -0 "$TW_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$TW_PID" 2>/dev/null
    fi
    if [ "$rc" -ne 0 ] && [ -n "$TW_OUT" ] && [ -s "$TW_OUT" ]; then
        echo "--- tagwall output (last 40 lines of $TW_OUT)"
        tail -n 40 "$TW_OUT"
    fi
    if [ "$rc" -ne 0 ] && [ -n "$LAB_DIR" ] && [ -s "$LAB_DIR/events.jsonl" ]; then
        echo "--- event log (last 20 lines)"
        tail -n 20 "$LAB_DIR/events.jsonl"
    fi
    if [ -n "$SCRATCH" ] && [ -e "$SCRATCH/lab/lab.state" ]; then
        lab_down "$SCRATCH/lab" || rc=1
    fi
    if [ -n "$SCRATCH" ]; then
        if [ "${E2E_KEEP:-0}" = 1 ]; then echo "(kept $SCRATCH)"; else rm -rf "$SCRATCH"; fi
    fi
    exit "$rc"
}

# e2e_setup wire|shop: checks the prerequisites and builds the lab (LAB_DIR is set afterwards).
e2e_setup() {
    local topo=$1
    # No silent skip: a machine that cannot run the lab fails the test, with the reason.
    [ "$(id -u)" -eq 0 ] || e2e_abort "the end-to-end tests need root (network namespaces, af_packet)"
    command -v ip >/dev/null || e2e_abort "ip (iproute2) is not installed"
    local tool
    for tool in socat ethtool ping ss; do
        command -v "$tool" >/dev/null || e2e_abort "$tool is not installed (scripts/setup.sh installs it)"
    done
    [ -x "$TAGWALL_BIN" ] || e2e_abort "TAGWALL_BIN=$TAGWALL_BIN is not an executable file"
    SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/tagwall-e2e.XXXXXX")
    trap _e2e_cleanup EXIT
    trap 'exit 130' INT TERM   # through the EXIT trap
    LAB_QUIET=1 lab_up "$topo" "$SCRATCH/lab" || e2e_abort "could not build the $topo lab (see above)"
    TW_OUT=$LAB_DIR/tagwall.out
    echo "lab: $topo, prefix $LAB_PREFIX, VLAN interfaces: $(_lab_get vlan-mode | grep . || echo none)"
}

# tw_start: starts tagwall on the lab and waits (up to 20 s) for its `tagwall: ready` line.
tw_start() {
    if [ "${E2E_STANDIN:-}" = bridge ]; then
        echo "E2E_STANDIN=bridge: a Linux bridge instead of tagwall; the deny checks must fail"
        lab_bridge || e2e_abort "cannot bridge the lab"
        : >"$TW_OUT"
        return 0
    fi
    "$TAGWALL_BIN" --config "$LAB_DIR/tagwall.yaml" </dev/null >"$TW_OUT" 2>&1 &
    TW_PID=$!
    local i rc
    for i in $(seq 200); do
        grep -q '^tagwall: ready' "$TW_OUT" && { echo "tagwall ready (pid $TW_PID) after ~$((i / 10)) s"; return 0; }
        if ! kill -0 "$TW_PID" 2>/dev/null; then
            rc=0
            wait "$TW_PID" || rc=$?
            TW_PID=""
            e2e_abort "tagwall --config $LAB_DIR/tagwall.yaml exited with status $rc before 'tagwall: ready'"
        fi
        sleep 0.1
    done
    e2e_abort "no 'tagwall: ready' line from tagwall within 20 s (its stdout is a file here: is the line" \
        "printed, and flushed?)"
}

# tw_stop: SIGTERM; tagwall must exit 0 within 15 s and print its summary.
tw_stop() {
    if [ "${E2E_STANDIN:-}" = bridge ]; then lab_unbridge; return 0; fi
    [ -n "$TW_PID" ] || e2e_abort "tw_stop: tagwall is not running"
    local pid=$TW_PID rc=0 i
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
        _e2e_result 1 "tagwall stops within 15 s of SIGTERM (killing it)"
        kill -KILL "$pid" 2>/dev/null
    fi
    wait "$pid" || rc=$?
    TW_PID=""
    _e2e_same "$rc" 0 "tagwall exits with status 0 on SIGTERM (got $rc)"
    echo "--- tagwall's summary (its output after the ready line)"
    sed -n '/^tagwall: ready/,$p' "$TW_OUT" | tail -n +2 | tail -n 60
    echo "---"
}

# expect_summary ERE WHY: tagwall's output after the ready line (its summary) has a line matching ERE.
expect_summary() {
    local ok=0
    sed -n '/^tagwall: ready/,$p' "$TW_OUT" | tail -n +2 | grep -Eq -- "$1" || ok=1
    _e2e_result "$ok" "the summary has a line matching /$1/ ($2)"
}

# expect_tcp FROM ADDR PORT connected|refused|timeout [SRC]
expect_tcp() {
    local from=$1 addr=$2 port=$3 want=$4 src=${5:-} got
    got=$(lab_tcp_connect "$from" "$addr" "$port" "$src") || true
    _e2e_same "${got%%:*}" "$want" "$from -> $addr tcp/$port${src:+ (from $src)}: $want (got: $got)"
}

# expect_transfer FROM TO ADDR PORT: 2 MB from a server in TO arrive intact in FROM.
expect_transfer() {
    local from=$1 to=$2 addr=$3 port=$4 got
    got=$(lab_tcp_transfer "$from" "$to" "$addr" "$port") || true
    _e2e_same "${got%%:*}" ok "$from -> $addr tcp/$port: 2 MB transferred intact (got: $got)"
}

# expect_udp FROM TO ADDR PORT echoed|timeout|refused
expect_udp() {
    local from=$1 to=$2 addr=$3 port=$4 want=$5 got
    got=$(lab_udp_echo "$from" "$to" "$addr" "$port") || true
    _e2e_same "${got%%:*}" "$want" "$from -> $addr udp/$port: $want (got: $got)"
}

# expect_ping FROM ADDR reply|timeout
expect_ping() {
    local from=$1 addr=$2 want=$3 got
    got=$(lab_ping "$from" "$addr") || true
    _e2e_same "$got" "$want" "$from -> $addr ping: $want (got: $got)"
}

# expect_event WHAT KEY=VALUE...: the event log gets (within 5 s) an event with these fields.
expect_event() {
    local what=$1 match
    shift
    if match=$(lab_events --wait 5 "$@"); then
        _e2e_result 0 "event log: $what"
        echo "      $(head -n 1 <<<"$match")"
    else
        _e2e_result 1 "event log: $what (no event with $*)"
    fi
}

# e2e_finish: the test's verdict.
e2e_finish() {
    if [ "$E2E_FAILURES" -gt 0 ]; then
        echo "$E2E_FAILURES of $E2E_CHECKS checks failed"
        exit 1
    fi
    echo "all $E2E_CHECKS checks passed"
    exit 0
}
