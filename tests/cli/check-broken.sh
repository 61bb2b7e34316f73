#!/usr/bin/env bash
# `tagwall check` rejects conf/demo/policy-broken.yaml: exit 1, and exactly one positioned error
# (FILE:LINE:COL: error: message) for each deliberate mistake, on the line its "BROKEN:" marker is on.
set -euo pipefail
SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/tagwall-cli.XXXXXX")
trap 'rm -rf "$SCRATCH"' EXIT
# shellcheck source=tests/cli/lib.bash
. "$(dirname "$0")/lib.bash"

run check "$BROKEN_POLICY"
expect_status 1
expect_output 'INVALID' "the verdict line"

file=$(ere_quote "$BROKEN_POLICY")
# marker -> what the error message must say
declare -A expected=(
    [unknown-group]="unknown group 'shop-ap'.*did you mean 'shop-app'"
    [port-range]="port 70000 is out of range"
    [inverted-range]="port range 65535-1024 is inverted"
    [bad-cidr]="bad CIDR.*prefix length '33'"
    [duplicate-id]="duplicate rule id 'mon-scrape'"
    [unknown-key]="unknown key 'descripton'.*did you mean 'description'"
)
for marker in "${!expected[@]}"; do
    line=$(grep -n "BROKEN: $marker\$" "$BROKEN_POLICY" | cut -d: -f1)
    [ -n "$line" ] || fail "no 'BROKEN: $marker' line in $BROKEN_POLICY"
    expect_output "^$file:$line:[0-9]+: error: .*${expected[$marker]}" "$marker, line $line"
done

# Nothing else: one error per deliberate mistake, each positioned (a mistake must not cascade).
errors=$(count_output ': error: ')
[ "$errors" -eq "${#expected[@]}" ] || fail "expected ${#expected[@]} errors, got $errors"
positioned=$(count_output "^$file:[0-9]+:[0-9]+: error: ")
[ "$positioned" -eq "$errors" ] || fail "$((errors - positioned)) error(s) without FILE:LINE:COL"
