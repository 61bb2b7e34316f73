#!/usr/bin/env bash
# The three-tier shop of conf/demo/policy.yaml with tagwall as the VLAN-aware switch of its ports
# (forwarding: switch): web-1, app-1, db-1 and prometheus on workload ports of their own (VLANs 10, 20,
# 30, 40), a router on the uplink trunk, and two clients behind the router: `internet` (198.19.7.7) and
# `admin` (198.19.200.10, the policy's admin VPN).  Traffic between two tiers crosses tagwall twice
# (into the router on one VLAN, out on another); every hop is checked against the policy.
set -euo pipefail
# shellcheck source=tests/e2e/lib.bash
. "$(dirname "$0")/lib.bash"

WEB=198.18.10.11
APP=198.18.20.21
DB=198.18.30.31
INTERNET=198.19.7.7
ADMIN=198.19.200.10
SPOOF=198.18.10.99   # in web-1's subnet, bound to no endpoint

e2e_setup shop
tw_start

# Customer traffic: one hop per tier, nothing skips a tier.
expect_transfer internet web-1 "$WEB" 443          # web-in
expect_tcp internet "$APP" 8443 timeout            # no rule lets the internet reach the app tier
expect_tcp web-1 "$APP" 8443 connected             # web-app
expect_tcp web-1 "$DB" 5432 timeout                # no rule: the web tier never talks to the database
expect_transfer app-1 db-1 "$DB" 5432              # app-db
# Operations.
expect_tcp admin "$DB" 5432 refused                # admin-no-db: reject, before admin-ops
expect_tcp admin "$WEB" 22 connected               # admin-ops
# Monitoring, and ICMP from outside.
expect_ping prometheus "$WEB" reply                # mon-ping
expect_ping internet "$WEB" timeout                # default drop
# IPv6 is first class.
expect_transfer internet web-1 2001:db8:10::11 443 # web-in

# SpoofGuard: web-1 adds an address bound to no endpoint and connects from it.  A connection from its
# own address first, so that the gateway's ARP entry is fresh and the spoofed SYN itself meets tagwall.
lab_exec web-1 ip addr add "$SPOOF/24" dev eth0.10 || e2e_abort "cannot add $SPOOF to web-1"
expect_tcp web-1 "$APP" 8443 connected
expect_tcp web-1 "$APP" 8443 timeout "$SPOOF"

expect_event "internet -> app-1 tcp/8443 dropped by the default" \
    verdict=drop reason=default src="$INTERNET" dst="$APP" dport=8443 dst_endpoint=app-1
expect_event "web-1 -> db-1 tcp/5432 dropped by the default" \
    verdict=drop reason=default src="$WEB" dst="$DB" dport=5432 src_endpoint=web-1 dst_endpoint=db-1
expect_event "app-1 -> db-1 allowed by app-db (log: true)" \
    verdict=allow rule=app-db src="$APP" dst="$DB" dport=5432 src_endpoint=app-1 dst_endpoint=db-1
expect_event "admin -> db-1 rejected by admin-no-db" \
    verdict=reject rule=admin-no-db src="$ADMIN" dst="$DB" dport=5432 'src_endpoint=null' dst_endpoint=db-1
expect_event "admin -> web-1 ssh allowed by admin-ops (log: true)" \
    verdict=allow rule=admin-ops src="$ADMIN" dst="$WEB" dport=22
expect_event "internet -> web-1 ping dropped" verdict=drop src="$INTERNET" dst="$WEB" 'proto=icmp'
expect_event "web-1's unbound source $SPOOF dropped as spoofed" verdict=drop reason=spoofed src="$SPOOF"

tw_stop
expect_summary 'admin-no-db' "rule hits"
expect_summary 'spoofed' "the per-reason counters"
e2e_finish
