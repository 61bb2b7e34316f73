#!/usr/bin/env bash
# The tagwall demo: a three-tier web shop (conf/demo/policy.yaml) behind the firewall, with real traffic.
#
#   1. The policy side: what `tagwall check` makes of the shop's policy (segments, endpoints and their
#      tags, group membership computed from tags, the ordered rule table, the analysis), and of a policy
#      with mistakes.
#   2. The dataplane: a lab of network namespaces (scripts/netns-lab.sh shop): web-1, app-1, db-1 and
#      prometheus on VLANs 10/20/30/40, each on a tagwall port of its own, a router on the uplink trunk,
#      and an internet client and an admin-VPN client behind the router.  `tagwall --config` runs in
#      switch mode on the lab's veths, and real connections that the policy allows and denies go through
#      it: a table shows what was expected, what happened, and the rule or reason from tagwall's event
#      log.  Then tagwallctl against the running appliance: `trace`, and web-1 re-tagged into quarantine
#      and back (its access follows at once, no policy reload).  Then SIGTERM, and tagwall's summary.
#
# Everything the demo creates is removed when it ends, also on failure or Ctrl-C, unless --keep.
# Environment: BUILD_DIR (default ./build), and everything scripts/setup.sh honours.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

BUILD_DIR=${BUILD_DIR:-build}
case $BUILD_DIR in /*) ;; *) BUILD_DIR=$ROOT/$BUILD_DIR ;; esac
export BUILD_DIR
TAGWALL=$BUILD_DIR/src/tools/tagwall
POLICY=conf/demo/policy.yaml

if [ -t 1 ]; then bold=$'\033[1m' red=$'\033[31m' plain=$'\033[0m'; else bold="" red="" plain=""; fi
step() { printf '\n%s==> %s%s\n' "$bold" "$*" "$plain"; }

usage() {
    cat <<'USAGE'
usage: scripts/demo.sh [--no-setup] [--keep]

Prepares the machine (scripts/setup.sh), builds tagwall, walks through the demo policy
conf/demo/policy.yaml (a three-tier shop: web, app, db, plus monitoring and an admin VPN) with
`tagwall check`, then runs tagwall in switch mode in front of the shop's workloads (network namespaces
on veths) and sends real connections through it: allowed ones, dropped ones, a rejected one and a
spoofed one, each with the rule or reason that decided it.  The live part needs root.
  --no-setup   skip scripts/setup.sh (the build directory must already be configured)
  --keep       leave the lab up and tagwall running at the end, and print how to use and stop them
USAGE
}

do_setup=1
keep=0
while [ $# -gt 0 ]; do
    case $1 in
        --no-setup) do_setup=0 ;;
        --keep) keep=1 ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; exit 2 ;;
    esac
    shift
done

intro() {
    cat <<'INTRO'
tagwall demo: a three-tier shop behind a zero-trust firewall
============================================================
  internet --https--> web-1, web-2 --shop-api--> app-1, app-2 --postgres--> db-1
                      (VLAN 10, dmz)             (VLAN 20, app)            (VLAN 30, data)
  plus prometheus on the management VLAN (40) and on-call engineers on the admin VPN.

The policy never names an address in a rule: it says "tier: web may reach tier: app on shop-api".
Addresses are declared once per workload and bound to it (anti-spoofing).  Everything not allowed
is dropped.  First, how tagwall reads and checks that policy; then real traffic through it.
INTRO
}

setup_and_build() {
    if [ "$do_setup" = 1 ]; then
        step "Preparing the machine (scripts/setup.sh)"
        ./scripts/setup.sh
    fi
    step "Building tagwall (ninja -C $BUILD_DIR)"
    ninja -C "$BUILD_DIR" -j2
}

show_policy() {
    step "The policy: $POLICY (rules excerpt)"
    sed -n '/^rules:/,$p' "$POLICY"
}

check_policy() {
    step "tagwall check $POLICY"
    cat <<'NOTE'
The same loader and analysis the appliance uses: every group is resolved to its members, every rule
is checked for reachability (is it shadowed by an earlier rule? would removing it change anything?).
NOTE
    echo
    "$TAGWALL" check "$POLICY"
}

check_broken_policy() {
    step "A policy with mistakes: tagwall check conf/demo/policy-broken.yaml"
    echo "Every mistake is reported at once, with FILE:LINE:COL, and nothing is loaded (exit status 1)."
    echo
    local status=0
    "$TAGWALL" check --quiet conf/demo/policy-broken.yaml || status=$?
    echo "(exit status $status)"
}

# ---------------------------------------------------------------------------------------------------
# The live part

# shellcheck source=scripts/netns-lab.sh
. scripts/netns-lab.sh

LAB=""
TW_PID=""
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    set +e   # every step must run
    if [ "$keep" = 1 ] && [ -n "$TW_PID" ]; then exit "$rc"; fi   # --keep, and everything came up
    if [ -n "$TW_PID" ] && kill -0 "$TW_PID" 2>/dev/null; then
        kill -TERM "$TW_PID"
        for _ in $(seq 100); do kill -0 "$TW_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$TW_PID" 2>/dev/null
    fi
    if [ -n "$LAB" ]; then
        [ -e "$LAB/lab/lab.state" ] && LAB_QUIET=1 lab_down "$LAB/lab"
        rm -rf "$LAB"
    fi
    exit "$rc"
}

start_lab() {
    step "The lab: the shop's workloads in network namespaces (scripts/netns-lab.sh up shop)"
    if [ "$(id -u)" -ne 0 ]; then
        echo "${red}The live part needs root (network namespaces, af_packet): sudo scripts/demo.sh --no-setup$plain"
        exit 1
    fi
    cat <<'NOTE'
Each workload is a network namespace on a veth of its own; the host-side ends are tagwall's ports
(net_af_packet).  tagwall is the VLAN-aware switch among them (forwarding: switch): every packet,
even between two tiers, crosses it; a router on the uplink trunk routes between the VLANs and to
two clients behind it: "internet" (198.19.7.7) and "admin" (198.19.200.10, in the admins cidr).
NOTE
    LAB=$(mktemp -d /tmp/tagwall-demo.XXXXXX)
    trap cleanup EXIT
    trap 'exit 130' INT TERM
    lab_up shop "$LAB/lab" || { echo "${red}could not build the lab$plain"; exit 1; }
    echo
    lab_info
}

start_tagwall() {
    step "tagwall --config $LAB_DIR/tagwall.yaml"
    sed 's/^/  | /' "$LAB_DIR/tagwall.yaml"
    # nohup: with --keep, tagwall outlives this script and its terminal.
    nohup "$TAGWALL" --config "$LAB_DIR/tagwall.yaml" </dev/null >"$LAB_DIR/tagwall.out" 2>&1 &
    TW_PID=$!
    for _ in $(seq 200); do
        if grep -q '^tagwall: ready' "$LAB_DIR/tagwall.out"; then
            grep '^tagwall: ready' "$LAB_DIR/tagwall.out"
            return 0
        fi
        kill -0 "$TW_PID" 2>/dev/null || break
        sleep 0.1
    done
    echo "${red}tagwall did not become ready; its output:$plain"
    tail -n 30 "$LAB_DIR/tagwall.out"
    kill -0 "$TW_PID" 2>/dev/null || TW_PID=""
    exit 1
}

# The first address of namespace NAME in the family of ADDR (the source the event log shows).
source_of() {
    local name=$1 addr=$2
    awk -v n="$name" -v six="$([[ $addr == *:* ]] && echo 1 || echo 0)" \
        '$1 == "addr" && $2 == n && (index($3, ":") > 0) == six { print $3; exit }' "$LAB_DIR/lab.state"
}

# One line from the first matching event: "reject by admin-no-db", "drop (default)", "drop (spoofed)".
event_word() {
    "$_LAB_PY" -c '
import json, sys
line = sys.stdin.readline()
if not line.strip():
    sys.exit(0)
e = json.loads(line)
verdict, rule, reason = e.get("verdict"), e.get("rule"), e.get("reason")
print(f"{verdict} by {rule}" if rule else f"{verdict} ({reason})")'
}

flows_ok=0
flows_bad=0
# flow FROM TO ADDR SERVICE PROBE PORT EXPECT RULE [SRC]: one row of the table.
#   PROBE: transfer (2 MB, checked) | connect | ping;  EXPECT: allow | drop | reject
flow() {
    local from=$1 to=$2 addr=$3 service=$4 probe=$5 port=$6 expect=$7 rule=$8 src=${9:-} got want outcome
    # The events tagwall logs for this flow (drops and rejects always; allows when the rule says log):
    # only those written after this probe starts count (an earlier row may have logged the same flow).
    local filter=(src="${src:-$(source_of "$from" "$addr")}" dst="$addr") event="" tries=20 before
    if [ "$probe" = ping ]; then filter+=('proto=icmp|icmpv6'); else filter+=(proto=tcp dport="$port"); fi
    before=$(lab_events --wait 0 "${filter[@]}" | wc -l) || true
    case $probe in
        transfer) got=$(lab_tcp_transfer "$from" "$to" "$addr" "$port") || true ;;
        connect) got=$(lab_tcp_connect "$from" "$addr" "$port" "$src") || true ;;
        ping) got=$(lab_ping "$from" "$addr") || true ;;
    esac
    got=${got%%:*}
    case $expect/$probe in
        allow/transfer) want=ok ;;
        allow/connect) want=connected ;;
        allow/ping) want=reply ;;
        drop/*) want=timeout ;;
        reject/*) want=refused ;;
    esac
    case $got in
        ok) outcome="connected, 2 MB OK" ;;
        connected) outcome="connected" ;;
        reply) outcome="echo reply" ;;
        refused) outcome="refused (RST)" ;;
        timeout) outcome="timed out" ;;
        *) outcome=$got ;;
    esac
    [ "$got" = "$want" ] && [ "$expect" = allow ] && tries=5   # an allow is logged only with log: true
    for _ in $(seq "$tries"); do
        event=$(lab_events --wait 0 "${filter[@]}" | tail -n +"$((before + 1))" | head -n 1 | event_word) || true
        [ -n "$event" ] && break
        sleep 0.1
    done
    if [ -z "$event" ]; then
        event="-"
        [ "$got" = "$want" ] && [ "$expect" = allow ] && event="(allow not logged)"
    fi
    local mark="ok" from_label=$from
    [ -n "$src" ] && from_label="$from as $src"
    if [ "$got" != "$want" ]; then mark="${red}UNEXPECTED$plain"; flows_bad=$((flows_bad + 1)); else flows_ok=$((flows_ok + 1)); fi
    printf '  %-31s %-21s %-20s %-19s %-22s %s\n' "$from_label -> $to" "$service" "$expect ($rule)" "$outcome" "$event" "$mark"
}

traffic() {
    step "Real connections through tagwall"
    cat <<'NOTE'
Each row is a real connection (a 2 MB transfer checked byte for byte, a TCP connect, or a ping) from
one namespace to another.  A server listens on every port below, so "refused" can only come from a
reject rule and "timed out" only from a drop.  "event log" is what tagwall wrote to its JSON event
log for it (drops and rejects always; allows when the rule has log: true).
NOTE
    echo
    printf '  %s%-31s %-21s %-20s %-19s %-22s %s%s\n' "$bold" "from -> to" "service" "expected" "outcome" \
        "event log" "" "$plain"
    # Customer traffic: one hop per tier, nothing skips a tier.
    flow internet web-1 198.18.10.11 "https tcp/443" transfer 443 allow web-in
    flow internet app-1 198.18.20.21 "shop-api tcp/8443" connect 8443 drop "no rule"
    flow web-1 app-1 198.18.20.21 "shop-api tcp/8443" connect 8443 allow web-app
    flow web-1 db-1 198.18.30.31 "postgres tcp/5432" connect 5432 drop "no rule"
    flow app-1 db-1 198.18.30.31 "postgres tcp/5432" transfer 5432 allow app-db
    # Operations: the exception before the general rule.
    flow admin db-1 198.18.30.31 "postgres tcp/5432" connect 5432 reject admin-no-db
    flow admin web-1 198.18.10.11 "ssh tcp/22" connect 22 allow admin-ops
    # Monitoring, and ICMP from outside.
    flow prometheus web-1 198.18.10.11 "ping" ping - allow mon-ping
    flow internet web-1 198.18.10.11 "ping" ping - drop "no rule"
    # IPv6 is first class.
    flow internet web-1 2001:db8:10::11 "https tcp/443 (IPv6)" transfer 443 allow web-in
    # SpoofGuard: web-1 takes an address bound to no endpoint.  (First a connection from its own
    # address, so that its ARP entry for the gateway is fresh and the spoofed SYN itself meets tagwall.)
    lab_exec web-1 ip addr add 198.18.10.99/24 dev eth0.10
    lab_tcp_connect web-1 198.18.20.21 8443 >/dev/null || true
    flow web-1 app-1 198.18.20.21 "shop-api tcp/8443" connect 8443 drop spoofed 198.18.10.99
    echo
    if [ "$flows_bad" -eq 0 ]; then
        echo "All $flows_ok connections went as the policy says."
    else
        echo "${red}$flows_bad of $((flows_ok + flows_bad)) connections did not go as the policy says.$plain"
    fi
}

# Zero trust, continuously: the policy's view of a packet, then a workload re-tagged while tagwall runs.
live_changes() {
    local ctl=${TAGWALL%/tagwall}/tagwallctl sock=$LAB_DIR/tagwall.sock
    step "tagwallctl: ask the running appliance, and change a workload's tags while it runs"
    echo "\$ tagwallctl trace outside 198.19.7.7 198.18.10.11 tcp 40000 443      # which rule decides, and why"
    "$ctl" --socket "$sock" trace outside 198.19.7.7 198.18.10.11 tcp 40000 443 | sed 's/^/  /' || true
    echo
    echo "\$ tagwallctl endpoint tag web-1 tier=quarantine    # web-1 leaves group shop-web: a new policy generation"
    "$ctl" --socket "$sock" endpoint tag web-1 tier=quarantine | sed 's/^/  /' || true
    flow internet web-1 198.18.10.11 "https tcp/443" connect 443 drop quarantined
    echo "\$ tagwallctl endpoint tag web-1 tier=web           # and back"
    "$ctl" --socket "$sock" endpoint tag web-1 tier=web | sed 's/^/  /' || true
    flow internet web-1 198.18.10.11 "https tcp/443" connect 443 allow web-in
    echo
    echo "\$ tagwallctl rules"
    "$ctl" --socket "$sock" rules | sed 's/^/  /' || true
}

stop_tagwall() {
    step "SIGTERM: tagwall stops and prints its counters"
    local rc=0
    kill -TERM "$TW_PID"
    for _ in $(seq 150); do kill -0 "$TW_PID" 2>/dev/null || break; sleep 0.1; done
    wait "$TW_PID" || rc=$?
    TW_PID=""
    sed -n '/^tagwall: ready/,$p' "$LAB_DIR/tagwall.out" | tail -n +2
    echo "(tagwall exit status $rc)"
    echo
    echo "The event log, one JSON object per line ($(wc -l <"$LAB_DIR/events.jsonl" 2>/dev/null || echo 0) events), e.g. the reject:"
    lab_events --wait 0 verdict=reject | head -n 1 | sed 's/^/  /'
}

keep_running() {
    step "Still running (--keep)"
    local lab=$LAB_DIR self=scripts/netns-lab.sh
    cat <<KEEP
tagwall runs as pid $TW_PID (output: $lab/tagwall.out; events: tail -f $lab/events.jsonl).
Try:
  $self tcp-connect $lab internet 198.18.10.11 443
  $self tcp-transfer $lab app-1 db-1 198.18.30.31 5432
  $self exec $lab web-1 bash           # a shell on web-1
  $self info $lab
Stop it all:
  kill -TERM $TW_PID; $self down $lab; rm -rf $LAB
KEEP
}

outro() {
    step "Next"
    cat <<NEXT
  - Edit $POLICY (for example, move rule admin-no-db below admin-ops) and run
      ${TAGWALL#"$ROOT"/} check $POLICY
    to see the analysis name the rule that now shadows it; scripts/demo.sh --keep leaves the lab and
    tagwall running so that you can try connections of your own.
  - The policy language: docs/policy-language.md.  The appliance config: conf/tagwall.yaml.
  - The lab: scripts/netns-lab.sh --help.  The end-to-end tests that check the same flows: tests/e2e/.
NEXT
}

intro
setup_and_build
show_policy
check_policy
check_broken_policy
start_lab
start_tagwall
traffic
live_changes
if [ "$keep" = 1 ]; then
    keep_running
else
    stop_tagwall
    outro
fi
[ "$flows_bad" -eq 0 ]
