#!/usr/bin/env bash
# The tagwall demo: a three-tier web shop (conf/demo/policy.yaml) behind the firewall.
#
# Today it shows the policy side: what `tagwall check` makes of the shop's policy (the segments, the
# endpoints and their tags, group membership computed from tags, the ordered rule table, and the
# analysis: no shadowed or redundant rule).  When the dataplane lands, the body below grows a lab of
# network namespaces (workloads on VLANs behind veths, tagwall inline on af_packet ports) and real
# traffic: allowed flows, denied ones with the rule that decided them, a live policy change.
#
# Environment: BUILD_DIR (default ./build), and everything scripts/setup.sh honours.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

BUILD_DIR=${BUILD_DIR:-build}
case $BUILD_DIR in /*) ;; *) BUILD_DIR=$ROOT/$BUILD_DIR ;; esac
export BUILD_DIR
TAGWALL=$BUILD_DIR/src/tools/tagwall
POLICY=conf/demo/policy.yaml

if [ -t 1 ]; then bold=$'\033[1m' plain=$'\033[0m'; else bold="" plain=""; fi
step() { printf '\n%s==> %s%s\n' "$bold" "$*" "$plain"; }

usage() {
    cat <<'USAGE'
usage: scripts/demo.sh [--no-setup]

Prepares the machine (scripts/setup.sh), builds tagwall, and walks through the demo policy
conf/demo/policy.yaml: a three-tier shop (web, app, db) plus monitoring and an admin VPN.
  --no-setup   skip scripts/setup.sh (the build directory must already be configured)
USAGE
}

do_setup=1
case ${1:-} in
    "") ;;
    --no-setup) do_setup=0 ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
esac

intro() {
    cat <<'INTRO'
tagwall demo: a three-tier shop behind a zero-trust firewall
============================================================
  internet --https--> web-1, web-2 --shop-api--> app-1, app-2 --postgres--> db-1
                      (VLAN 10, dmz)             (VLAN 20, app)            (VLAN 30, data)
  plus prometheus on the management VLAN (40) and on-call engineers on the admin VPN.

The policy never names an address in a rule: it says "tier: web may reach tier: app on shop-api".
Addresses are declared once per workload and bound to it (anti-spoofing).  Everything not allowed
is dropped.  This demo shows how tagwall reads and checks that policy; real traffic through network
namespaces arrives with the dataplane.
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

outro() {
    step "Next"
    cat <<NEXT
  - Edit $POLICY (for example, move rule admin-no-db below admin-ops) and run
      ${TAGWALL#"$ROOT"/} check $POLICY
    to see the analysis name the rule that now shadows it.
  - The policy language: docs/policy-language.md.  The appliance config: conf/tagwall.yaml.
NEXT
}

intro
setup_and_build
show_policy
check_policy
check_broken_policy
outro
