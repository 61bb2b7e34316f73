#!/usr/bin/env bash
# `tagwall --config FILE --dry-run` validates the appliance config (SPEC §3) and the policy it names, prints
# what it would start (ports, EAL command line, workers) and exits 0.  A broken config gives one positioned
# error (FILE:LINE:COL: error: message) per mistake, with or without --dry-run, and starts nothing.
set -euo pipefail
SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/tagwall-cli.XXXXXX")
trap 'rm -rf "$SCRATCH"' EXIT
# shellcheck source=tests/cli/lib.bash
. "$(dirname "$0")/lib.bash"

CONFIG=$TAGWALL_ROOT/conf/tagwall.yaml

# The example config: valid and summarised.
run --config "$CONFIG" --dry-run
expect_status 0
expect_no_output ': error: ' "the example config must be valid"
expect_output 'would start' "the summary"
expect_output 'port[[:space:]]+inside[[:space:]]+workload[[:space:]]+net_af_packet0,iface=veth-in' "the inside port"
expect_output 'port[[:space:]]+outside[[:space:]]+uplink[[:space:]]+net_af_packet1,iface=veth-out' "the outside port"
expect_output 'workers:[[:space:]]+1' "the worker count"
expect_output 'EAL:.* -l 0-1 .*--no-pci .*--vdev net_af_packet0,iface=veth-in --vdev net_af_packet1,iface=veth-out' \
    "the derived EAL command line"
expect_output 'policy:.*conf/demo/policy\.yaml' "the policy, resolved against the config's directory"

# Raw EAL arguments after -- are appended; a stray argument without -- is a usage error.
run --config "$CONFIG" --dry-run -- --log-level=8
expect_status 0
expect_output 'EAL:.*--log-level=8$' "raw EAL arguments appended"
run --config "$CONFIG" --dry-run stray
expect_status 2

# A broken config: every mistake reported, positioned, with a suggestion where one helps.
broken=$SCRATCH/broken.yaml
cat >"$broken" <<'YAML'
dataplane:
  wokers: 2
  hugepages: sometimes
  ports:
    - {name: inside,  role: workload, devargs: "net_af_packet0,iface=veth-in"}
    - {name: outside, role: uplnk,    devargs: "net_af_packet1,iface=veth-out"}
    - {name: inside,  role: uplink,   devargs: "net_af_packet2,iface=veth-x"}
  pairs: [[inside, outsid]]
control: {socket_mode: "rw-rw----"}
policy: demo/policy.yaml
YAML
run --config "$broken"
expect_status 1
file=$(ere_quote "$broken")
expect_output "^$file:2:3: error: unknown key 'wokers'.*did you mean 'workers'" "unknown key"
expect_output "^$file:3:14: error: 'hugepages' must be auto, required or off" "bad hugepages"
expect_output "^$file:6:29: error: 'role' must be workload or uplink, not 'uplnk'" "bad role"
expect_output "^$file:7:14: error: duplicate port name 'inside'" "duplicate port"
expect_output "^$file:8:20: error: unknown port 'outsid'.*did you mean 'outside'" "pair naming an unknown port"
expect_output "^$file:9:24: error: 'socket_mode' must be an octal mode" "bad socket_mode"
expect_no_output 'would start' "no summary for an invalid config"
errors=$(count_output ': error: ')
positioned=$(count_output "^$file:[0-9]+:[0-9]+: error: ")
[ "$errors" -eq 6 ] || fail "expected 6 errors, got $errors"
[ "$positioned" -eq "$errors" ] || fail "$((errors - positioned)) error(s) without FILE:LINE:COL"

# A config whose policy is broken: the policy's own positioned errors.
sed "s|^policy: .*|policy: $TAGWALL_ROOT/conf/demo/policy-broken.yaml|" "$CONFIG" >"$SCRATCH/bad-policy.yaml"
run --config "$SCRATCH/bad-policy.yaml"
expect_status 1
expect_output "policy-broken\.yaml:[0-9]+:[0-9]+: error: " "the policy's positioned errors"
expect_no_output 'would start' "no summary with an invalid policy"

# A missing file is an error, not a crash.
run --config "$SCRATCH/none.yaml"
expect_status 1
expect_output 'none\.yaml: error: cannot open' "a missing config"
