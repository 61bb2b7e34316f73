#!/usr/bin/env bash
# The namespace lab: network namespaces joined by veth pairs whose host-side ends (in the root namespace)
# become tagwall's net_af_packet ports, so that real TCP, UDP and ICMP between real network stacks cross
# tagwall.  Used by the end-to-end tests (tests/e2e/) and by scripts/demo.sh.
#
# Run it:      scripts/netns-lab.sh --help
# Source it:   . scripts/netns-lab.sh; lab_up shop "$dir"; lab_tcp_connect internet 198.18.10.11 443; lab_down "$dir"
#
# Two topologies (addresses only from 198.18.0.0/15 and 2001:db8::/32, the benchmarking and documentation
# ranges, so that the lab can never collide with a real network):
#
#   wire   client ── veth ──[ inside | tagwall | outside ]── veth ── server       one subnet, untagged
#          198.18.0.1, 2001:db8:1::1                         198.18.0.2, 2001:db8:1::2
#          policy: tests/e2e/wire-policy.yaml (copied into DIR); the client side is the uplink
#
#   shop   the three-tier shop of conf/demo/policy.yaml, tagwall in switch mode:
#            web-1 (VLAN 10) ──┐
#            app-1 (VLAN 20) ──┤  one workload port each,
#            db-1  (VLAN 30) ──┼─[ tagwall ]── uplink (trunk: untagged + 10/20/30/40) ── router ─┬─ internet 198.19.7.7
#       prometheus (VLAN 40) ──┘                                                                   └─ admin 198.19.200.10
#          Each workload sends 802.1Q-tagged frames from its bound MAC; the router routes between the
#          VLANs (gateways 198.18.V.1, 2001:db8:V::1) and to the two clients, which sit behind it on plain
#          veths (not through tagwall).  So internet->web-1 crosses tagwall once (on VLAN 10), web-1->app-1
#          twice (VLAN 10 to the router, VLAN 20 from it).
#
# Everything a lab creates is recorded in DIR/lab.state BEFORE it is created, and every name carries the
# lab's own prefix (tw + 4 random characters; host interface names stay within 15 characters), so `down`
# removes exactly that lab, also after a failure halfway, and two labs never collide.
#
# VLANs: the L3 interface of a workload is a kernel 802.1Q subinterface (eth0.10) when the kernel has
# 8021q.  Some kernels (minimal VM kernels) have neither 8021q nor act_vlan nor bridge VLAN filtering;
# then a tap device named the same (eth0.10) carries the addresses and a small userspace shim (in the
# namespace) pushes and pops the tag between it and eth0.  The frames on the wire are identical either way.
# LAB_VLAN=auto|kernel|shim forces one (default auto).
#
# Checksums: veths offload the TX checksum, and a frame that leaves through af_packet (tagwall) keeps the
# partial checksum, so TCP through the lab would fail silently.  Every namespace-side interface therefore
# runs with `ethtool -K IF tx off`.  IPv6 DAD is disabled in every namespace (tests must not wait on it),
# and the host-side ends are up, without addresses and without IPv6, so that the host sends nothing into
# the lab.
#
# Environment: LAB_VLAN (auto|kernel|shim), LAB_PREFIX (force the prefix: tw + 4 of [a-z0-9]),
#              LAB_CONNECT_TIMEOUT (seconds a probe waits for a connection or an answer, default 3),
#              LAB_QUIET=1 (no progress lines on stderr).

# shellcheck disable=SC2317  # functions are reached through the command dispatch at the bottom

_LAB_SELF=$(realpath "${BASH_SOURCE[0]}")
_LAB_ROOT=$(cd "$(dirname "$_LAB_SELF")/.." && pwd)
_LAB_PY=/usr/bin/python3         # Debian's python (what setup.sh installs), not a user's pyenv shim
LAB_CONNECT_TIMEOUT=${LAB_CONNECT_TIMEOUT:-3}
_LAB_XFER_BYTES=$((2 * 1024 * 1024))
LAB_DIR=${LAB_DIR:-}
LAB_PREFIX=${LAB_PREFIX:-}

