#!/usr/bin/env bash
# The control socket under abuse (SPEC §6: "oversized or malformed requests get an error and never crash
# or stall the daemon") while real traffic crosses the appliance:
#   client ── [inside | tagwall | outside] ── server 198.18.0.2          (the wire lab, IPv4)
# Traffic, the whole time:
#   - a paced TCP stream server -> client on tcp/5001 (rule wire-transfer), every byte checked against
#     the seeded generator that sent it; after every abuse phase it must have advanced (forwarding went
#     on during the phase) and at the end it must be intact;
#   - a ping every 0.2 s (rule wire-ping); every echo must be answered but at most 1 in 100 (af_packet on
#     a shared CPU may lose a frame under load; a stalled dataplane loses them all);
#   - UDP datagrams to udp/9 at 200/s, dropped by the default: a steady source of events for the
#     followers, and for events_lost (which must stay 0: the control thread kept draining).
# Abuse (tests/cli/ctl_abuse.py), one phase at a time, `tagwallctl status` answered after each:
#   a peer SO_PEERCRED refuses (nobody, socket mode 0666) and one the file mode stops (0660); garbage
#   lines; oversized lines; partial lines; 5000 pipelined requests; 1000 clients at once; clients that
#   never read (requests, and events --follow); 48 slowloris clients (and a policy load meanwhile: RCU
#   publication goes on, and the stream's connection survives the re-verification).
# Afterwards: the daemon is alive and answers, its RSS grew by less than 64 MiB, `status` counts what it
# refused, and SIGTERM stops it with status 0.
set -euo pipefail
# shellcheck source=tests/e2e/lib.bash
. "$(dirname "$0")/lib.bash"

SERVER=198.18.0.2
ABUSE=(/usr/bin/python3 "$TAGWALL_ROOT/tests/cli/ctl_abuse.py")
CTL=$(dirname "$TAGWALL_BIN")/tagwallctl
MAX_CLIENTS=64       # SocketOptions defaults (src/control/socket_server.hpp)
MAX_REQUEST=65536
ABUSE_PIDS=()

# The abusive clients run in the root namespace, outside the lab: stop them on any exit, then the lab.
# shellcheck disable=SC2317  # reached through the EXIT trap
abuse_cleanup() {
    local rc=$?
    local pid
    for pid in "${ABUSE_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    (exit "$rc")
    _e2e_cleanup
}

[ -x "$CTL" ] || e2e_abort "$CTL was not built"
command -v setpriv >/dev/null || e2e_abort "setpriv (util-linux) is needed to run a client as nobody"
e2e_setup wire
trap abuse_cleanup EXIT
SOCK=$LAB_DIR/tagwall.sock
# nobody must be able to reach the socket file, so that the file mode (not the directories) decides.
chmod 0711 "$SCRATCH" "$LAB_DIR"
sed -i "s|^  socket: .*|&\n  socket_mode: \"0660\"\n  allowed_gids: [0]|" "$LAB_DIR/tagwall.yaml"
grep -q 'socket_mode: "0660"' "$LAB_DIR/tagwall.yaml" || e2e_abort "could not set the socket mode in the config"
tw_start

ctl() { "$CTL" --socket "$SOCK" --timeout 10 "$@"; }
as_nobody() { setpriv --reuid=nobody --regid=nogroup --clear-groups "$@"; }
# nobody's copies of tagwallctl and the helper (the checkout may be in a directory nobody cannot enter).
mkdir -m 0755 "$LAB_DIR/nobody"
cp "$CTL" "$TAGWALL_ROOT/tests/cli/ctl_abuse.py" "$LAB_DIR/nobody/"
NOBODY_CTL=$LAB_DIR/nobody/tagwallctl

# check_alive PHASE: the daemon runs, answers status at once, and the stream advanced during PHASE.
LAST_PROGRESS=0
progress() { cat "$LAB_DIR/stream.progress" 2>/dev/null || echo 0; }
check_alive() {
    local phase=$1 now
    kill -0 "$TW_PID" 2>/dev/null || e2e_abort "tagwall died during: $phase"
    if ctl status >/dev/null 2>"$LAB_DIR/ctl.err"; then
        _e2e_result 0 "after $phase: tagwallctl status answers"
    else
        _e2e_result 1 "after $phase: tagwallctl status answers ($(cat "$LAB_DIR/ctl.err"))"
    fi
    sleep 0.6  # the stream client notes its progress twice a second
    now=$(progress)
    if [ "$now" -gt "$LAST_PROGRESS" ]; then
        _e2e_result 0 "during $phase: the stream went on ($LAST_PROGRESS -> $now bytes)"
    else
        _e2e_result 1 "during $phase: the stream went on (stuck at $now bytes)"
    fi
    LAST_PROGRESS=$now
}

# verdict WHAT CMD...: a check that passes when CMD succeeds.
verdict() {
    local what=$1
    shift
    if "$@"; then _e2e_result 0 "$what"; else _e2e_result 1 "$what"; fi
}

