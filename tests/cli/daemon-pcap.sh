#!/usr/bin/env bash
# The appliance's real worker loop (`tagwall --config`, DPDK ports, lcores, tx bursts, reject answers,
# event log) on net_pcap ports: each pcaps/NNN-*.pcap arrives on the `workload` port of a wire
# [workload | uplink]; what tagwall forwards is written to the uplink's tx pcap, what it answers to the
# workload's.  Expected, from the pcap's .verdicts file (which `tagwall-bench replay` is held to):
#   - every allowed frame leaves by the uplink, in order, and nothing else does;
#   - every rejected packet is answered on the workload port (TCP: an RST);
#   - every drop and reject is an event in the log, with the same reason word.
# Needs root (DPDK) and hugepages or the --no-huge fallback; no network namespaces.
set -euo pipefail
# shellcheck source=tests/cli/lib.bash
. "$(dirname "$0")/lib.bash"
daemon_setup


checked=0
for pcap in "$TAGWALL_ROOT"/pcaps/[0-9][0-9][0-9]-*.pcap; do
    name=$(basename "$pcap" .pcap)
    verdicts=${pcap%.pcap}.verdicts
    dir=$SCRATCH/$name
    mkdir -p "$dir"
    cat >"$dir/tagwall.yaml" <<YAML
dataplane:
  workers: 1
  ports:
    - {name: workload, role: workload, devargs: "net_pcap0,rx_pcap=$pcap,tx_pcap=$dir/workload-tx.pcap"}
    - {name: uplink,   role: uplink,   devargs: "net_pcap1,rx_pcap=$SCRATCH/empty.pcap,tx_pcap=$dir/uplink-tx.pcap"}
  forwarding: wire
  pairs: [[workload, uplink]]
  flows: {capacity: 4096}
control: {socket: $dir/tagwall.sock}
log: {path: $dir/events.jsonl}
policy: $TAGWALL_ROOT/pcaps/policy.yaml
YAML
    daemon_start "$dir/tagwall.yaml" "$name"
    sleep 1  # net_pcap delivers the whole file at once; give the worker and the log writer a moment
    daemon_stop
    expect_output '^tagwall: stopped' "$name: the summary"

    allowed=$(grep -c ' allow ' "$verdicts" || true)
    rejected=$(grep -c ' reject ' "$verdicts" || true)
    denied=$(grep -Ec ' (drop|reject) ' "$verdicts" || true)
    [ "$(frames "$dir/uplink-tx.pcap")" -eq "$allowed" ] ||
        fail "$name: $allowed frames allowed by the verdicts, $(frames "$dir/uplink-tx.pcap") left by the uplink"
    [ "$(frames "$dir/workload-tx.pcap")" -eq "$rejected" ] ||
        fail "$name: $rejected rejects, $(frames "$dir/workload-tx.pcap") answers on the workload port"
    # The forwarded frames are the allowed input frames, byte for byte and in order.
    allowed_idx=$(awk '$3 == "allow" {printf "%s%d", sep, $2 + 1; sep = " || frame.number == "}' "$verdicts")
    if [ -n "$allowed_idx" ]; then
        diff <(tshark -r "$pcap" -Y "frame.number == $allowed_idx" -T fields -e frame.len -e frame.protocols 2>/dev/null) \
             <(tshark -r "$dir/uplink-tx.pcap" -T fields -e frame.len -e frame.protocols 2>/dev/null) >/dev/null ||
            fail "$name: the uplink's frames are not the allowed input frames"
    fi
    if [ "$rejected" -gt 0 ]; then
        tshark -r "$dir/workload-tx.pcap" -Y 'tcp.flags.reset == 1 || icmp.type == 3 || icmpv6.type == 1' -T fields \
            -e frame.number 2>/dev/null | grep -q . || fail "$name: the answers are neither RSTs nor unreachables"
    fi
    events=$(grep -Ec '"verdict":"(drop|reject)"' "$dir/events.jsonl" || true)
    [ "$events" -eq "$denied" ] || fail "$name: $denied drops and rejects in the verdicts, $events events in the log"
    # The same rule or reason word as the replay's verdicts, packet by packet.
    awk '$3 != "allow" {print $3, $4}' "$verdicts" >"$dir/expected-events"
    python3 -c '
import json, sys
for line in open(sys.argv[1]):
    e = json.loads(line)
    if e["verdict"] != "allow":
        print(e["verdict"], e["rule"] if e["reason"] == "rule" else e["reason"])
' "$dir/events.jsonl" >"$dir/got-events"
    diff "$dir/expected-events" "$dir/got-events" >"$dir/events.diff" ||
        fail "$name: the events differ from the verdicts (< verdicts, > events): $(tr '\n' ' ' <"$dir/events.diff")"
    checked=$((checked + 1))
done
[ "$checked" -gt 0 ] || fail "no pcaps under $TAGWALL_ROOT/pcaps"
echo "ok: $checked pcaps through the appliance's worker loop"