lab_log() { [ "${LAB_QUIET:-0}" = 1 ] || printf 'netns-lab: %s\n' "$*" >&2; }
_lab_die() { printf 'netns-lab: error: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------------------------------------------
# State.  DIR/lab.state holds one record per line:
#   prefix P | topology T | vlan-mode kernel|shim
#   netns NAME                 (logical name; the namespace is P-NAME)
#   link IFNAME                (an interface in the root namespace: a host-side veth end, the stand-in bridge)
#   port NAME ROLE IFNAME N    (a tagwall port: its name, role, host-side interface, net_af_packetN)
#   addr NAME IP               (an address configured in namespace NAME; lets probes find the server)
#   pid PID NAME WHAT          (a process started in namespace NAME)
#   server tcp|udp NAME ADDR PORT PID

_lab_state() { printf '%s/lab.state' "$LAB_DIR"; }
_lab_record() { printf '%s\n' "$*" >>"$(_lab_state)"; }
# _lab_get KIND: the value(s) of single-field records of that kind.
_lab_get() { awk -v k="$1" '$1 == k { print $2 }' "$(_lab_state)"; }

# A prefix is "tw" + 4 of [a-z0-9]: `down` deletes every namespace and link that starts with it, so it
# must never be short or empty.
_lab_valid_prefix() { [[ $1 =~ ^tw[a-z0-9]{4}$ ]]; }

# lab_use DIR: points the probes and helpers at the lab in DIR.
lab_use() {
    local dir=$1
    [ -f "$dir/lab.state" ] || { printf 'netns-lab: error: no lab in %s (no lab.state)\n' "$dir" >&2; return 1; }
    LAB_DIR=$(cd "$dir" && pwd)
    LAB_PREFIX=$(_lab_get prefix)
    _lab_valid_prefix "$LAB_PREFIX" || { printf 'netns-lab: error: %s has a bad prefix\n' "$dir" >&2; return 1; }
}

_lab_need() {
    [ -n "$LAB_DIR" ] && [ -f "$LAB_DIR/lab.state" ] && return 0
    printf 'netns-lab: error: no lab in use (lab_up or lab_use DIR first)\n' >&2
    return 1
}

# The namespace behind a logical name (client, web-1 ...).
lab_ns() { printf '%s-%s' "$LAB_PREFIX" "$1"; }

# lab_exec NAME CMD...: runs CMD inside the lab's namespace NAME.
lab_exec() {
    local name=$1
    shift
    ip netns exec "$(lab_ns "$name")" "$@"
}

# ---------------------------------------------------------------------------------------------------
# Building blocks (run by `_up`, a child process under `set -euo pipefail`: any failure stops the build,
# and lab_up then tears down whatever the state file lists).

_lab_ns_sysctl() { ip netns exec "$(lab_ns "$1")" sysctl -qw "$2=$3" >/dev/null; }

# _lab_new_ns NAME: a namespace with lo up, no DAD, EUI-64 link-locals (the address SpoofGuard accepts
# for ND from a bound MAC).
_lab_new_ns() {
    local name=$1
    _lab_record netns "$name"
    ip netns add "$(lab_ns "$name")"
    lab_exec "$name" ip link set lo up
    local key
    for key in all default; do
        _lab_ns_sysctl "$name" "net/ipv6/conf/$key/accept_dad" 0
        _lab_ns_sysctl "$name" "net/ipv6/conf/$key/dad_transmits" 0
        _lab_ns_sysctl "$name" "net/ipv6/conf/$key/addr_gen_mode" 0
        _lab_ns_sysctl "$name" "net/ipv6/conf/$key/accept_ra" 0
    done
}

# _lab_tx_off NAME IF: see the header (checksums).  Devices whose TX checksum is already off and fixed
# (taps) make ethtool complain without harm.
_lab_tx_off() {
    lab_exec "$1" ethtool -K "$2" tx off >/dev/null 2>&1 ||
        lab_exec "$1" ethtool -k "$2" | grep -q '^tx-checksumming: off' ||
        _lab_die "ethtool -K $2 tx off failed in $(lab_ns "$1")"
}

# _lab_port PORT ROLE NAME SHORT MAC: a tagwall port.  A veth pair: the host-side end P-SHORT in the root
# namespace (tagwall's net_af_packet device), the other end eth0 in namespace NAME with the given MAC.
_lab_port_count=0
_lab_port() {
    local port=$1 role=$2 name=$3 short=$4 mac=$5
    local host="$LAB_PREFIX-$short"
    [ ${#host} -le 15 ] || _lab_die "interface name $host is longer than 15 characters"
    _lab_record link "$host"
    ip link add "$host" type veth peer name eth0 netns "$(lab_ns "$name")"
    # Before the link comes up, so that not one router solicitation or MLD report leaks into the lab.
    sysctl -qw "net/ipv6/conf/$host/disable_ipv6=1" >/dev/null
    sysctl -qw "net/ipv4/conf/$host/arp_ignore=8" >/dev/null   # never answer ARP for the host's addresses
    ip link set "$host" up
    lab_exec "$name" ip link set eth0 address "$mac"
    _lab_tx_off "$name" eth0
    lab_exec "$name" ip link set eth0 up
    _lab_record port "$port" "$role" "$host" "$_lab_port_count"
    _lab_port_count=$((_lab_port_count + 1))
}

# _lab_pair NAME_A IF_A NAME_B IF_B: a plain veth between two lab namespaces (router <-> client).
_lab_pair() {
    ip link add "$2" netns "$(lab_ns "$1")" type veth peer name "$4" netns "$(lab_ns "$3")"
    _lab_tx_off "$1" "$2"
    _lab_tx_off "$3" "$4"
    lab_exec "$1" ip link set "$2" up
    lab_exec "$3" ip link set "$4" up
}

# _lab_addr NAME IF CIDR...: addresses, IPv6 ones without DAD; each is recorded for the probes.
_lab_addr() {
    local name=$1 ifname=$2 cidr
    shift 2
    for cidr in "$@"; do
        case $cidr in
            *:*) lab_exec "$name" ip -6 addr add "$cidr" dev "$ifname" nodad ;;
            *) lab_exec "$name" ip addr add "$cidr" dev "$ifname" ;;
        esac
        _lab_record addr "$name" "${cidr%/*}"
    done
}

# _lab_bg NAME WHAT LOG CMD...: starts CMD in namespace NAME in the background, detached from the
# caller's shell (no job, no inherited stdout: a test that captures our output must not hang on it),
# records its PID and prints it.
_lab_bg() {
    local name=$1 what=$2 log=$3 pid
    shift 3
    pid=$( (ip netns exec "$(lab_ns "$name")" "$@" </dev/null >>"$log" 2>&1 & echo $!) )
    _lab_record pid "$pid" "$name" "$what"
    printf '%s' "$pid"
}

# VLAN mode, decided once per lab: kernel 802.1Q subinterfaces when the kernel can make one.
_lab_vlan_mode() {
    local mode=${LAB_VLAN:-auto}
    case $mode in
        kernel|shim) ;;
        auto)
            # Probe in a namespace of the lab (a veth pair inside it), so that nothing touches the host.
            mode=shim
            local ns
            ns=$(lab_ns router)
            if ip -n "$ns" link add vprobe0 type veth peer name vprobe1 2>/dev/null; then
                if ip -n "$ns" link add link vprobe0 name vprobe0.7 type vlan id 7 2>/dev/null; then mode=kernel; fi
                ip -n "$ns" link del vprobe0 2>/dev/null || true
            fi
            ;;
        *) _lab_die "LAB_VLAN must be auto, kernel or shim, not '$mode'" ;;
    esac
    printf '%s' "$mode"
}

# _lab_vlan_if NAME PARENT VID MAC: creates the L3 interface of VLAN VID (0: untagged) on PARENT and sets
# _lab_if to its name: PARENT.VID (PARENT itself for untagged in kernel mode, PARENT.untag in shim mode).
# In shim mode it is a persistent tap, which _lab_start_shim attaches; not a $(subshell): it keeps state.
_lab_shim_maps=()
_lab_vlan_if() {
    local name=$1 parent=$2 vid=$3 mac=$4 ifname
    if [ "$_lab_vlan" = kernel ]; then
        if [ "$vid" = 0 ]; then _lab_if=$parent; return; fi
        ifname=$parent.$vid
        lab_exec "$name" ip link add link "$parent" name "$ifname" type vlan id "$vid"
    else
        ifname=$parent.$vid
        [ "$vid" = 0 ] && ifname=$parent.untag
        lab_exec "$name" ip tuntap add dev "$ifname" mode tap
        lab_exec "$name" ip link set "$ifname" address "$mac"
        _lab_shim_maps+=("$vid=$ifname")
    fi
    _lab_tx_off "$name" "$ifname"
    lab_exec "$name" ip link set "$ifname" up
    _lab_if=$ifname
}

