#!/usr/bin/env bash
# Policy publication while two workers are busy: the appliance runs two wire pairs on net_pcap ports
# that replay their captures in a loop (infinite_rx), one pair per worker, and the control socket is
# driven meanwhile: policy loads (RCU publish, acknowledged by both workers), endpoint re-tags, flows,
# stats and flushes, twenty rounds.  Every request must succeed, the generation must advance by one per
# publication, both workers must run the last one, and the appliance must stop cleanly (exit 0).
# scripts/tsan.sh runs this script with its ThreadSanitizer build; scripts/test.sh with the normal and
# the AddressSanitizer builds.
set -euo pipefail
# shellcheck source=tests/cli/lib.bash
. "$(dirname "$0")/lib.bash"
daemon_setup
CTL=$(dirname "$TAGWALL_BIN")/tagwallctl
P=$TAGWALL_ROOT/pcaps
two_pairs_config loop
daemon_start "$SCRATCH/tagwall.yaml" "two busy workers"

# ctl ARGS...: tagwallctl --json against the appliance; its answer in $SCRATCH/ctl.json.
ctl() {
    LAST_CMD="tagwallctl $*"
    "$CTL" --socket "$SCRATCH/tagwall.sock" --json "$@" >"$SCRATCH/ctl.json" 2>&1 || fail "tagwallctl $* failed: $(cat "$SCRATCH/ctl.json")"
}
json() { /usr/bin/python3 -c "import json, sys; r = json.load(open(sys.argv[1])); print($1)" "$SCRATCH/ctl.json"; }

ctl stats
rx0=$(json 'r["totals"]["rx"]')
generation=1
for round in $(seq 20); do
    ctl policy load "$P/policy.yaml"
    generation=$((generation + 1))
    [ "$(json 'r["generation"]')" -eq "$generation" ] || fail "round $round: policy load published generation $(json 'r["generation"]'), expected $generation"
    ctl endpoint tag web-1 tier=quarantine
    generation=$((generation + 1))
    ctl endpoint untag web-1 tier
    generation=$((generation + 1))
    ctl flows
    ctl stats
    [ $((round % 5)) -eq 0 ] && ctl flows flush
done
ctl stats
rx1=$(json 'r["totals"]["rx"]')
[ "$rx1" -gt "$rx0" ] || fail "the workers received nothing while the policy changed (rx $rx0 -> $rx1)"
gens=$(json '" ".join(str(w["generation"]) for w in r["workers"])')
[ "$gens" = "$generation $generation" ] || fail "workers run generations '$gens', expected $generation on both"
ctl status
[ "$(json 'r["policy"]["generation"]')" -eq "$generation" ] || fail "status reports generation $(json 'r["policy"]["generation"]')"
daemon_stop
expect_output '^tagwall: stopped' "the summary after the stop"
echo "ok: $((generation - 1)) publications while two workers received $((rx1 - rx0)) frames"
