#!/usr/bin/env bash
# Command-line mistakes exit 2 with a hint; a policy file that cannot be read exits 1 with an error
# that names it.
set -euo pipefail
SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/tagwall-cli.XXXXXX")
trap 'rm -rf "$SCRATCH"' EXIT
# shellcheck source=tests/cli/lib.bash
. "$(dirname "$0")/lib.bash"

run
expect_status 2
expect_output '--help' "points to --help"

run check
expect_status 2
expect_output 'POLICY' "says a policy file is needed"

run check --no-such-option "$DEMO_POLICY"
expect_status 2
expect_output 'no-such-option' "names the unknown option"

run --no-such-option
expect_status 2
expect_output 'no-such-option' "names the unknown option"

run check "$DEMO_POLICY" "$DEMO_POLICY"
expect_status 2
expect_output 'one policy' "says one policy file at a time"

missing=$SCRATCH/no-such-policy.yaml
run check "$missing"
expect_status 1
expect_output "^$(ere_quote "$missing")(:[0-9]+:[0-9]+)?: error: .*(No such file|cannot open)" \
    "a missing file is an error on that file"
expect_no_output 'valid, ' "no verdict of validity"
