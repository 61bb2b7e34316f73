#!/usr/bin/env bash
# tagwallctl without a daemon: --help teaches every command, command-line mistakes exit 2 with a hint,
# and an unreachable socket exits 3 naming the path and what to try.
set -euo pipefail
SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/tagwall-cli.XXXXXX")
trap 'rm -rf "$SCRATCH"' EXIT
# shellcheck source=tests/cli/lib.bash
. "$(dirname "$0")/lib.bash"
CTL=$(dirname "$TAGWALL_BIN")/tagwallctl
[ -x "$CTL" ] || { echo "FAIL: $CTL was not built"; exit 1; }

# ctl ARGS...: like `run`, for tagwallctl.
ctl() {
    LAST_CMD="tagwallctl $*"
    STATUS=0
    "$CTL" "$@" >"$SCRATCH/out" 2>&1 </dev/null || STATUS=$?
}

ctl --help
expect_status 0
for cmd in status stats ports rules 'policy show' 'policy load' 'endpoint list' 'endpoint tag' 'endpoint untag' \
           flows 'flows flush' trace 'events --follow'; do
    expect_output "^  $cmd" "the overview lists '$cmd'"
    expect_output "tagwallctl $cmd" "the overview has an example of '$cmd'"
done
expect_output '--socket' "documents --socket"
expect_output 'Exit status' "documents the exit statuses"

for cmd in status stats ports rules policy endpoint flows trace events; do
    ctl "$cmd" --help
    expect_status 0
    expect_output "^Usage: tagwallctl .*$cmd" "$cmd --help shows its usage"
    expect_output "^  tagwallctl .*$cmd" "$cmd --help shows an example"
done

ctl
expect_status 2
expect_output '--help' "points to --help"

# Usage errors: exit 2, never a connection attempt (the socket does not exist, which would be exit 3).
nosock=$SCRATCH/none.sock
usage_cases=(
    "frobnicate|unknown command 'frobnicate'"
    "--no-such-option status|no-such-option"
    "status extra|unexpected argument 'extra'"
    "status --verbose|verbose"
    "policy load|which file"
    "policy load a.yaml b.yaml|unexpected argument 'b.yaml'"
    "policy reload x|unknown action 'reload'"
    "endpoint tag|which endpoint"
    "endpoint tag web-1|which tags"
    "endpoint tag web-1 novalue|not KEY=VALUE"
    "endpoint untag web-1 k=v|not KEY=VALUE"
    "endpoint rename a b|unknown action 'rename'"
    "flows colour=red|unknown filter 'colour'"
    "flows justaword|not KEY=VALUE"
    "trace prod 10.0.0.1 10.0.0.2|SEG SRC DST PROTO"
    "trace prod 10.0.0.1 10.0.0.2 tcp 80|SEG SRC DST PROTO"
    "trace prod 10.0.0.1 10.0.0.2 tcp 80 99999|DPORT must be a port number"
    "trace prod 10.0.0.1 10.0.0.2 tcp http 80|SPORT must be a port number"
    "events|--follow"
    "--timeout 0 status|--timeout"
    "--timeout abc status|timeout"
)
for c in "${usage_cases[@]}"; do
    IFS='|' read -r args want <<<"$c"
    # shellcheck disable=SC2086  # the words are split on purpose
    ctl --socket "$nosock" $args
    expect_status 2
    [ -n "$want" ] && expect_output "$(ere_quote "$want")" "explains the mistake"
    expect_output "tagwallctl --help|--help" "points to --help"
done

# No daemon: exit 3, naming the socket and suggesting --socket / checking that tagwall runs.
ctl --socket "$nosock" status
expect_status 3
expect_output "cannot connect to $(ere_quote "$nosock")" "names the socket"
expect_output 'No such|no such' "says why"
expect_output '--socket' "suggests --socket"
expect_output 'tagwall runs|tagwall running' "suggests checking the daemon"

# The default socket when none is given (nothing listens there on a test machine, or it is refused).
if [ ! -S /run/tagwall/tagwall.sock ]; then
    ctl status
    expect_status 3
    expect_output '/run/tagwall/tagwall\.sock' "the default socket path"
fi

# A file that is not a socket, and a socket nobody listens on.
echo hello >"$SCRATCH/file"
ctl --socket "$SCRATCH/file" stats
expect_status 3
expect_output "$(ere_quote "$SCRATCH/file")" "names the path"

/usr/bin/python3 -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])' "$SCRATCH/dead.sock"
ctl --socket "$SCRATCH/dead.sock" --json rules
expect_status 3
expect_output 'refused' "a socket file with no listener: connection refused"

ctl --socket "$SCRATCH/$(printf 'x%.0s' {1..120}).sock" status
expect_status 3
expect_output 'too long' "a path longer than a unix socket allows"