# _lab_start_shim NAME PARENT: in shim mode, starts the tag pusher/popper for the taps made since the
# last call and waits until they have carrier (addresses added before that would stay tentative).
_lab_start_shim() {
    local name=$1 parent=$2 map i
    if [ "$_lab_vlan" != shim ] || [ ${#_lab_shim_maps[@]} -eq 0 ]; then _lab_shim_maps=(); return; fi
    # The parent carries only tagged frames for the shim; its own IPv6 stack would send untagged ND/MLD.
    _lab_ns_sysctl "$name" "net/ipv6/conf/$parent/disable_ipv6" 1
    _lab_bg "$name" vlan-shim "$LAB_DIR/log/shim-$name.log" \
        "$_LAB_PY" "$LAB_DIR/lab-helper.py" vlan-shim "$parent" "${_lab_shim_maps[@]}" >/dev/null
    for map in "${_lab_shim_maps[@]}"; do
        for i in $(seq 50); do
            lab_exec "$name" ip -br link show "${map#*=}" | grep -q LOWER_UP && break
            [ "$i" = 50 ] && _lab_die "the VLAN shim in $(lab_ns "$name") did not attach ${map#*=} (see $LAB_DIR/log/shim-$name.log)"
            sleep 0.1
        done
    done
    _lab_shim_maps=()
}

# _lab_workload NAME PORT SHORT VID MAC IPV4/LEN IPV6/LEN: a workload of the shop on a port of its own,
# on VLAN VID, default routes via the router (.1 / ::1 of its subnet).
_lab_workload() {
    local name=$1 port=$2 short=$3 vid=$4 mac=$5 v4=$6 v6=$7 ifname
    _lab_new_ns "$name"
    _lab_port "$port" workload "$name" "$short" "$mac"
    _lab_vlan_if "$name" eth0 "$vid" "$mac"
    ifname=$_lab_if
    _lab_start_shim "$name" eth0
    # The untagged parent carries no addresses: only the VLAN's interface speaks IPv6.
    [ "$_lab_vlan" = kernel ] && _lab_ns_sysctl "$name" net/ipv6/conf/eth0/disable_ipv6 1
    _lab_addr "$name" "$ifname" "$v4" "$v6"
    lab_exec "$name" ip route add default via "${v4%.*/*}.1"
    lab_exec "$name" ip -6 route add default via "${v6%::*}::1"
}

# _lab_client NAME V4NET V6NET HOST: a client namespace behind the router on a /24 and a /64 of its own
# (router .1 / ::1, client .HOST / ::HOST).
_lab_client() {
    local name=$1 v4net=$2 v6net=$3 host=$4
    _lab_new_ns "$name"
    _lab_pair router "to-$name" "$name" eth0
    _lab_addr router "to-$name" "$v4net.1/24" "$v6net::1/64"
    _lab_addr "$name" eth0 "$v4net.$host/24" "$v6net::$host/64"
    lab_exec "$name" ip route add default via "$v4net.1"
    lab_exec "$name" ip -6 route add default via "$v6net::1"
}

# The addresses, MACs and VLANs of the shop are those of conf/demo/policy.yaml: a workload sends from
# its bound addresses and MAC, or SpoofGuard drops it.  Checked, so that an edit there fails here loudly.
_lab_expect_in_policy() {
    local policy=$1 value
    shift
    for value in "$@"; do
        grep -Fq -- "$value" "$policy" || _lab_die "$policy no longer mentions $value; update the shop in $_LAB_SELF"
    done
}

# ---------------------------------------------------------------------------------------------------
# Topologies

_lab_build_wire() {
    local policy=$LAB_DIR/policy.yaml
    cp "$_LAB_ROOT/tests/e2e/wire-policy.yaml" "$policy"
    # The MACs and addresses below are the endpoints' bindings in tests/e2e/wire-policy.yaml.
    _lab_expect_in_policy "$policy" 52:54:00:00:01:01 52:54:00:00:01:02 198.18.0.1 198.18.0.2 2001:db8:1::1 2001:db8:1::2
    _lab_new_ns client
    _lab_new_ns server
    # Port names follow the picture: the client side (inside) is the uplink, the server is the workload
    # that tagwall protects (its source addresses are checked).
    _lab_port inside uplink client in 52:54:00:00:01:01
    _lab_port outside workload server out 52:54:00:00:01:02
    _lab_addr client eth0 198.18.0.1/24 2001:db8:1::1/64
    _lab_addr server eth0 198.18.0.2/24 2001:db8:1::2/64
    _lab_write_config wire "$policy"
}

_lab_build_shop() {
    local policy=$_LAB_ROOT/conf/demo/policy.yaml vid
    _lab_expect_in_policy "$policy" \
        52:54:00:00:10:11 198.18.10.11 2001:db8:10::11 52:54:00:00:20:21 198.18.20.21 2001:db8:20::21 \
        52:54:00:00:30:31 198.18.30.31 2001:db8:30::31 52:54:00:00:40:41 198.18.40.41 2001:db8:40::41 \
        "vlan: 10" "vlan: 20" "vlan: 30" "vlan: 40" 198.19.200.0/24 2001:db8:ad::/48
    # The router first: it hosts the VLAN-mode probe.
    _lab_new_ns router
    _lab_vlan=$(_lab_vlan_mode)
    _lab_record vlan-mode "$_lab_vlan"
    lab_log "VLAN interfaces: $_lab_vlan"

    _lab_port uplink uplink router up 52:54:00:00:ff:01
    _lab_ns_sysctl router net/ipv4/ip_forward 1
    _lab_ns_sysctl router net/ipv6/conf/all/forwarding 1
    # A router on a stick: one L3 interface per VLAN on the trunk, all with the trunk's MAC (as 802.1Q
    # subinterfaces would have), plus the untagged outside segment.
    local -A gw_if
    for vid in 0 10 20 30 40; do
        _lab_vlan_if router eth0 "$vid" 52:54:00:00:ff:01
        gw_if[$vid]=$_lab_if
    done
    _lab_start_shim router eth0
    _lab_addr router "${gw_if[0]}" 198.18.0.1/24 2001:db8::1/64
    for vid in 10 20 30 40; do
        _lab_addr router "${gw_if[$vid]}" "198.18.$vid.1/24" "2001:db8:$vid::1/64"
    done

    _lab_workload web-1 web-1 web1 10 52:54:00:00:10:11 198.18.10.11/24 2001:db8:10::11/64
    _lab_workload app-1 app-1 app1 20 52:54:00:00:20:21 198.18.20.21/24 2001:db8:20::21/64
    _lab_workload db-1 db-1 db1 30 52:54:00:00:30:31 198.18.30.31/24 2001:db8:30::31/64
    _lab_workload prometheus prometheus prom 40 52:54:00:00:40:41 198.18.40.41/24 2001:db8:40::41/64

    # The clients behind the router, on plain veths (they never cross tagwall on the way to the router).
    # internet: external, outside the admins and resolvers cidrs.  admin: in the admins cidr (admin VPN).
    _lab_client internet 198.19.7 2001:db8:77 7
    _lab_client admin 198.19.200 2001:db8:ad 10
    _lab_write_config switch "$policy"
}

# _lab_write_config wire|switch POLICY: DIR/tagwall.yaml, SPEC §3.
_lab_write_config() {
    local forwarding=$1 policy=$2 config=$LAB_DIR/tagwall.yaml kind port role host n
    {
        printf '# tagwall appliance config for the %s lab in %s (SPEC §3).\n' "$(_lab_get topology)" "$LAB_DIR"
        printf '# Written by scripts/netns-lab.sh; the ports are the host-side ends of the lab'"'"'s veths.\n'
        printf 'dataplane:\n  workers: 1\n  hugepages: auto\n  ports:\n'
        while read -r kind port role host n; do
            [ "$kind" = port ] || continue
            printf '    - {name: %s, role: %s, devargs: "net_af_packet%s,iface=%s"}\n' "$port" "$role" "$n" "$host"
        done <"$(_lab_state)"
        printf '  forwarding: %s\n' "$forwarding"
        [ "$forwarding" = wire ] && printf '  pairs: [[inside, outside]]\n'
        printf '  flows: {capacity: 65536}\n'
        printf 'control:\n  socket: %s/tagwall.sock\n' "$LAB_DIR"
        printf 'log: {path: %s/events.jsonl}\n' "$LAB_DIR"
        printf 'policy: %s\n' "$policy"
    } >"$config"
}

# _up TOPOLOGY DIR (a child process, see lab_up).
_lab_cmd__up() {
    set -Eeuo pipefail
    # set -e stops at the first failure; say which command it was (ip's own message is often terse).
    trap 'printf "netns-lab: error: %s (line %s) failed\n" "$BASH_COMMAND" "$LINENO" >&2' ERR
    local topo=$1
    LAB_DIR=$2
    LAB_PREFIX=${LAB_PREFIX:-}
    if [ -z "$LAB_PREFIX" ]; then
        local tries=0 _lab_chars=abcdefghijklmnopqrstuvwxyz0123456789
        while :; do
            LAB_PREFIX=tw
            for _ in 1 2 3 4; do LAB_PREFIX+=${_lab_chars:RANDOM % 36:1}; done
            # Unused by any namespace or interface, so that `down` (which sweeps the prefix) is exact.
            if ! ip netns list | grep -q "^$LAB_PREFIX-" && ! ip -o link show | grep -q " $LAB_PREFIX-"; then break; fi
            tries=$((tries + 1))
            [ "$tries" -lt 20 ] || _lab_die "cannot find an unused prefix"
        done
    fi
    _lab_valid_prefix "$LAB_PREFIX" || _lab_die "LAB_PREFIX must be tw + 4 of [a-z0-9], not '$LAB_PREFIX'"
    printf 'prefix %s\ntopology %s\n' "$LAB_PREFIX" "$topo" >"$(_lab_state)"
    mkdir -p "$LAB_DIR/log"
    _lab_write_helper
    # The payload of lab_tcp_transfer: random, so that a stale or truncated copy cannot pass.
    head -c "$_LAB_XFER_BYTES" /dev/urandom >"$LAB_DIR/payload.bin"
    sha256sum "$LAB_DIR/payload.bin" | cut -d' ' -f1 >"$LAB_DIR/payload.sha256"
    _lab_vlan=kernel   # wire needs no VLANs
    case $topo in
        wire) _lab_build_wire ;;
        shop) _lab_build_shop ;;
    esac
    lab_log "$topo lab up in $LAB_DIR (prefix $LAB_PREFIX); tagwall config: $LAB_DIR/tagwall.yaml"
}