# abuse WHAT CASE ARGS...: one case of ctl_abuse.py against the socket, judged by its exit status; its
# report is indented under the check.
abuse() {
    local what=$1 rc=0
    shift
    "${ABUSE[@]}" "$1" "$SOCK" "${@:2}" >"$LAB_DIR/abuse.out" 2>&1 || rc=$?
    _e2e_same "$rc" 0 "$what"
    sed 's/^/      /' "$LAB_DIR/abuse.out"
}

rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$TW_PID/status"; }

# --- traffic -------------------------------------------------------------------------------------
STOP=$LAB_DIR/traffic.stop
lab_exec server true  # the namespaces exist
pid=$(_lab_bg server "stream server" "$LAB_DIR/stream-serve.log" "${ABUSE[@]}" stream-serve "$SERVER" 5001 42)
for _ in $(seq 40); do lab_exec server ss -Hltn "sport = :5001" | grep -q . && break; sleep 0.05; done
pid=$(_lab_bg client "stream client" "$LAB_DIR/stream-fetch.log" \
    "${ABUSE[@]}" stream-fetch "$SERVER" 5001 42 "$STOP" "$LAB_DIR/stream.progress")
STREAM_PID=$pid
PING_PID=$(_lab_bg client "ping" "$LAB_DIR/ping.log" ping -n -i 0.2 "$SERVER")
_lab_bg client "udp flood" "$LAB_DIR/udp-flood.log" "${ABUSE[@]}" udp-flood "$SERVER" 9 200 "$STOP" >/dev/null
for _ in $(seq 100); do [ "$(progress)" -gt 0 ] && break; sleep 0.1; done
[ "$(progress)" -gt 0 ] || e2e_abort "the TCP stream through tagwall did not start ($(cat "$LAB_DIR/stream-fetch.log"))"
check_alive "the start of the traffic"
RSS0=$(rss_kb)
echo "tagwall RSS at the start: $RSS0 kB"

# --- 1. peers the daemon must not serve ------------------------------------------------------------
_e2e_same "$(stat -c %a "$SOCK")" 660 "the socket file has the configured mode 0660"
rc=0
as_nobody "$NOBODY_CTL" --socket "$SOCK" status >/dev/null 2>"$LAB_DIR/nobody.err" || rc=$?
_e2e_same "$rc" 3 "tagwallctl as nobody, mode 0660: cannot connect, exit 3 (got $rc: $(head -c 150 "$LAB_DIR/nobody.err"))"
chmod 0666 "$SOCK"   # now nobody can connect: only SO_PEERCRED stands in the way
rc=0
as_nobody "$NOBODY_CTL" --socket "$SOCK" status >/dev/null 2>"$LAB_DIR/nobody.err" || rc=$?
_e2e_same "$rc" 1 "tagwallctl as nobody, mode 0666: refused by the daemon, exit 1 (got $rc)"
verdict "tagwallctl as nobody prints the daemon's refusal ($(head -c 150 "$LAB_DIR/nobody.err"))" \
    grep -q 'permission denied: uid 65534' "$LAB_DIR/nobody.err"
# shellcheck disable=SC2317  # called through verdict
raw_client_as_nobody() {
    as_nobody /usr/bin/python3 "$LAB_DIR/nobody/ctl_abuse.py" refused "$SOCK" >"$LAB_DIR/abuse.out" 2>&1
}
verdict "a raw client as nobody: one error line, then closed" raw_client_as_nobody
sed 's/^/      /' "$LAB_DIR/abuse.out"
chmod 0660 "$SOCK"
check_alive "the refused peers"

# --- 2. what a request may not be ------------------------------------------------------------------
abuse "garbage lines: one error each, the connection stays usable" garbage
check_alive "the garbage lines"
abuse "oversized lines: an error, then closed" oversized "$MAX_REQUEST"
check_alive "the oversized lines"
abuse "partial lines: answered at half-close, timed out when the client hangs" partial
check_alive "the partial lines"
abuse "5000 requests pipelined in one write: 5000 answers in order" pipeline 5000
check_alive "the pipelined requests"

# --- 3. too many, too slow -----------------------------------------------------------------------
abuse "1000 clients at once: $MAX_CLIENTS served, the rest refused with an error" many 1000 "$MAX_CLIENTS"
check_alive "the 1000 clients"

# Clients that never read: 4 flood requests, 4 follow events; the others are served meanwhile.
for i in 1 2 3 4; do
    "${ABUSE[@]}" noreader "$SOCK" >"$LAB_DIR/noreader-$i.log" 2>&1 &
    ABUSE_PIDS+=($!)
    "${ABUSE[@]}" nofollow "$SOCK" 40 >"$LAB_DIR/nofollow-$i.log" 2>&1 &
    ABUSE_PIDS+=($!)
