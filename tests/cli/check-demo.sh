#!/usr/bin/env bash
# `tagwall check` accepts the demo policy: exit 0, no error and no warning (every rule is reachable and
# every group is used), and a summary that names every endpoint and every rule.
set -euo pipefail
SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/tagwall-cli.XXXXXX")
trap 'rm -rf "$SCRATCH"' EXIT
# shellcheck source=tests/cli/lib.bash
. "$(dirname "$0")/lib.bash"

run check "$DEMO_POLICY"
expect_status 0
expect_no_output ': error: ' "the demo policy must be valid"
expect_no_output ': warning: ' "the demo policy must have no shadowed/redundant rule and no empty or unused group"
expect_output 'valid, 0 warning' "the verdict line"

# Every endpoint and every rule of the demo appears in the summary.  The names are read from the
# policy itself, so this test follows the demo when it grows.
endpoints=$(sed -nE 's/^  - name: ([A-Za-z0-9_.:-]+).*/\1/p' "$DEMO_POLICY")
rules=$(sed -nE 's/^  - \{id: ([A-Za-z0-9_.:-]+),.*/\1/p; s/^  - id: ([A-Za-z0-9_.:-]+).*/\1/p' "$DEMO_POLICY")
[ "$(wc -w <<<"$endpoints")" -ge 6 ] || fail "could not read the endpoint names from $DEMO_POLICY"
[ "$(wc -w <<<"$rules")" -ge 8 ] || fail "could not read the rule ids from $DEMO_POLICY"
for e in $endpoints; do expect_output "(^|[[:space:]])$(ere_quote "$e")[[:space:]]" "endpoint $e"; done
for r in $rules; do expect_output "(^|[[:space:]])$(ere_quote "$r")[[:space:]]" "rule $r"; done
expect_output "$(wc -w <<<"$endpoints") endpoint" "the endpoint count"
expect_output "$(wc -w <<<"$rules") rule" "the rule count"
expect_output 'default[[:space:]]+drop|drop[[:space:]]*$' "the default action"

# The same from another directory, with a relative path, and quietly.
LAST_CMD="(cd conf && tagwall check --quiet demo/policy.yaml)"
STATUS=0
(cd "$TAGWALL_ROOT/conf" && "$TAGWALL_BIN" check --quiet demo/policy.yaml) >"$SCRATCH/out" 2>&1 || STATUS=$?
expect_status 0
expect_output '^demo/policy\.yaml: ' "the report names the file as it was given"
expect_no_output 'web-1' "--quiet prints no summary tables"
