#!/usr/bin/env bash
# The control socket's parsing and admission under abuse, fast (no namespaces): the real daemon on
# net_pcap ports with no traffic, tests/cli/ctl_abuse.py as the hostile clients.  SPEC §6: oversized or
# malformed requests get an error and never crash or stall the daemon; every peer is checked with
# SO_PEERCRED.  tests/e2e/ctl-abuse.sh plays the same cases (and the slow ones) while traffic flows.
#   - socket_mode 0666, a client as nobody: refused by SO_PEERCRED (one error line; tagwallctl exits 1);
#   - garbage lines, oversized lines, partial lines, 2000 pipelined requests, 300 clients at once;
#   - the daemon still answers, its `status` counts what it refused, SIGTERM stops it with status 0;
#   - socket_mode 0660 (the default): nobody cannot even connect (tagwallctl exits 3).
set -euo pipefail
# shellcheck source=tests/cli/lib.bash
. "$(dirname "$0")/lib.bash"
daemon_setup
CTL=$(dirname "$TAGWALL_BIN")/tagwallctl
ABUSE=(/usr/bin/python3 "$TAGWALL_ROOT/tests/cli/ctl_abuse.py")
command -v setpriv >/dev/null || fail "setpriv (util-linux) is needed to run a client as nobody"
chmod 0711 "$SCRATCH"   # nobody may reach the socket file: its mode decides, not the directory
SOCK=$SCRATCH/tagwall.sock
# nobody's copies of tagwallctl and the helper (the checkout may be in a directory nobody cannot enter).
mkdir -m 0755 "$SCRATCH/nobody"
cp "$CTL" "${ABUSE[1]}" "$SCRATCH/nobody/"
as_nobody() { setpriv --reuid=nobody --regid=nogroup --clear-groups "$@"; }
NOBODY_CTL=$SCRATCH/nobody/tagwallctl
NOBODY_ABUSE=(/usr/bin/python3 "$SCRATCH/nobody/ctl_abuse.py")

write_config() {  # MODE
    cat >"$SCRATCH/tagwall.yaml" <<YAML
dataplane:
  workers: 1
  ports:
    - {name: workload, role: workload, devargs: "net_pcap0,rx_pcap=$SCRATCH/empty.pcap,tx_pcap=$SCRATCH/w-tx.pcap"}
    - {name: uplink,   role: uplink,   devargs: "net_pcap1,rx_pcap=$SCRATCH/empty.pcap,tx_pcap=$SCRATCH/u-tx.pcap"}
  forwarding: wire
  pairs: [[workload, uplink]]
  flows: {capacity: 4096}
control: {socket: $SOCK, socket_mode: "$1", allowed_gids: [0]}
log: {path: $SCRATCH/events.jsonl}
policy: $TAGWALL_ROOT/pcaps/policy.yaml
YAML
}

# start MODE: the daemon with its output in $SCRATCH/daemon.out (the cases' output goes to $SCRATCH/out).
start() {
    write_config "$1"
    "$TAGWALL_BIN" --config "$SCRATCH/tagwall.yaml" >"$SCRATCH/daemon.out" 2>&1 </dev/null &
    DAEMON_PID=$!
    for _ in $(seq 600); do  # 60 s at most, for a sanitizer build on a busy machine (as daemon_start)
        grep -qs '^tagwall: ready' "$SCRATCH/daemon.out" && return 0
        kill -0 "$DAEMON_PID" 2>/dev/null || break
        sleep 0.1
    done
    cp "$SCRATCH/daemon.out" "$SCRATCH/out"
    LAST_CMD="tagwall --config $SCRATCH/tagwall.yaml (socket_mode $1)"
    fail "the daemon did not start"
}

# died WHILE: the daemon is gone; fail with its last words.
died() {
    LAST_CMD="tagwall --config $SCRATCH/tagwall.yaml"
    cp "$SCRATCH/daemon.out" "$SCRATCH/out"
    fail "the daemon died during: $1"
}

# abuse CASE ARGS...: one case of ctl_abuse.py; its report goes to the output of a failure.
abuse() {
    LAST_CMD="ctl_abuse.py $*"
    STATUS=0
    "${ABUSE[@]}" "$1" "$SOCK" "${@:2}" >"$SCRATCH/out" 2>&1 || STATUS=$?
    kill -0 "$DAEMON_PID" 2>/dev/null || died "$*"
    expect_status 0
    tail -n 1 "$SCRATCH/out"
}

ctl_status() {  # WHY: tagwallctl status must answer
    "$CTL" --socket "$SOCK" --timeout 10 status >/dev/null 2>&1 || fail "tagwallctl status fails after $1"
}

start 0666

STATUS=0
as_nobody "$NOBODY_CTL" --socket "$SOCK" status >"$SCRATCH/out" 2>&1 || STATUS=$?
LAST_CMD="tagwallctl status (as nobody, mode 0666)"
expect_status 1
expect_output 'permission denied: uid 65534' "the daemon's refusal, printed"
LAST_CMD="ctl_abuse.py refused (as nobody)"
STATUS=0
as_nobody "${NOBODY_ABUSE[@]}" refused "$SOCK" >"$SCRATCH/out" 2>&1 || STATUS=$?
expect_status 0

abuse garbage
abuse oversized 65536
abuse pipeline 2000
abuse many 300 64
ctl_status "300 clients at once"
abuse partial
ctl_status "the partial lines"

LAST_CMD="tagwallctl --json status"
"$CTL" --socket "$SOCK" --json status >"$SCRATCH/status.json" 2>&1 || fail "tagwallctl --json status failed"
/usr/bin/python3 - "$SCRATCH/status.json" >"$SCRATCH/out" 2>&1 <<'PY' || { STATUS=1; fail "the control counters in status"; }
import json, sys
c = json.load(open(sys.argv[1]))["control"]
want = {"refused_peers": (2, 2), "refused_full": (236, 236), "oversized": (2, 2), "timed_out": (1, 1),
        "malformed": (16, 17), "dropped_slow": (0, 0)}  # 17: a race, see tests/e2e/ctl-abuse.sh
bad = [f"{k} = {c.get(k)}, want {lo}..{hi}" for k, (lo, hi) in want.items()
       if not isinstance(c.get(k), int) or not lo <= c[k] <= hi]
print("control:", c)
if bad:
    print("wrong:", "; ".join(bad))
    sys.exit(1)
PY
echo "ok: $(head -n 1 "$SCRATCH/out")"
daemon_stop

# The default mode: the file system stops nobody before the daemon sees it.
start 0660
[ "$(stat -c %a "$SOCK")" = 660 ] || fail "the socket's mode is $(stat -c %a "$SOCK"), not 660"
STATUS=0
as_nobody "$NOBODY_CTL" --socket "$SOCK" status >"$SCRATCH/out" 2>&1 || STATUS=$?
LAST_CMD="tagwallctl status (as nobody, mode 0660)"
expect_status 3
expect_output 'permission denied' "why it cannot connect"
daemon_stop
echo "ok: the control socket survived every abuse; nobody was refused"
