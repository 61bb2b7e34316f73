#!/usr/bin/env bash
# `tagwall --help` and `tagwall check --help` exit 0 and explain the check command.
set -euo pipefail
SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/tagwall-cli.XXXXXX")
trap 'rm -rf "$SCRATCH"' EXIT
# shellcheck source=tests/cli/lib.bash
. "$(dirname "$0")/lib.bash"

for args in "--help" "-h"; do
    run "$args"
    expect_status 0
    expect_output 'tagwall check' "the overview names the check command"
    expect_output '--config' "the overview names the appliance mode"
    expect_output 'Exit status|exit status' "the exit statuses are documented"
done

for args in "--help" "-h"; do
    run check "$args"
    expect_status 0
    expect_output 'check' "the check help names the command"
    expect_output '--quiet' "the check help lists its options"
    expect_output 'POLICY' "the check help names its argument"
done

run --version
expect_status 0
expect_output '^tagwall [0-9]+\.[0-9]+' "the version"
