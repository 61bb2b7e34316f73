#!/usr/bin/env bash
# Two workers without RSS (net_pcap has none): in wire mode each wire pair belongs to one worker, which
# owns both of its ports, so that a connection's two directions meet there (dataplane/appliance.hpp's
# queue plan).  Pair 1 carries pcaps/001-tcp-allowed.pcap, pair 2 pcaps/006-reject.pcap; each pair's
# verdicts must be those of replay, decided on its own worker; `tagwallctl stats` shows both workers.
# With one CPU per worker the control thread shares the first worker's CPU; with fewer CPUs than
# workers the lcores float over them (a warning says which; config.hpp eal_args_for).
set -euo pipefail
# shellcheck source=tests/cli/lib.bash
. "$(dirname "$0")/lib.bash"
daemon_setup
CTL=$(dirname "$TAGWALL_BIN")/tagwallctl
P=$TAGWALL_ROOT/pcaps
two_pairs_config capture
daemon_start "$SCRATCH/tagwall.yaml" "two pairs"
expect_output '^tagwall: ready: 4 ports, 2 workers' "two workers started"
expect_output '^tagwall: worker 0 on lcore [0-9]+: polls w1:0 u1:0$' "pair 1 on worker 0"
expect_output '^tagwall: worker 1 on lcore [0-9]+: polls w2:0 u2:0$' "pair 2 on worker 1"
sleep 1
"$CTL" --socket "$SCRATCH/tagwall.sock" --json stats >"$SCRATCH/stats.json" || fail "tagwallctl stats failed"
workers=$(/usr/bin/python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
print(" ".join("%d:%d" % (w["worker"], w["rx"]) for w in r["workers"]))' "$SCRATCH/stats.json")
want1=$(frames "$P/001-tcp-allowed.pcap")
want2=$(frames "$P/006-reject.pcap")
[ "$workers" = "0:$want1 1:$want2" ] || fail "per-worker rx: got '$workers', want '0:$want1 1:$want2'"
daemon_stop
allowed1=$(grep -c ' allow ' "$P/001-tcp-allowed.verdicts" || true)
rejected2=$(grep -c ' reject ' "$P/006-reject.verdicts" || true)
allowed2=$(grep -c ' allow ' "$P/006-reject.verdicts" || true)
[ "$(frames "$SCRATCH/u1.pcap")" -eq "$allowed1" ] || fail "pair 1: $(frames "$SCRATCH/u1.pcap") forwarded, $allowed1 allowed"
[ "$(frames "$SCRATCH/u2.pcap")" -eq "$allowed2" ] || fail "pair 2: $(frames "$SCRATCH/u2.pcap") forwarded, $allowed2 allowed"
[ "$(frames "$SCRATCH/w2.pcap")" -eq "$rejected2" ] || fail "pair 2: $(frames "$SCRATCH/w2.pcap") answers, $rejected2 rejects"
echo "ok: two workers, one wire pair each"