# lab_up wire|shop DIR: builds the lab; on failure removes what was built and returns 1.
lab_up() {
    local topo=$1 dir=$2
    case $topo in wire|shop) ;; *) printf 'netns-lab: error: unknown topology %s (wire or shop)\n' "$topo" >&2; return 2 ;; esac
    if [ "$(id -u)" -ne 0 ]; then printf 'netns-lab: error: the lab needs root (network namespaces)\n' >&2; return 1; fi
    mkdir -p "$dir" || return 1
    dir=$(cd "$dir" && pwd)
    # The paths go into YAML unquoted and into a unix socket address (at most 107 bytes).
    if [[ ! $dir =~ ^[A-Za-z0-9._/+-]+$ ]] || [ $((${#dir} + 12)) -gt 107 ]; then
        printf 'netns-lab: error: %s: use a short directory path of letters, digits and ._/+-\n' "$dir" >&2
        return 1
    fi
    if [ -f "$dir/lab.state" ]; then
        printf 'netns-lab: error: %s already holds a lab (netns-lab.sh down %s first)\n' "$dir" "$dir" >&2
        return 1
    fi
    if ! "$BASH" "$_LAB_SELF" _up "$topo" "$dir"; then
        lab_log "building the $topo lab failed; removing what was built"
        [ -f "$dir/lab.state" ] && lab_down "$dir"
        return 1
    fi
    lab_use "$dir"
}

# lab_down DIR: kills the lab's processes, deletes its links and namespaces, and checks that nothing with
# its prefix is left.  Idempotent; works on a half-built lab.
lab_down() {
    local dir=${1:-$LAB_DIR} state kind a b pid name ns left=0 rc=0
    state=$dir/lab.state
    [ -f "$state" ] || { lab_log "no lab in $dir (already down)"; return 0; }
    local prefix
    prefix=$(awk '$1 == "prefix" { print $2 }' "$state")
    if ! _lab_valid_prefix "$prefix"; then
        printf 'netns-lab: error: %s: bad prefix "%s"; not touching anything\n' "$state" "$prefix" >&2
        return 1
    fi
    # 1. Processes: every process inside the lab's namespaces (servers, shims, anything a test started),
    #    and the recorded ones if they are still in their namespace (a PID may have been reused).
    local pids=()
    while read -r kind a b _; do
        case $kind in
            netns) ns=$prefix-$a
                   ip netns list | grep -q "^$ns\( \|$\)" || continue
                   mapfile -t -O "${#pids[@]}" pids < <(ip netns pids "$ns" 2>/dev/null) ;;
            pid) [ "$(ip netns identify "$a" 2>/dev/null)" = "$prefix-$b" ] && pids+=("$a") ;;
        esac
    done <"$state"
    if [ ${#pids[@]} -gt 0 ]; then
        kill -TERM "${pids[@]}" 2>/dev/null || true
        for _ in $(seq 20); do
            left=0
            for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && left=1; done
            [ "$left" = 0 ] && break
            sleep 0.1
        done
        [ "$left" = 1 ] && kill -KILL "${pids[@]}" 2>/dev/null
    fi
    # 2. Root-namespace links (deleting a veth end deletes its peer), then the namespaces.
    while read -r kind a b _; do
        [ "$kind" = link ] && ip link show "$a" >/dev/null 2>&1 && { ip link del "$a" || rc=1; }
    done <"$state"
    while read -r kind a b _; do
        [ "$kind" = netns ] && ip netns list | grep -q "^$prefix-$a\( \|$\)" && { ip netns del "$prefix-$a" || rc=1; }
    done <"$state"
    # 3. Anything with the prefix that a crash kept from being recorded, then the check.
    for name in $(ip -o link show | awk -F': ' '{ sub(/@.*/, "", $2); print $2 }' | grep "^$prefix-"); do
        ip link del "$name" 2>/dev/null || true
    done
    for name in $(ip netns list | awk '{ print $1 }' | grep "^$prefix-"); do
        ip netns del "$name" 2>/dev/null || true
    done
    left=$( { ip netns list | grep "^$prefix-"; ip -o link show | grep " $prefix-"; } || true)
    if [ -n "$left" ]; then
        printf 'netns-lab: error: lab %s still has:\n%s\n' "$prefix" "$left" >&2
        return 1
    fi
    mv "$state" "$state.down"
    [ "$LAB_DIR" = "$dir" ] && LAB_DIR=""
    lab_log "lab $prefix in $dir is down"
    return "$rc"
}

# ---------------------------------------------------------------------------------------------------
# The stand-in: a Linux bridge joining the host-side ends, so that the lab can be checked without tagwall
# (everything reaches everything; for shop the bridge is VLAN-unaware, which passes the tags through).
# Never while tagwall runs on the same ports.

lab_bridge() {
    _lab_need || return 1
    local br=$LAB_PREFIX-br kind port role host n
    ip link show "$br" >/dev/null 2>&1 && { lab_log "$br already exists"; return 0; }
    # A bridge beside a running tagwall would forward every frame twice (once each), and the probes
    # would prove nothing: refuse while any packet socket (tagwall's af_packet ports) is bound to a port.
    local users
    users=$(ss -H -0 -a -p 2>/dev/null | grep -E "\*:$LAB_PREFIX-[a-z0-9]+ " || true)
    if [ -n "$users" ]; then
        printf 'netns-lab: error: the ports are in use (stop tagwall first):\n%s\n' "$users" >&2
        return 1
    fi
    _lab_record link "$br"
    ip link add "$br" type bridge stp_state 0 mcast_snooping 0 || return 1
    sysctl -qw "net/ipv6/conf/$br/disable_ipv6=1" >/dev/null
    while read -r kind port role host n; do
        [ "$kind" = port ] || continue
        ip link set "$host" master "$br" || return 1
    done <"$(_lab_state)"
    ip link set "$br" up || return 1
    lab_log "bridged the host-side ends with $br (stand-in for tagwall)"
}

lab_unbridge() {
    _lab_need || return 1
    local br=$LAB_PREFIX-br kind port role host n
    ip link show "$br" >/dev/null 2>&1 || { lab_log "no bridge $br"; return 0; }
    while read -r kind port role host n; do
        [ "$kind" = port ] && ip link set "$host" nomaster 2>/dev/null
    done <"$(_lab_state)"
    ip link del "$br" || return 1
    lab_log "removed the bridge $br"
}

# ---------------------------------------------------------------------------------------------------
# Servers (started on demand by the probes, one per address and port, killed by `down`).

# The namespace that holds ADDR, from the state file; empty when none does.
lab_owner() { awk -v ip="$1" '$1 == "addr" && $3 == ip { print $2; exit }' "$(_lab_state)"; }

_lab_socat_addr() {  # KIND(TCP|UDP) ADDR PORT SUFFIX -> socat listen address
    case $2 in
        *:*) printf '%s6-%s:%s,bind=[%s]' "$1" "$4" "$3" "$2" ;;
        *) printf '%s4-%s:%s,bind=%s' "$1" "$4" "$3" "$2" ;;
    esac
}

# _lab_serve tcp|udp NAME ADDR PORT: a TCP server that sends the 2 MB payload to every client, or a UDP
# echo server, on ADDR:PORT in namespace NAME.  Idempotent.  Returns 1 when it cannot listen.
_lab_serve() {
    local proto=$1 name=$2 addr=$3 port=$4 pid i
    pid=$(awk -v p="$proto" -v n="$name" -v a="$addr" -v o="$port" \
        '$1 == "server" && $2 == p && $3 == n && $4 == a && $5 == o { print $6 }' "$(_lab_state)" | tail -n 1)
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then return 0; fi
    local log=$LAB_DIR/log/server-$name-$proto-$port.log
    if [ "$proto" = tcp ]; then
        # -U: only server -> client; fork: each client gets the whole payload from a fresh open.
        pid=$(_lab_bg "$name" "tcp-server $addr $port" "$log" socat -U \
            "$(_lab_socat_addr TCP "$addr" "$port" LISTEN),reuseaddr,fork" "OPEN:$LAB_DIR/payload.bin")
    else
        pid=$(_lab_bg "$name" "udp-echo $addr $port" "$log" socat \
            "$(_lab_socat_addr UDP "$addr" "$port" RECVFROM),fork" PIPE)
    fi
    _lab_record server "$proto" "$name" "$addr" "$port" "$pid"
    local flags=-Hltn
    [ "$proto" = udp ] && flags=-Hlun
    for i in $(seq 40); do
        lab_exec "$name" ss "$flags" "sport = :$port" 2>/dev/null | grep -q . && return 0
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    printf 'netns-lab: error: the %s server on %s port %s in %s did not start (%s)\n' \
        "$proto" "$addr" "$port" "$name" "$log" >&2
    return 1
}

# lab_attacker NAME MAC: adds namespace NAME to a running wire lab, on the client's side of tagwall: a
# macvlan (bridge mode) on the client's eth0, moved into NAME as its eth0 with MAC, so that whatever
# NAME sends leaves through the client's veth into tagwall's `inside` port (role uplink, where SpoofGuard
# checks no source) with a MAC of its own, without the client's stack seeing it.  No addresses and no
# IPv6 (it sends nothing on its own): the tests forge raw frames from it (tests/e2e/forged-rst.sh,
# syn-flood.sh).  Recorded in the state, so lab_down removes it.  Returns 1 on failure.
lab_attacker() {
    _lab_need || return 1
    local name=$1 mac=$2 ns
    ns=$(lab_ns "$name")
    if [ "$(_lab_get topology)" != wire ]; then
        printf 'netns-lab: error: lab_attacker needs the wire topology\n' >&2
        return 1
    fi
    _lab_record netns "$name"
    ip netns add "$ns" && lab_exec "$name" ip link set lo up &&
        lab_exec client ip link add link eth0 name "$name" type macvlan mode bridge &&
        lab_exec client ip link set "$name" netns "$ns" &&
        lab_exec "$name" ip link set "$name" name eth0 &&
        lab_exec "$name" sysctl -qw net/ipv6/conf/eth0/disable_ipv6=1 >/dev/null &&
        lab_exec "$name" ip link set eth0 address "$mac" &&
        { lab_exec "$name" ethtool -K eth0 tx off >/dev/null 2>&1 || true; } &&
        lab_exec "$name" ip link set eth0 up ||
        { printf 'netns-lab: error: cannot add the attacker namespace %s (macvlan on the client eth0)\n' "$ns" >&2
          return 1; }
}

# ---------------------------------------------------------------------------------------------------
# Probes.  Each prints one line whose first word is the outcome, and exits with a status that says the
# same (so both `if lab_ping ...` and `case $(lab_tcp_connect ...)` work):
#   0 ok (connected / transferred / echoed / reply)   1 refused (a TCP RST, or ICMP port unreachable)
#   2 timeout (no answer: dropped)                     3 unreachable or another error
#   4 connected, but the transfer broke or the data differs

_lab_py() {  # NAME ARGS...: the helper, inside namespace NAME
    local name=$1
    shift
    lab_exec "$name" "$_LAB_PY" "$LAB_DIR/lab-helper.py" "$@"
}

# lab_tcp_transfer FROM TO ADDR PORT: a server in TO on ADDR:PORT sends 2 MB of random bytes; FROM
# connects and checks the bytes (length and sha256).  "ok: 2097152 bytes, sha256 matches".
lab_tcp_transfer() {
    _lab_need || return 3
    local from=$1 to=$2 addr=$3 port=$4
    _lab_serve tcp "$to" "$addr" "$port" || { echo "error: no server"; return 3; }
    _lab_py "$from" fetch "$addr" "$port" "$LAB_CONNECT_TIMEOUT" "$(cat "$LAB_DIR/payload.sha256")" "$_LAB_XFER_BYTES"
}

# lab_tcp_connect FROM ADDR PORT [SRC]: "connected", "refused" or "timeout" (or "unreachable").  When ADDR
# is a lab address, a server listens there first: so "refused" can only be a reject on the way (the
# server itself would accept), and "timeout" a drop.  SRC: the source address to bind (spoofing tests).
lab_tcp_connect() {
    _lab_need || return 3
    local from=$1 addr=$2 port=$3 src=${4:-} owner
    owner=$(lab_owner "$addr")
    if [ -n "$owner" ]; then _lab_serve tcp "$owner" "$addr" "$port" || { echo "error: no server"; return 3; }; fi
    _lab_py "$from" connect "$addr" "$port" "$LAB_CONNECT_TIMEOUT" "$src"
}

# lab_udp_echo FROM TO ADDR PORT: an echo server in TO; FROM sends a random token (retrying within the
# timeout) and expects it back.  "echoed", "timeout" or "refused".
lab_udp_echo() {
    _lab_need || return 3
    local from=$1 to=$2 addr=$3 port=$4
    _lab_serve udp "$to" "$addr" "$port" || { echo "error: no server"; return 3; }
    _lab_py "$from" udp "$addr" "$port" "$LAB_CONNECT_TIMEOUT"
}

# lab_ping FROM ADDR: ICMP or ICMPv6 echo (by the address).  "reply" or "timeout".
lab_ping() {
    _lab_need || return 3
    local from=$1 addr=$2
    if lab_exec "$from" ping -n -q -c 1 -W 1 -w "$LAB_CONNECT_TIMEOUT" "$addr" >/dev/null 2>&1; then
        echo reply
        return 0
    fi
    echo timeout
    return 2
}

# lab_events [--wait SECONDS] KEY=VALUE...: prints the events of DIR/events.jsonl (tagwall's log) whose
# fields all match (VALUE may list alternatives: reason=default|rule; null matches a JSON null).  Waits up
# to SECONDS (default 3; the daemon writes the log asynchronously) for a first match.  Exit 0 when one
# matched, 1 otherwise.
lab_events() {
    _lab_need || return 3
    local wait=3
    if [ "${1:-}" = --wait ]; then wait=$2; shift 2; fi
    "$_LAB_PY" "$LAB_DIR/lab-helper.py" events "$LAB_DIR/events.jsonl" "$wait" "$@"
}

# lab_info: what the lab is, and how to poke at it.
lab_info() {
    _lab_need || return 1
    local state
    state=$(cat "$(_lab_state)")
    printf 'lab %s: %s topology in %s (VLAN interfaces: %s)\n' "$LAB_PREFIX" "$(_lab_get topology)" "$LAB_DIR" \
        "$(_lab_get vlan-mode | grep . || echo none)"
    printf '  tagwall config: %s/tagwall.yaml\n  event log:      %s/events.jsonl\n' "$LAB_DIR" "$LAB_DIR"
    awk '$1 == "port" { printf "  port %-11s %-9s %-12s (net_af_packet%s)\n", $2, $3, $4, $5 }' <<<"$state"
    awk -v p="$LAB_PREFIX" '
        $1 == "netns" { order[++n] = $2 }
        $1 == "addr" { addrs[$2] = addrs[$2] " " $3 }
        END { for (i = 1; i <= n; i++) printf "  namespace %-11s %s:%s\n", order[i], p "-" order[i], addrs[order[i]] }
    ' <<<"$state"
    printf '  a shell in a namespace: %s exec %s NAME bash\n' "${_LAB_SELF#"$PWD"/}" "$LAB_DIR"
}

# ---------------------------------------------------------------------------------------------------
# The helper (python3: socket-level outcomes that nc and socat do not report reliably, the VLAN shim,
# and JSON matching), written into DIR by `up`.

_lab_write_helper() {
    cat >"$LAB_DIR/lab-helper.py" <<'PYTHON'
"""Helper of scripts/netns-lab.sh; written into the lab directory by `up`.  Runs inside a namespace."""
import errno
import fcntl
import hashlib
import json
import os
import select
import socket
import struct
import sys
import time


def family(addr):
    return socket.AF_INET6 if ":" in addr else socket.AF_INET


def outcome(exc):
    """The probe's word and exit status for a failed connect/send."""
    if isinstance(exc, ConnectionRefusedError):
        return "refused", 1
    if isinstance(exc, TimeoutError):
        return "timeout", 2
    if exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
        return "unreachable", 3
    return f"error: {exc}", 3


def tcp_open(addr, port, timeout, src):
    s = socket.socket(family(addr), socket.SOCK_STREAM)
    s.settimeout(timeout)
    if src:
        s.bind((src, 0))
    s.connect((addr, port))
    return s


def cmd_connect(addr, port, timeout, src=""):
    try:
        s = tcp_open(addr, int(port), float(timeout), src)
    except OSError as e:
        word, rc = outcome(e)
        print(word)
        return rc
    s.close()
    print("connected")
    return 0


def cmd_fetch(addr, port, timeout, want_sha, want_len):
    try:
        s = tcp_open(addr, int(port), float(timeout), "")
    except OSError as e:
        word, rc = outcome(e)
        print(word)
        return rc
    h, n, deadline = hashlib.sha256(), 0, time.monotonic() + 30
    s.settimeout(5)
    try:
        while True:
            data = s.recv(1 << 16)
            if not data:
                break
            h.update(data)
            n += len(data)
            if time.monotonic() > deadline:
                raise TimeoutError("transfer took more than 30 s")
    except OSError as e:
        print(f"broken: connected, then {e or type(e).__name__} after {n} bytes")
        return 4
    finally:
        s.close()
    if n == int(want_len) and h.hexdigest() == want_sha:
        print(f"ok: {n} bytes, sha256 matches")
        return 0
    print(f"corrupt: {n} of {want_len} bytes, sha256 {'matches' if h.hexdigest() == want_sha else 'differs'}")
    return 4


def cmd_udp(addr, port, timeout):
    s = socket.socket(family(addr), socket.SOCK_DGRAM)
    s.connect((addr, int(port)))  # a connected socket reports ICMP port unreachable as ECONNREFUSED
    token = os.urandom(16).hex().encode()
    deadline = time.monotonic() + float(timeout)
    while (left := deadline - time.monotonic()) > 0:
        try:
            s.send(token)  # again every half second: the first may wait in an ARP/ND queue
            s.settimeout(min(0.5, left))
            while s.recv(2048) != token:
                pass
            print("echoed")
            return 0
        except TimeoutError:
            continue
        except OSError as e:
            word, rc = outcome(e)
            print(word)
            return rc
    print("timeout")
    return 2


def cmd_vlan_shim(parent, *maps):
    """Pushes and pops 802.1Q tags between PARENT and taps (VID=TAP, VID 0 = untagged), for kernels without
    8021q.  Frames from a tap leave PARENT tagged with its VID; frames arriving on PARENT go to the tap of
    their VID (the kernel hands the tag over out of band, in PACKET_AUXDATA); others are dropped."""
    SOL_PACKET, PACKET_AUXDATA, TP_STATUS_VLAN_VALID = 263, 8, 0x10
    TUNSETIFF, IFF_TAP, IFF_NO_PI = 0x400454CA, 0x0002, 0x1000
    raw = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    raw.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
    raw.bind((parent, 0))
    by_vid, by_fd = {}, {}
    for m in maps:
        vid, name = m.split("=", 1)
        fd = os.open("/dev/net/tun", os.O_RDWR)
        fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TAP | IFF_NO_PI))
        by_vid[int(vid)] = fd
        by_fd[fd] = int(vid)
    rfds = [raw.fileno(), *by_fd]
    while True:
        for fd in select.select(rfds, [], [])[0]:
            try:
                if fd in by_fd:
                    frame = os.read(fd, 65536)
                    vid = by_fd[fd]
                    if vid:
                        frame = frame[:12] + struct.pack("!HH", 0x8100, vid) + frame[12:]
                    raw.send(frame)
                    continue
                frame, anc, _, addr = raw.recvmsg(65536, socket.CMSG_SPACE(20))
                if addr[2] == socket.PACKET_OUTGOING:
                    continue  # our own transmissions
                vid = 0
                for level, kind, data in anc:
                    if level == SOL_PACKET and kind == PACKET_AUXDATA and len(data) >= 20:
                        status, _, _, _, _, tci, _ = struct.unpack("IIIHHHH", data[:20])
                        if status & TP_STATUS_VLAN_VALID:
                            vid = tci & 0xFFF
                if vid == 0 and frame[12:14] == b"\x81\x00":  # a tag left in band
                    vid = struct.unpack("!H", frame[14:16])[0] & 0xFFF
                    frame = frame[:12] + frame[16:]
                if vid in by_vid:
                    os.write(by_vid[vid], frame)
            except OSError as e:  # a full queue or a link going down: drop the frame, like a switch
                print(f"vlan-shim: {e}", file=sys.stderr)


