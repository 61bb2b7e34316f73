#!/usr/bin/env bash
# Forged RSTs against a live TCP transfer, in the wire lab (tests/e2e/wire-policy.yaml):
#
#   client ──┬──[ inside (uplink) | tagwall | outside (workload) ]── server 198.18.0.2
#   attacker ┘  a macvlan beside the client: its frames enter the uplink port, where SpoofGuard checks
#               no source, so it can claim to be the client
#
# The server sends 2 MB to the client over about 4 s (tcp/5001, rule wire-transfer).  Meanwhile the
# attacker, who knows the connection's ports and the client's next sequence number (sniffed: the
# strongest attacker who is not on the path), sends RSTs "from the client" to the server: at sequence
# number 0, far out of the window, in the window but not exact, and a blind sweep of 300 sequence
# numbers across the whole space (one of which lands in the window).  None is exact.
# Expected (src/dataplane/conntrack_tcp.hpp, RFC 5961): the transfer completes byte for byte; every RST
# outside the window is dropped and counted as rst_out_of_window; every one inside it is passed and
# counted as rst_in_window, and the server answers it with a challenge ACK (its TCPChallengeACK
# counter moves) instead of resetting.  The counts are exact: tagwallctl stats before and after.
set -euo pipefail
# shellcheck source=tests/e2e/lib.bash
. "$(dirname "$0")/lib.bash"

SERVER=198.18.0.2
CLIENT=198.18.0.1
SERVER_MAC=52:54:00:00:01:02
ATTACKER_MAC=52:54:00:00:01:66
PY=/usr/bin/python3
ADV=$TAGWALL_ROOT/tests/e2e/adversary.py
CTL=$(dirname "$TAGWALL_BIN")/tagwallctl
[ -x "$CTL" ] || e2e_abort "$CTL is not an executable file"

e2e_setup wire
lab_attacker attacker "$ATTACKER_MAC" || e2e_abort "cannot add the attacker beside the client"
tw_start

stats() { "$CTL" --socket "$LAB_DIR/tagwall.sock" --json stats >"$1" || e2e_abort "tagwallctl stats failed"; }
# reason_delta BEFORE AFTER COUNTER: how much a reason counter grew.
reason_delta() {
    "$PY" -c '
import json, sys
def get(path):
    r = json.load(open(path))
    return r.get("result", r)["reasons"].get(sys.argv[3], 0)
print(get(sys.argv[2]) - get(sys.argv[1]))' "$1" "$2" "$3"
}
challenge_acks() {
    lab_exec server nstat -asz TcpExtTCPChallengeACK 2>/dev/null | awk '$1 == "TcpExtTCPChallengeACK" { print $2 }'
}
alive() { if kill -0 "$1" 2>/dev/null; then echo running; else echo done; fi; }

# The paced server, a sniffer on the client's side (it only learns the ports and sequence number),
# then the client's fetch.
lab_exec server "$PY" "$ADV" serve "$SERVER" 5001 "$LAB_DIR/payload.bin" 4 >"$SCRATCH/serve.out" 2>&1 &
for _ in $(seq 60); do
    lab_exec server ss -Hltn "sport = :5001" | grep -q . && break
    sleep 0.05
done
lab_exec client "$PY" "$ADV" sniff-syn eth0 "$SERVER" 5001 15 "$SCRATCH/sniffing" >"$SCRATCH/syn.out" 2>&1 &
sniff_pid=$!
for _ in $(seq 100); do [ -e "$SCRATCH/sniffing" ] && break; sleep 0.05; done
[ -e "$SCRATCH/sniffing" ] || e2e_abort "the sniffer did not start"
lab_exec client "$PY" "$LAB_DIR/lab-helper.py" fetch "$SERVER" 5001 3 "$(cat "$LAB_DIR/payload.sha256")" 2097152 \
    >"$SCRATCH/fetch.out" 2>&1 &
fetch_pid=$!
wait "$sniff_pid" || e2e_abort "the client's SYN was not seen: $(cat "$SCRATCH/syn.out")"
read -r sport next_seq <"$SCRATCH/syn.out"
echo "the transfer's connection: $CLIENT:$sport -> $SERVER:5001, the client's next sequence number $next_seq"

sleep 0.5  # well into the transfer
stats "$SCRATCH/before.json"
acks_before=$(challenge_acks)
plan=$(lab_exec attacker "$PY" "$ADV" forge-rsts eth0 "$ATTACKER_MAC" "$SERVER_MAC" "$CLIENT" "$SERVER" \
    "$sport" 5001 "$next_seq") || e2e_abort "the attacker could not send its RSTs"
read -r _ want_out _ want_in <<<"$plan"
echo "attacker: $plan"
_e2e_same "$(alive "$fetch_pid")" running "the transfer was still running when the last RST was sent"
sleep 0.3  # the last RSTs through tagwall

rc=0
wait "$fetch_pid" || rc=$?
_e2e_same "$rc $(cat "$SCRATCH/fetch.out")" "0 ok: 2097152 bytes, sha256 matches" \
    "the 2 MB transfer completes byte for byte (got: $(cat "$SCRATCH/fetch.out"))"
stats "$SCRATCH/after.json"
got_out=$(reason_delta "$SCRATCH/before.json" "$SCRATCH/after.json" rst_out_of_window)
got_in=$(reason_delta "$SCRATCH/before.json" "$SCRATCH/after.json" rst_in_window)
_e2e_same "$got_out" "$want_out" "every RST outside the window is counted as rst_out_of_window ($want_out; got $got_out)"
_e2e_same "$got_in" "$want_in" "every RST inside the window, not exact, is counted as rst_in_window ($want_in; got $got_in)"
acks_after=$(challenge_acks)
if [ "${acks_after:-0}" -gt "${acks_before:-0}" ]; then ok=0; else ok=1; fi
_e2e_result "$ok" "the server answered the in-window RSTs with challenge ACKs (TCPChallengeACK $acks_before -> $acks_after)"

tw_stop
expect_summary 'rst_out_of_window' "the per-reason counters"
expect_summary 'rst_in_window' "the per-reason counters"
e2e_finish
