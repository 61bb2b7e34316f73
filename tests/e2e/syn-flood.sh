#!/usr/bin/env bash
# A spoofed SYN flood against a small connection table, in the wire lab:
#
#   client ──┬──[ inside (uplink) | tagwall | outside (workload) ]── server 198.18.0.2
#   attacker ┘  a macvlan beside the client: its frames enter the uplink port
#
# tagwall runs with flows: {capacity: 2048} and a policy that lets 198.19.0.0/16 (the "internet" behind
# the uplink) reach the server's tcp/5001, so that every flood SYN is allowed and really takes a slot.
# While the server sends 2 MB to the client over about 8 s (tcp/5001), the attacker sends 10 x 2048
# SYNs from random sources in 198.19.0.0/16 (prebuilt frames through AF_PACKET).
# Expected (src/dataplane/flow_table.hpp: only entries that never completed a handshake are evicted;
# an assured connection never is):
#   - the table fills: in_use = capacity; every flood SYN tagwall saw took a free slot or evicted a
#     half-open one (evicted = new flood flows - free slots before), and none was refused;
#   - the transfer's connection is still in `tagwallctl flows`, ESTABLISHED, and the transfer completes
#     byte for byte;
#   - after the flood a new connection is admitted (retried for at most 5 s; tagwall admits it at once,
#     by evicting a half-open entry).
set -euo pipefail
# shellcheck source=tests/e2e/lib.bash
. "$(dirname "$0")/lib.bash"

SERVER=198.18.0.2
CLIENT=198.18.0.1
SERVER_MAC=52:54:00:00:01:02
ATTACKER_MAC=52:54:00:00:01:66
CAPACITY=2048
FLOOD=$((10 * CAPACITY))
PY=/usr/bin/python3
ADV=$TAGWALL_ROOT/tests/e2e/adversary.py
CTL=$(dirname "$TAGWALL_BIN")/tagwallctl
[ -x "$CTL" ] || e2e_abort "$CTL is not an executable file"

e2e_setup wire
lab_attacker attacker "$ATTACKER_MAC" || e2e_abort "cannot add the attacker beside the client"

# The lab's config with a small table, and its policy with the flood's sources allowed.
sed -i "s/^  flows: {capacity: [0-9]*}$/  flows: {capacity: $CAPACITY}/" "$LAB_DIR/tagwall.yaml"
grep -q "capacity: $CAPACITY}" "$LAB_DIR/tagwall.yaml" || e2e_abort "cannot set the flow capacity in $LAB_DIR/tagwall.yaml"
cat >"$LAB_DIR/policy.yaml" <<'EOF'
# tests/e2e/syn-flood.sh: the wire lab's endpoints; the internet behind the uplink may reach tcp/5001.
version: 1
segments:
  - {name: lan, vlan: 0}
endpoints:
  - {name: server, segment: lan, ip: [198.18.0.2, "2001:db8:1::2"], mac: "52:54:00:00:01:02", tags: {role: server}}
  - {name: client, segment: lan, ip: [198.18.0.1, "2001:db8:1::1"], mac: "52:54:00:00:01:01", tags: {role: client}}
groups:
  clients:  {tags: {role: client}}
  servers:  {tags: {role: server}}
  internet: {cidr: [198.19.0.0/16]}
services:
  transfer: [tcp/5001]
  later:    [tcp/5005]
rules:
  - {id: transfer,  from: [clients, internet], to: servers, services: [transfer], action: allow}
  - {id: later,     from: clients, to: servers, services: [later], action: allow}
default: drop
EOF
tw_start

ctl() { "$CTL" --socket "$LAB_DIR/tagwall.sock" "$@"; }
stats() { ctl --json stats >"$1" || e2e_abort "tagwallctl stats failed"; }
# jget FILE EXPR: a value of tagwallctl's JSON answer (r is its result).
jget() { "$PY" -c 'import json, sys; r = json.load(open(sys.argv[1])); r = r.get("result", r); print(eval(sys.argv[2]))' "$1" "$2"; }
alive() { if kill -0 "$1" 2>/dev/null; then echo running; else echo done; fi; }
transfer_state() {  # the state of the client's tcp/5001 connection in tagwall's table, or "absent"
    ctl --json flows addr="$CLIENT" port=5001 >"$SCRATCH/flows.json" 2>/dev/null || { echo error; return; }
    jget "$SCRATCH/flows.json" \
        '" ".join(f["state"] for f in r["flows"] if f["responder"] == "198.18.0.2:5001") or "absent"'
}