def render(value):
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def cmd_events(path, wait, *filters):
    conds = []
    for f in filters:
        key, sep, value = f.partition("=")
        if not sep:
            print(f"lab-helper events: '{f}' is not KEY=VALUE", file=sys.stderr)
            return 2
        conds.append((key, value.split("|")))
    deadline = time.monotonic() + float(wait)
    while True:
        matches = []
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                lines = f.read().splitlines()
        except FileNotFoundError:
            lines = []
        for line in lines:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict) and all(render(event.get(k)) in alts for k, alts in conds):
                matches.append(line)
        if matches or time.monotonic() >= deadline:
            break
        time.sleep(0.2)
    try:
        for m in matches:
            print(m, flush=True)
    except BrokenPipeError:  # `lab_events ... | head -n 1`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0 if matches else 1


COMMANDS = {"connect": cmd_connect, "fetch": cmd_fetch, "udp": cmd_udp, "vlan-shim": cmd_vlan_shim,
            "events": cmd_events}

if __name__ == "__main__":
    sys.exit(COMMANDS[sys.argv[1]](*sys.argv[2:]))
PYTHON
}

# ---------------------------------------------------------------------------------------------------
# Command line

_lab_usage() {
    cat <<'USAGE'
usage: scripts/netns-lab.sh COMMAND ...        (as root)

A lab of network namespaces whose veths' host-side ends are tagwall's net_af_packet ports.
  up wire|shop DIR        build a lab; write DIR/tagwall.yaml (and DIR/policy.yaml for wire); record
                          everything in DIR/lab.state.  On failure, removes what it built.
  down DIR                kill the lab's processes, delete its links and namespaces (idempotent)
  info DIR                ports, namespaces, addresses
  bridge DIR              join the host-side ends with a Linux bridge: a stand-in for tagwall that
                          forwards everything (not while tagwall runs on the ports)
  unbridge DIR            remove that bridge
  exec DIR NAME CMD...    run CMD in the lab's namespace NAME (client, web-1, router ...)
  tcp-transfer DIR FROM TO ADDR PORT   2 MB from a server in TO to FROM, checked byte for byte
  tcp-connect DIR FROM ADDR PORT [SRC] connected | refused | timeout
  udp-echo DIR FROM TO ADDR PORT       echoed | refused | timeout
  ping DIR FROM ADDR                   reply | timeout
  events DIR [--wait S] KEY=VALUE...   tagwall events (DIR/events.jsonl) with these fields

  wire: client (198.18.0.1, 2001:db8:1::1) -- [inside (uplink) | tagwall | outside (workload)] -- server
        (198.18.0.2, 2001:db8:1::2); policy tests/e2e/wire-policy.yaml; forwarding: wire.
  shop: conf/demo/policy.yaml in switch mode: web-1 (VLAN 10), app-1 (20), db-1 (30), prometheus (40)
        on workload ports; a router on the uplink trunk; internet (198.19.7.7, 2001:db8:77::7) and
        admin (198.19.200.10, 2001:db8:ad::10) behind the router.
Probe exit status: 0 ok, 1 refused, 2 timeout, 3 unreachable/error, 4 transfer broken or corrupt.
Environment: LAB_VLAN=auto|kernel|shim, LAB_PREFIX, LAB_CONNECT_TIMEOUT (default 3), LAB_QUIET=1.
Sourced, it is a library: lab_up, lab_down, lab_use, lab_exec, lab_tcp_transfer, lab_tcp_connect,
lab_udp_echo, lab_ping, lab_events, lab_bridge, lab_unbridge, lab_info, lab_attacker.
USAGE
}

