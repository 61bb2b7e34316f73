#!/usr/bin/env bash
# The replay harness with real I/O, in its smoke mode (scripts/bench-replay.sh --smoke): tagwall-bench
# generate offers traffic over net_memif to dpdk-testpmd and to tagwall at a low fixed rate; every frame
# offered must come back (established connections, and new connections whose four segments each cross
# the device), and tagwall must forward none of a denied mix and count each of its frames as a drop by
# the policy's default (tagwallctl stats).  Nothing is timed: this checks the harness and its counting.
set -euo pipefail
# shellcheck source=tests/cli/lib.bash
. "$(dirname "$0")/lib.bash"
[ "$(id -u)" -eq 0 ] || { echo "FAIL: the harness needs root (DPDK, hugepages)"; exit 1; }
SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/tagwall-cli.XXXXXX")
trap 'rm -rf "$SCRATCH"' EXIT
build_dir=$(cd "$(dirname "$TAGWALL_BIN")/../.." && pwd)
LAST_CMD="BUILD_DIR=$build_dir scripts/bench-replay.sh --smoke --no-build"
STATUS=0
BUILD_DIR=$build_dir "$TAGWALL_ROOT/scripts/bench-replay.sh" --smoke --no-build >"$SCRATCH/out" 2>&1 </dev/null || STATUS=$?
expect_status 0
expect_output 'smoke: all checks passed'
passed=$(count_output '^bench-replay: smoke: PASS')
[ "$passed" -eq 5 ] || fail "$passed checks passed, expected 5 (testpmd: established, new-conn; tagwall: established, new-conn, denied)"
expect_no_output 'smoke: FAIL'
