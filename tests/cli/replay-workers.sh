#!/usr/bin/env bash
# `tagwall-bench replay --workers W` decides every packet as one worker does: each pcaps/NNN-*.pcap is
# replayed with --workers 1 and --workers 3 and the verdict files must be identical (they are written
# in merged order, whichever worker decided).  Then all the pcaps at once (merged by timestamp, so that
# several conversations are in flight): identical verdicts again, the packets really spread over more
# than one worker, and the --json per-worker figures adding up to the totals.
set -euo pipefail
SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/tagwall-cli.XXXXXX")
trap 'rm -rf "$SCRATCH"' EXIT
# shellcheck source=tests/cli/lib.bash
. "$(dirname "$0")/lib.bash"

POLICY=$TAGWALL_ROOT/pcaps/policy.yaml

# same_verdicts NAME PCAP-ARGS...: W=1 and W=3 give identical, non-empty verdict files.
same_verdicts() {
    local name=$1
    shift
    bench replay --policy "$POLICY" "$@" --workers 1 --verdicts "$SCRATCH/$name.w1"
    expect_status 0
    bench replay --policy "$POLICY" "$@" --workers 3 --verdicts "$SCRATCH/$name.w3"
    expect_status 0
    expect_output 'with 3 workers' "the human report says how many workers ran"
    [ -s "$SCRATCH/$name.w1" ] || fail "$name: --workers 1 wrote no verdicts"
    if ! diff -u --label "$name --workers 1" --label "$name --workers 3" "$SCRATCH/$name.w1" "$SCRATCH/$name.w3" \
        >"$SCRATCH/out" 2>&1; then
        fail "$name: the verdicts of --workers 3 differ from --workers 1"
    fi
}

pcaps=()
for f in "$TAGWALL_ROOT"/pcaps/[0-9][0-9][0-9]-*.pcap; do
    [ -e "$f" ] || continue
    pcaps+=(--pcap "$f")
    same_verdicts "$(basename "$f" .pcap)" --pcap "$f"
done
[ ${#pcaps[@]} -ge 14 ] || fail "expected at least 7 pcaps in $TAGWALL_ROOT/pcaps, found $((${#pcaps[@]} / 2))"

same_verdicts all-pcaps "${pcaps[@]}"

# The JSON: 3 workers, at least 2 of them busy, per-worker packets and verdicts adding up to the totals.
bench replay --policy "$POLICY" "${pcaps[@]}" --workers 3 --json
expect_status 0
python3 - "$SCRATCH/out" <<'EOF' || fail "the --json per-worker figures do not add up (see above)"
import json, sys
o = json.load(open(sys.argv[1]))
ws = o["workers"]
def check(cond, what):
    if not cond:
        print(f"bad --json: {what}: {json.dumps(o)[:2000]}")
        sys.exit(1)
check(len(ws) == 3 and o["worker_count"] == 3, "3 workers")
check(sorted(w["worker"] for w in ws) == [0, 1, 2], "worker indices 0..2")
check(sum(w["packets"] for w in ws) == o["packets"] > 0, "packets add up")
check(sum(1 for w in ws if w["packets"] > 0) >= 2, "the packets spread over at least 2 workers")
check(sum(w["flows"] for w in ws) == o["flows"], "flows add up")
for k in ("allow", "drop", "reject"):
    check(sum(w["verdicts"][k] for w in ws) == o["verdicts"][k], f"verdicts.{k} add up")
for w in ws:
    for k in ("mpps", "cycles_per_packet"):
        check(k in w and w[k] >= 0, f"worker {w['worker']} has {k}")
check(o["mpps"] > 0 and o["cycles_per_packet"] > 0, "total mpps and cycles_per_packet")
EOF

# Bad worker counts are usage errors.
bench replay --policy "$POLICY" --pcap "$TAGWALL_ROOT/pcaps/001-tcp-allowed.pcap" --workers 0
expect_status 2
expect_output 'workers must be'
