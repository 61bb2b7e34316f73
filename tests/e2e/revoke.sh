#!/usr/bin/env bash
# Continuous verification (SPEC §6), with real traffic in the wire lab (tests/e2e/wire-policy.yaml):
#   1. a TCP connection on tcp/5001 is open and sending; `tagwallctl policy load` of a policy that
#      rejects tcp/5001 cuts it: both ends see an RST (the client's and the server's socat fail at once)
#      and the event log has a `revoked` event naming the new deciding rule;
#   2. `policy load --dry-run` lists the connection it would cut before anything changes;
#   3. an endpoint re-tagged at run time (`tagwallctl endpoint tag server role=other`) loses what its
#      tags gave it (ping), and gets it back when tagged again, without a policy reload;
#   4. a policy file that does not load changes nothing and the positioned errors come back.
set -euo pipefail
# shellcheck source=tests/e2e/lib.bash
. "$(dirname "$0")/lib.bash"

SERVER=198.18.0.2
CTL=$(dirname "$TAGWALL_BIN")/tagwallctl
[ -x "$CTL" ] || e2e_abort "$CTL is not an executable file"

e2e_setup wire
tw_start
ctl() { "$CTL" --socket "$LAB_DIR/tagwall.sock" "$@"; }
alive() { if kill -0 "$1" 2>/dev/null; then echo running; else echo gone; fi; }
has() { if grep -Eq -- "$1" "$2"; then echo yes; else echo no; fi; }

# The revoking policy: the same, with tcp/5001 rejected (before the allow, first match wins).
sed 's/^  - {id: wire-transfer, .*$/  - {id: no-more-transfer, from: clients, to: servers, services: [transfer], action: reject}/' \
    "$LAB_DIR/policy.yaml" >"$SCRATCH/revoke.yaml"
grep -q no-more-transfer "$SCRATCH/revoke.yaml" || e2e_abort "could not write the revoking policy"

# 1. A long-lived connection: the client writes a line every 100 ms; the server reads it.
lab_exec server socat -u "TCP-LISTEN:5001,bind=$SERVER,reuseaddr" OPEN:/dev/null </dev/null >"$SCRATCH/server.out" 2>&1 &
server_pid=$!
sleep 0.5
lab_exec client bash -c "while echo tick; do sleep 0.1; done | socat -u - TCP:$SERVER:5001" </dev/null \
    >"$SCRATCH/client.out" 2>&1 &
client_pid=$!
sleep 1.5
_e2e_same "$(alive "$client_pid") $(alive "$server_pid")" "running running" "the tcp/5001 connection is up and sending"

# An operator following the events (tagwallctl events --follow) sees the revocation as it happens.
"$CTL" --socket "$LAB_DIR/tagwall.sock" --json events --follow >"$SCRATCH/follow.out" 2>&1 &
follow_pid=$!

# 2. The dry run names it and changes nothing.
ctl --json policy load --dry-run "$SCRATCH/revoke.yaml" >"$SCRATCH/dry.out" 2>&1 || true
_e2e_same "$(has '"responder": *"198\.18\.0\.2:5001"' "$SCRATCH/dry.out")" yes \
    "policy load --dry-run lists the tcp/5001 connection it would cut"
changes=$(/usr/bin/python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
r = r.get("result", r)
print(" ".join(sorted("%s:%d>%d" % (c["rule"], c["connections_now"], c["connections_after"]) for c in r["rule_changes"])))
' "$SCRATCH/dry.out" 2>&1) || true
_e2e_same "$changes" "no-more-transfer:0>1 wire-transfer:1>0" \
    "policy load --dry-run: the rules whose connection counts would change (got: $changes)"
sleep 0.5
_e2e_same "$(alive "$client_pid")" running "after the dry run the connection still runs"

# 3. The real load: the connection is cut within about one packet (100 ms), at both ends.
rc=0
ctl policy load "$SCRATCH/revoke.yaml" >"$SCRATCH/load.out" 2>&1 || rc=$?
_e2e_same "$rc" 0 "policy load of the revoking policy succeeds"
for _ in $(seq 30); do
    [ "$(alive "$client_pid")$(alive "$server_pid")" = gonegone ] && break
    sleep 0.1
done
_e2e_same "$(alive "$client_pid")" gone "the client's end is closed (RST) within 3 s of the load"
_e2e_same "$(alive "$server_pid")" gone "the server's end is closed (RST) too"
kill "$client_pid" "$server_pid" 2>/dev/null || true
expect_event "the connection revoked by no-more-transfer" verdict=reject reason=revoked rule=no-more-transfer dport=5001
expect_tcp client "$SERVER" 5001 refused
sleep 0.5
kill "$follow_pid" 2>/dev/null || true
_e2e_same "$(has '"reason":"revoked"' "$SCRATCH/follow.out")" yes "tagwallctl events --follow showed the revocation"

# 4. Re-tagging: the server loses the `servers` group, so ping (wire-ping: clients -> servers) stops.
expect_ping client "$SERVER" reply
rc=0
ctl endpoint tag server role=other >/dev/null || rc=$?
_e2e_same "$rc" 0 "endpoint tag server role=other"
expect_ping client "$SERVER" timeout
ctl endpoint tag server role=server >/dev/null || true
expect_ping client "$SERVER" reply

# 5. A broken policy changes nothing and says where it is broken.
printf 'version: 1\nrules:\n  - {id: x, from: nobody, to: servers, action: allow}\n' >"$SCRATCH/broken.yaml"
rc=0
ctl policy load "$SCRATCH/broken.yaml" >"$SCRATCH/broken.out" 2>&1 || rc=$?
_e2e_same "$rc" 1 "policy load of a broken file fails with status 1"
_e2e_same "$(has 'broken\.yaml:[0-9]+:[0-9]+: error' "$SCRATCH/broken.out")" yes "the positioned errors are printed"
expect_ping client "$SERVER" reply

tw_stop
expect_summary 'revoked' "the revocation counted"
e2e_finish
