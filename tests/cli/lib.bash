# shellcheck shell=bash disable=SC2034  # the variables are used by the tests that source this file
# Helpers shared by the command-line tests (tests/cli/*.sh); sourced, not run.  Each test is one test
# case for scripts/test.sh: it passes by exiting 0.  Environment (scripts/test.sh sets both):
#   TAGWALL_BIN   the tagwall binary under test
#   TAGWALL_ROOT  the repository root (default: two levels above this file)
# A test sets SCRATCH (a mktemp -d directory it removes in a trap) before calling `run`.

: "${TAGWALL_BIN:?set TAGWALL_BIN to the tagwall binary (scripts/test.sh does)}"
TAGWALL_ROOT=${TAGWALL_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
if [ ! -x "$TAGWALL_BIN" ]; then
    echo "FAIL: TAGWALL_BIN=$TAGWALL_BIN is not an executable file"
    exit 1
fi

DEMO_POLICY=$TAGWALL_ROOT/conf/demo/policy.yaml
BROKEN_POLICY=$TAGWALL_ROOT/conf/demo/policy-broken.yaml
LAST_CMD=""
STATUS=0

# run ARGS...: runs tagwall; its stdout and stderr go to $SCRATCH/out, its exit status to $STATUS.
run() {
    LAST_CMD="tagwall $*"
    STATUS=0
    "$TAGWALL_BIN" "$@" >"$SCRATCH/out" 2>&1 </dev/null || STATUS=$?
}

# bench ARGS...: runs tagwall-bench (next to TAGWALL_BIN) as `run` runs tagwall.
bench() {
    local exe
    exe=$(dirname "$TAGWALL_BIN")/tagwall-bench
    [ -x "$exe" ] || { echo "FAIL: $exe (next to TAGWALL_BIN) is not an executable file"; exit 1; }
    LAST_CMD="tagwall-bench $*"
    STATUS=0
    "$exe" "$@" >"$SCRATCH/out" 2>&1 </dev/null || STATUS=$?
}

# fail MESSAGE: reports the failure with the output of the last command, and ends the test.
fail() {
    echo "FAIL: $*"
    echo "--- output of: $LAST_CMD (exit status $STATUS)"
    cat "$SCRATCH/out" 2>/dev/null || true
    echo "---"
    exit 1
}

expect_status() {
    [ "$STATUS" -eq "$1" ] || fail "'$LAST_CMD' exited with status $STATUS, expected $1"
}

# expect_output ERE [WHY]: some line of the last output matches the extended regular expression.
expect_output() {
    grep -Eq -- "$1" "$SCRATCH/out" || fail "'$LAST_CMD': no line of its output matches /$1/${2:+ ($2)}"
}

# expect_no_output ERE [WHY]: no line of the last output matches.
expect_no_output() {
    if grep -Eq -- "$1" "$SCRATCH/out"; then
        fail "'$LAST_CMD': its output has a line matching /$1/${2:+ ($2)}: $(grep -Em1 -- "$1" "$SCRATCH/out")"
    fi
}

# count_output ERE: how many lines of the last output match.
count_output() {
    grep -Ec -- "$1" "$SCRATCH/out" || true
}

# Escapes a string for use inside an extended regular expression.
ere_quote() {
    printf '%s' "$1" | sed 's/[][\.*^$?+(){}|/]/\\&/g'
}

# --- the appliance on net_pcap ports (tests that run `tagwall --config`) ---------------------------
# A test calls daemon_setup once (root and tshark checked, SCRATCH made, a trap that kills the daemon
# and removes SCRATCH), then daemon_start CONFIG / daemon_stop as often as it likes.
DAEMON_PID=""

_daemon_cleanup() {
    if [ -n "$DAEMON_PID" ] && kill -0 "$DAEMON_PID" 2>/dev/null; then kill -KILL "$DAEMON_PID" 2>/dev/null || true; fi
    rm -rf "$SCRATCH"
}

daemon_setup() {
    [ "$(id -u)" -eq 0 ] || { echo "FAIL: the appliance needs root (DPDK)"; exit 1; }
    command -v tshark >/dev/null || { echo "FAIL: tshark is needed (scripts/setup.sh installs it)"; exit 1; }
    SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/tagwall-cli.XXXXXX")
    trap _daemon_cleanup EXIT
    # An empty capture, for the receive side of ports that get no traffic (net_pcap needs one).
    printf '\xd4\xc3\xb2\xa1\x02\x00\x04\x00\x00\x00\x00\x00\x00\x00\x00\x00\xff\xff\x00\x00\x01\x00\x00\x00' \
        >"$SCRATCH/empty.pcap"
}

# daemon_start CONFIG WHAT: starts tagwall in the background and waits (10 s) for its ready line.
daemon_start() {
    LAST_CMD="tagwall --config $1"
    "$TAGWALL_BIN" --config "$1" >"$SCRATCH/out" 2>&1 </dev/null &
    DAEMON_PID=$!
    for _ in $(seq 100); do
        grep -qs '^tagwall: ready' "$SCRATCH/out" && break
        kill -0 "$DAEMON_PID" 2>/dev/null || break
        sleep 0.1
    done
    expect_output '^tagwall: ready' "$2: the appliance started"
}

# daemon_stop: SIGTERM; tagwall must exit 0 (its status lands in STATUS).
daemon_stop() {
    kill -TERM "$DAEMON_PID"
    STATUS=0
    wait "$DAEMON_PID" || STATUS=$?
    DAEMON_PID=""
    expect_status 0
}

# frames PCAP: how many frames a capture holds.
frames() { tshark -r "$1" -T fields -e frame.number 2>/dev/null | wc -l; }