_lab_main() {
    set -euo pipefail
    local cmd=${1:-}
    [ $# -gt 0 ] && shift
    case $cmd in
        -h|--help|help) _lab_usage; return 0 ;;
        _up) _lab_cmd__up "$@"; return ;;
        up) [ $# -eq 2 ] || { _lab_usage >&2; return 2; }
            # Interrupted halfway: remove what was built (lab_up itself cleans up after a failed step).
            trap 'trap - INT TERM; LAB_QUIET=0 lab_down "$2"; exit 130' INT TERM
            lab_up "$1" "$2" || return 1
            trap - INT TERM
            lab_info ;;
        down) [ $# -eq 1 ] || { _lab_usage >&2; return 2; }
              lab_down "$1" ;;
        info|bridge|unbridge)
              [ $# -eq 1 ] || { _lab_usage >&2; return 2; }
              lab_use "$1"
              "lab_$cmd" ;;
        exec|tcp-transfer|tcp-connect|udp-echo|ping|events)
              [ $# -ge 2 ] || { _lab_usage >&2; return 2; }
              lab_use "$1"
              shift
              local fn=lab_${cmd//-/_}
              "$fn" "$@" ;;
        "") _lab_usage >&2; return 2 ;;
        *) printf 'netns-lab: unknown command %s\n\n' "$cmd" >&2; _lab_usage >&2; return 2 ;;
    esac
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    _lab_main "$@"
fi