# The transfer: a paced server, the client's fetch; wait until tagwall has it ESTABLISHED.
lab_exec server "$PY" "$ADV" serve "$SERVER" 5001 "$LAB_DIR/payload.bin" 8 >"$SCRATCH/serve.out" 2>&1 &
for _ in $(seq 60); do
    lab_exec server ss -Hltn "sport = :5001" | grep -q . && break
    sleep 0.05
done
lab_exec client "$PY" "$LAB_DIR/lab-helper.py" fetch "$SERVER" 5001 3 "$(cat "$LAB_DIR/payload.sha256")" 2097152 \
    >"$SCRATCH/fetch.out" 2>&1 &
fetch_pid=$!
state=absent
for _ in $(seq 50); do
    state=$(transfer_state)
    [ "$state" = established ] && break
    sleep 0.1
done
_e2e_same "$state" established "the transfer's connection is ESTABLISHED before the flood"

# The flood.
stats "$SCRATCH/before.json"
lab_exec attacker "$PY" "$ADV" syn-flood eth0 "$ATTACKER_MAC" "$SERVER_MAC" "$SERVER" 5001 "$FLOOD" \
    || e2e_abort "the attacker could not send its flood"
sleep 0.5  # the last SYNs through tagwall
stats "$SCRATCH/after.json"
capacity=$(jget "$SCRATCH/after.json" 'r["tables"]["flows"]["capacity"]')
in_use=$(jget "$SCRATCH/after.json" 'r["tables"]["flows"]["in_use"]')
free_before=$(jget "$SCRATCH/before.json" 'r["tables"]["flows"]["capacity"] - r["tables"]["flows"]["in_use"]')
delta() { "$PY" -c '
import json, sys
def get(path):
    r = json.load(open(path))
    r = r.get("result", r)
    return eval(sys.argv[3])
print(get(sys.argv[2]) - get(sys.argv[1]))' "$SCRATCH/before.json" "$SCRATCH/after.json" "$1"; }
opened=$(delta 'r["reasons"].get("rule", 0)')
evicted=$(delta 'r["tables"]["flows"]["evicted"]')
refused=$(delta 'r["tables"]["flows"]["refused"]')
echo "flood: $FLOOD SYNs sent, $opened opened a connection in tagwall; $evicted evictions, $refused refusals"
_e2e_same "$capacity" "$CAPACITY" "the flow table holds $CAPACITY connections (got $capacity)"
if [ "$opened" -ge $((2 * CAPACITY)) ]; then ok=0; else ok=1; fi
_e2e_result "$ok" "the flood reached tagwall: at least twice the capacity in new connections (got $opened)"
_e2e_same "$in_use" "$CAPACITY" "the flood filled the table (in_use $in_use)"
_e2e_same "$evicted" "$((opened - free_before))" \
    "every flood SYN beyond the $free_before free slots evicted a half-open entry (evicted $evicted)"
_e2e_same "$refused" 0 "no new connection was refused: there was always a half-open entry to evict"
_e2e_same "$(transfer_state)" established "the transfer's connection is still in tagwallctl flows, ESTABLISHED"
_e2e_same "$(alive "$fetch_pid")" running "the transfer was still running when the flood ended"

rc=0
wait "$fetch_pid" || rc=$?
_e2e_same "$rc $(cat "$SCRATCH/fetch.out")" "0 ok: 2097152 bytes, sha256 matches" \
    "the 2 MB transfer completes byte for byte (got: $(cat "$SCRATCH/fetch.out"))"

# A new connection after the flood: retried for at most 5 s.
got=none
deadline=$((SECONDS + 5))
while [ "$SECONDS" -le "$deadline" ]; do
    got=$(LAB_CONNECT_TIMEOUT=1 lab_tcp_connect client "$SERVER" 5005) || true
    [ "$got" = connected ] && break
done
_e2e_same "$got" connected "a new connection is admitted within 5 s after the flood (got: $got)"

tw_stop
expect_summary 'transfer +allow' "rule hits"
e2e_finish