done
served=0
for i in $(seq 10); do ctl status >/dev/null 2>&1 && served=$((served + 1)); sleep 0.3; done
_e2e_same "$served" 10 "while 8 clients never read: 10 of 10 status requests answered"
for i in 1 2 3 4; do
    for kind in noreader nofollow; do
        verdict "$kind $i: cut off by the daemon" wait "${ABUSE_PIDS[0]}"
        sed 's/^/      /' "$LAB_DIR/$kind-$i.log"
        ABUSE_PIDS=("${ABUSE_PIDS[@]:1}")
    done
done
check_alive "the clients that never read"

# Slowloris: 48 clients, one byte a second each.  Fewer than max_clients, so others are served meanwhile.
"${ABUSE[@]}" slowloris "$SOCK" 48 >"$LAB_DIR/slowloris.log" 2>&1 &
ABUSE_PIDS+=($!)
sleep 2
served=0
for i in $(seq 5); do ctl status >/dev/null 2>&1 && served=$((served + 1)); sleep 0.2; done
_e2e_same "$served" 5 "during the slowloris: 5 of 5 status requests answered"
# A policy publication (RCU, every worker acknowledges) while the slow clients hold their connections.
if ctl --json policy load "$LAB_DIR/policy.yaml" >"$LAB_DIR/load.json" 2>&1 &&
    grep -q '"generation": 2' "$LAB_DIR/load.json"; then
    _e2e_result 0 "during the slowloris: policy load publishes generation 2"
else
    _e2e_result 1 "during the slowloris: policy load publishes generation 2 ($(tr '\n' ' ' <"$LAB_DIR/load.json"))"
fi
verdict "48 slowloris clients: each closed with 'request timeout'" wait "${ABUSE_PIDS[0]}"
ABUSE_PIDS=()
sed 's/^/      /' "$LAB_DIR/slowloris.log"
check_alive "the slowloris"

# --- afterwards --------------------------------------------------------------------------------------
RSS1=$(rss_kb)
echo "tagwall RSS at the end: $RSS1 kB (start: $RSS0 kB)"
verdict "tagwall's RSS grew by less than 64 MiB ($((RSS1 - RSS0)) kB)" [ $((RSS1 - RSS0)) -lt $((64 * 1024)) ]

ctl --json status >"$LAB_DIR/status.json" || e2e_abort "tagwallctl --json status failed at the end"
ctl --json stats >"$LAB_DIR/stats.json" || e2e_abort "tagwallctl --json stats failed at the end"
# counter NAME: the control socket's counter from `status`.
counter() { /usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["control"][sys.argv[2]])' \
    "$LAB_DIR/status.json" "$1"; }
echo "control counters: $(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["control"])' \
    "$LAB_DIR/status.json")"
expect_counter() {  # NAME MIN MAX WHY
    local got
    got=$(counter "$1") || got=missing
    if [ "$got" != missing ] && [ "$got" -ge "$2" ] && [ "$got" -le "$3" ]; then
        _e2e_result 0 "status: control.$1 = $got ($4)"
    else
        _e2e_result 1 "status: control.$1 = $got, want $2..$3 ($4)"
    fi
}
expect_counter refused_peers 2 2 "tagwallctl and the raw client as nobody"
expect_counter refused_full $((1000 - MAX_CLIENTS)) $((1000 - MAX_CLIENTS)) "the clients beyond max_clients"
expect_counter oversized 2 2 "the long line and the endless one"
expect_counter dropped_slow 8 8 "the clients that never read"
expect_counter timed_out 49 49 "the hanging request and the 48 slowloris"
# (17 when the server read the half line of partial's first client, which closes at once, before it saw
# the close: that line then counts as a last request, as a half-close's does.  A race, not a fault.)
expect_counter malformed 16 17 "15 garbage lines the server itself refuses, the half-closed half line of partial, maybe its closed one"
lost=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["totals"]["events_lost"])' \
    "$LAB_DIR/stats.json")
_e2e_same "$lost" 0 "no event lost: the control thread kept draining the workers' rings (events_lost $lost)"

# Stop the traffic; the stream must be intact, the pings answered.
touch "$STOP"
for _ in $(seq 100); do kill -0 "$STREAM_PID" 2>/dev/null || break; sleep 0.1; done
if grep -q '^ok: stream-fetch' "$LAB_DIR/stream-fetch.log"; then
    _e2e_result 0 "the TCP stream through tagwall: $(grep '^ok:' "$LAB_DIR/stream-fetch.log")"
else
    _e2e_result 1 "the TCP stream through tagwall is intact ($(tail -n 1 "$LAB_DIR/stream-fetch.log"))"
fi
kill -INT "$PING_PID" 2>/dev/null || true
for _ in $(seq 50); do kill -0 "$PING_PID" 2>/dev/null || break; sleep 0.1; done
tx=0 rx=0
read -r tx rx < <(awk '/packets transmitted/ { print $1, $4 }' "$LAB_DIR/ping.log") || true
enough=0
[ "$tx" -gt 0 ] && [ $((rx * 100)) -ge $((tx * 99)) ] && enough=1
_e2e_same "$enough" 1 "pings every 0.2 s the whole time: $rx of $tx answered (at least 99%)"

tw_stop
e2e_finish
