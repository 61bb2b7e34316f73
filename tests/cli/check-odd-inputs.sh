#!/usr/bin/env bash
# Odd policy files are refused with a positioned error and exit 1, never a crash: an empty file, YAML
# that does not parse, the wrong top-level type, binary junk, a directory, a deeply nested document.
set -euo pipefail
SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/tagwall-cli.XXXXXX")
trap 'rm -rf "$SCRATCH"' EXIT
# shellcheck source=tests/cli/lib.bash
. "$(dirname "$0")/lib.bash"

# check_refused FILE WHAT: `tagwall check FILE` exits 1 with an error naming FILE, and no other status.
check_refused() {
    run check "$1"
    expect_status 1
    expect_output "^$(ere_quote "$1")(:[0-9]+:[0-9]+)?: error: " "$2"
}

: >"$SCRATCH/empty.yaml"
check_refused "$SCRATCH/empty.yaml" "an empty file"
expect_output ':1:1: error: ' "positioned at the start"

printf 'version: 1\nrules:\n  - {id: a, from: any\n' >"$SCRATCH/syntax.yaml"
check_refused "$SCRATCH/syntax.yaml" "a YAML syntax error"
expect_output "$(ere_quote "$SCRATCH/syntax.yaml"):[0-9]+:[0-9]+: error: .*YAML" "says it is YAML syntax"

printf -- '- version: 1\n- rules: []\n' >"$SCRATCH/list.yaml"
check_refused "$SCRATCH/list.yaml" "a list instead of a map"

head -c 4096 /dev/urandom >"$SCRATCH/junk.yaml"
check_refused "$SCRATCH/junk.yaml" "binary junk"

mkdir "$SCRATCH/dir.yaml"
check_refused "$SCRATCH/dir.yaml" "a directory"

{
    printf 'version: 1\nrules: '
    for _ in $(seq 5000); do printf '['; done
    for _ in $(seq 5000); do printf ']'; done
    printf '\n'
} >"$SCRATCH/deep.yaml"
check_refused "$SCRATCH/deep.yaml" "a deeply nested document"

printf 'version: 2\nrules: []\ndefault: drop\n' >"$SCRATCH/v2.yaml"
check_refused "$SCRATCH/v2.yaml" "an unsupported version"
expect_output ':1:[0-9]+: error: .*version' "the version line"
