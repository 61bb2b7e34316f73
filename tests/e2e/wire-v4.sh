#!/usr/bin/env bash
# tagwall in wire mode between two namespaces, over IPv4 (tests/e2e/wire-policy.yaml):
#   client ── [inside | tagwall | outside] ── server 198.18.0.2
# Allowed: a 2 MB TCP transfer on tcp/5001 (byte for byte), a UDP echo on udp/5353, ping.
# Denied: tcp/5002 (no rule: the default drops it, the client times out) and tcp/5003 (rule wire-reject:
# the client gets an RST at once).  The event log names the default and the rule; SIGTERM stops tagwall
# with status 0 and a summary.
set -euo pipefail
# shellcheck source=tests/e2e/lib.bash
. "$(dirname "$0")/lib.bash"

SERVER=198.18.0.2

e2e_setup wire
tw_start

expect_ping client "$SERVER" reply
expect_transfer client server "$SERVER" 5001
expect_udp client server "$SERVER" 5353 echoed
# A server listens on 5002 and 5003 too (the probe starts one): only tagwall can stop these.
expect_tcp client "$SERVER" 5002 timeout
expect_tcp client "$SERVER" 5003 refused

expect_event "a drop of tcp/5002 (no rule: the default)" \
    verdict=drop proto=tcp src=198.18.0.1 dst="$SERVER" dport=5002 'reason=default|rule' \
    src_endpoint=client dst_endpoint=server
expect_event "a reject of tcp/5003 by rule wire-reject" \
    verdict=reject rule=wire-reject reason=rule proto=tcp src=198.18.0.1 dst="$SERVER" dport=5003
expect_event "an allow of tcp/5001 by rule wire-transfer (log: true)" \
    verdict=allow rule=wire-transfer proto=tcp dst="$SERVER" dport=5001

tw_stop
expect_summary 'wire-reject' "rule hits"
e2e_finish
