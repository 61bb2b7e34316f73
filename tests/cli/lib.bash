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

# daemon_start CONFIG WHAT: starts tagwall in the background and waits (60 s at most: a sanitizer build
# on a busy 2-CPU machine once took more than 10) for its ready line.
daemon_start() {
    LAST_CMD="tagwall --config $1"
    "$TAGWALL_BIN" --config "$1" >"$SCRATCH/out" 2>&1 </dev/null &
    DAEMON_PID=$!
    for _ in $(seq 600); do
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
# two_pairs_config MODE: writes $SCRATCH/tagwall.yaml, an appliance of two workers and two wire pairs on
# net_pcap ports under pcaps/policy.yaml: w1-u1 with pcaps/001-tcp-allowed.pcap arriving on w1, w2-u2 with
# pcaps/006-reject.pcap arriving on w2.  MODE `capture`: each capture is read once and every port's output
# goes to $SCRATCH/PORT.pcap; `loop`: the captures repeat (infinite_rx) and the output is thrown away.
two_pairs_config() {
    local p=$TAGWALL_ROOT/pcaps rx_w1 rx_w2 tx_w1 tx_u1 tx_w2 tx_u2
    case $1 in
        capture)
            rx_w1=$p/001-tcp-allowed.pcap rx_w2=$p/006-reject.pcap
            tx_w1=$SCRATCH/w1.pcap tx_u1=$SCRATCH/u1.pcap tx_w2=$SCRATCH/w2.pcap tx_u2=$SCRATCH/u2.pcap ;;
        loop)
            rx_w1=$p/001-tcp-allowed.pcap,infinite_rx=1 rx_w2=$p/006-reject.pcap,infinite_rx=1
            tx_w1=/dev/null tx_u1=/dev/null tx_w2=/dev/null tx_u2=/dev/null ;;
        *) fail "two_pairs_config: unknown mode $1" ;;
    esac
    cat >"$SCRATCH/tagwall.yaml" <<YAML
dataplane:
  workers: 2
  ports:
    - {name: w1, role: workload, devargs: "net_pcap0,rx_pcap=$rx_w1,tx_pcap=$tx_w1"}
    - {name: u1, role: uplink,   devargs: "net_pcap1,rx_pcap=$SCRATCH/empty.pcap,tx_pcap=$tx_u1"}
    - {name: w2, role: workload, devargs: "net_pcap2,rx_pcap=$rx_w2,tx_pcap=$tx_w2"}
    - {name: u2, role: uplink,   devargs: "net_pcap3,rx_pcap=$SCRATCH/empty.pcap,tx_pcap=$tx_u2"}
  forwarding: wire
  pairs: [[w1, u1], [w2, u2]]
  flows: {capacity: 4096}
control: {socket: $SCRATCH/tagwall.sock}
log: {path: $SCRATCH/events.jsonl}
policy: $p/policy.yaml
YAML
}

frames() { tshark -r "$1" -T fields -e frame.number 2>/dev/null | wc -l; }
