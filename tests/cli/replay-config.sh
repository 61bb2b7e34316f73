#!/usr/bin/env bash
# `tagwall-bench replay --config FILE` replays through the appliance a config describes: its ports by
# name and role, its forwarding and flow table, its policy; the ports' devargs are never opened (no
# root, no interfaces).  A config that describes the --policy wire gives the same verdicts as --policy
# for every pcaps/NNN-*.pcap; switch forwarding decides the same packets the same way; port names come
# from the config (PORT=FILE, and the PORT column of --verdicts); a broken config is refused with its
# positioned errors, and an unknown port is a usage error.
set -euo pipefail
SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/tagwall-cli.XXXXXX")
trap 'rm -rf "$SCRATCH"' EXIT
# shellcheck source=tests/cli/lib.bash
. "$(dirname "$0")/lib.bash"

POLICY=$TAGWALL_ROOT/pcaps/policy.yaml

# write_config FILE FORWARDING [PAIRS]: the wire of --policy (workload, uplink) with devargs nobody opens.
write_config() {
    cat >"$1" <<YAML
dataplane:
  ports:
    - {name: workload, role: workload, devargs: "net_af_packet0,iface=does-not-exist-0"}
    - {name: uplink,   role: uplink,   devargs: "net_af_packet1,iface=does-not-exist-1"}
  forwarding: $2
${3:+  pairs: $3}
  flows: {capacity: 65536}
log: {path: $SCRATCH/events.jsonl}
policy: $POLICY
YAML
}
write_config "$SCRATCH/wire.yaml" wire '[[workload, uplink]]'
write_config "$SCRATCH/switch.yaml" switch

checked=0
for pcap in "$TAGWALL_ROOT"/pcaps/[0-9][0-9][0-9]-*.pcap; do
    name=$(basename "$pcap" .pcap)
    bench replay --policy "$POLICY" --pcap "$pcap" --verdicts "$SCRATCH/$name.policy"
    expect_status 0
    bench replay --config "$SCRATCH/wire.yaml" --pcap "$pcap" --verdicts "$SCRATCH/$name.wire"
    expect_status 0
    bench replay --config "$SCRATCH/switch.yaml" --pcap "workload=$pcap" --verdicts "$SCRATCH/$name.switch"
    expect_status 0
    [ -s "$SCRATCH/$name.policy" ] || fail "$name: no verdicts"
    cmp -s "$SCRATCH/$name.policy" "$SCRATCH/$name.wire" || fail "$name: --config (wire) differs from --policy"
    cmp -s "$SCRATCH/$name.policy" "$SCRATCH/$name.switch" || fail "$name: --config (switch) differs from --policy"
    checked=$((checked + 1))
done
[ "$checked" -gt 0 ] || fail "no pcaps under $TAGWALL_ROOT/pcaps"

# Port names are the config's.
sed 's/name: workload,/name: inside,/; s/name: uplink,/name: outside,/; s/\[\[workload, uplink\]\]/[[inside, outside]]/' \
    "$SCRATCH/wire.yaml" >"$SCRATCH/renamed.yaml"
bench replay --config "$SCRATCH/renamed.yaml" --pcap "inside=$TAGWALL_ROOT/pcaps/001-tcp-allowed.pcap" \
    --verdicts "$SCRATCH/renamed.verdicts"
expect_status 0
grep -q '^inside 0 allow web-db$' "$SCRATCH/renamed.verdicts" || fail "the PORT column does not name the config's port"
bench replay --config "$SCRATCH/renamed.yaml" --pcap "workload=$TAGWALL_ROOT/pcaps/001-tcp-allowed.pcap"
expect_status 2
expect_output "unknown port 'workload'.*inside, outside" "the config's ports listed"

# A broken config: its positioned errors, nothing replayed.
printf 'dataplane:\n  wokers: 2\npolicy: %s\n' "$POLICY" >"$SCRATCH/broken.yaml"
bench replay --config "$SCRATCH/broken.yaml" --pcap "$TAGWALL_ROOT/pcaps/001-tcp-allowed.pcap"
expect_status 1
expect_output "broken\.yaml:2:3: error: unknown key 'wokers'" "the config's positioned error"
bench replay --config "$SCRATCH/wire.yaml" --policy "$POLICY" --pcap "$TAGWALL_ROOT/pcaps/001-tcp-allowed.pcap"
expect_status 2
echo "ok: $checked pcaps, --config (wire and switch) = --policy"
