#!/usr/bin/env bash
# The real-I/O replay benchmark (issue 7): a generator process offers traffic into a device under test
# over net_memif, the device forwards it back to the generator, which counts what really came back.
# Devices (peers), each on the same CPUs, with the same traffic from the same generator:
#   testpmd  dpdk-testpmd in io forwarding: no firewall at all, the ceiling of the harness
#   tagwall  `tagwall --config` in wire mode on a scripts/gen-policy.py policy (about 1k / 10k rules)
#   ovs      Open vSwitch with DPDK (ovs-vswitchd-dpdk), the same policy as an OpenFlow conntrack
#            pipeline (scripts/ovs-flows.py: ct, +new commit for allowed tuples, +est/+rel pass, else
#            drop, as OpenStack security groups do)
# Mixes (tagwall-bench generate --help): established (64-byte ACKs of --flows open connections),
# imix (the same connections, 7:4:1 of 64/594/1518-byte frames), new-conn (connections per second:
# SYN, SYN-ACK, ACK, RST each answered once it came through); then the concurrent-connection sweep
# (established at growing flow counts: how many live flows before anything degrades).  Each figure is
# an RFC 2544 search: the highest offered rate with zero loss over --trial-seconds.
# Scaling: every run is repeated for each worker count in --workers; W workers get W wire pairs (a
# pair per worker, as tagwall plans queues without RSS), the first W of --dut-cpus, and the generator
# all of --gen-cpus (at most one per pair).  Writes docs/performance.md, docs/perf/replay.json and
# docs/perf/replay-*.png (scripts/replay-report.py), unless --smoke.
# --smoke: a few seconds, no report: testpmd and tagwall at a low fixed rate must forward every frame
# offered (established and new-conn), and tagwall must drop every frame of the denied mix and count
# each as a drop by the policy's default (tagwallctl stats); exit 1 when any check fails.
# Exit status: 0 ran (whatever it measured) / smoke passed, 1 failed, 2 usage.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() {
    cat <<'EOF'
usage: scripts/bench-replay.sh [options]

  --gen-cpus LIST      the generator's CPUs (default: the first CPU this script may use)
  --dut-cpus LIST      the device's CPUs, one per worker (default: the second CPU)
  --workers LIST       worker counts to run, comma-separated (default 1), e.g. 1,2,4,8,14 on 16 cores
  --duts LIST          testpmd,tagwall,ovs (default: all three)
  --rules LIST         policy sizes: gen-policy.py --apps values (default 333,3333: 1002 and 10002 rules)
  --mixes LIST         established,imix,new-conn (default: all three)
  --flows N            established/imix: open connections (default 100000)
  --capacity LIST      concurrent-connection sweep, flow counts (default 10000,100000,1000000; '' skips)
  --flow-capacity N    tagwall flows.capacity and OVS ct maxconns (default 4194304)
  --trial-seconds S    sending time of each trial (default 2; RFC 2544 says 60)
  --resolution F       search precision (default 0.02)
  --loss-tolerance F   fraction of offered frames a "zero-loss" trial may lose (default 0: none;
                       RFC 2544 allows none - a tolerance is for shared, noisy machines, and is reported)
  --smoke              the quick check described above (tests/cli/bench-replay-smoke.sh), no report
  --out-dir DIR        where performance.md goes (default docs; its figures go to DIR/perf)
  --no-build           do not run ninja first
  -h, --help           this text
environment: BUILD_DIR (default build; quote figures from meson setup DIR --buildtype=release -Db_lto=true), JOBS (ninja -j, default 2)
example (this 2-core VM): scripts/bench-replay.sh --gen-cpus 0 --dut-cpus 1
example (16 cores):       scripts/bench-replay.sh --gen-cpus 0,1 --dut-cpus 2-15 --workers 1,2,4,8,14
EOF
}

BUILD_DIR=${BUILD_DIR:-build}
OUT_DIR=docs
gen_cpus=""
dut_cpus=""
workers_list=1
duts_list=testpmd,tagwall,ovs
rules_list=333,3333
mixes_list=established,imix,new-conn
flows=100000
capacity_list=10000,100000,1000000
flow_capacity=4194304
trial_seconds=2
resolution=0.02
loss_tolerance=0
smoke=0
do_build=1
hugepages_gb=2

need_value() { if [ $# -lt 2 ]; then echo "bench-replay: $1 needs a value" >&2; exit 2; fi; }
while [ $# -gt 0 ]; do
    case $1 in
        -h|--help) usage; exit 0 ;;
        --gen-cpus) need_value "$@"; gen_cpus=$2; shift ;;
        --dut-cpus) need_value "$@"; dut_cpus=$2; shift ;;
        --workers) need_value "$@"; workers_list=$2; shift ;;
        --duts) need_value "$@"; duts_list=$2; shift ;;
        --rules) need_value "$@"; rules_list=$2; shift ;;
        --mixes) need_value "$@"; mixes_list=$2; shift ;;
        --flows) need_value "$@"; flows=$2; shift ;;
        --capacity) need_value "$@"; capacity_list=$2; shift ;;
        --flow-capacity) need_value "$@"; flow_capacity=$2; shift ;;
        --trial-seconds) need_value "$@"; trial_seconds=$2; shift ;;
        --resolution) need_value "$@"; resolution=$2; shift ;;
        --loss-tolerance) need_value "$@"; loss_tolerance=$2; shift ;;
        --smoke) smoke=1 ;;
        --out-dir) need_value "$@"; OUT_DIR=$2; shift ;;
        --no-build) do_build=0 ;;
        *) echo "bench-replay: unknown option $1" >&2; usage >&2; exit 2 ;;
    esac
    shift
done

# "0,2-4" -> "0 2 3 4"
expand_cpus() {
    local item out=() lo hi c
    IFS=, read -r -a items <<<"$1"
    for item in "${items[@]}"; do
        [[ $item =~ ^([0-9]+)(-([0-9]+))?$ ]] || { echo "bench-replay: '$1' is not a CPU list" >&2; exit 2; }
        lo=${BASH_REMATCH[1]}; hi=${BASH_REMATCH[3]:-$lo}
        for ((c = lo; c <= hi; c++)); do out+=("$c"); done
    done
    echo "${out[@]}"
}
# Defaults: the first CPU this script may use for the generator, the second for the device (--smoke on
# a single CPU: both on it; a functional check, nothing is timed).
read -r -a ALLOWED <<<"$(expand_cpus "$(taskset -pc $$ 2>/dev/null | sed 's/.*: //')")"
[ ${#ALLOWED[@]} -gt 0 ] || ALLOWED=(0)
[ -n "$gen_cpus" ] || gen_cpus=${ALLOWED[0]}
if [ -z "$dut_cpus" ]; then
    if [ ${#ALLOWED[@]} -gt 1 ]; then dut_cpus=${ALLOWED[1]}; elif [ "$smoke" = 1 ]; then dut_cpus=${ALLOWED[0]}; fi
fi
[ -n "$dut_cpus" ] || { echo "bench-replay: one CPU only: give --dut-cpus" >&2; exit 2; }
read -r -a GEN_CPUS <<<"$(expand_cpus "$gen_cpus")"
read -r -a DUT_CPUS <<<"$(expand_cpus "$dut_cpus")"
[ "$smoke" = 1 ] && [ "$gen_cpus" = "$dut_cpus" ] && GEN_CPUS=()  # shares the CPU: skip the overlap check
for c in "${GEN_CPUS[@]}"; do
    for d in "${DUT_CPUS[@]}"; do
        [ "$c" != "$d" ] || { echo "bench-replay: CPU $c is in both --gen-cpus and --dut-cpus" >&2; exit 2; }
    done
done
IFS=, read -r -a WORKERS <<<"$workers_list"
IFS=, read -r -a DUTS <<<"$duts_list"
IFS=, read -r -a RULES <<<"$rules_list"
IFS=, read -r -a MIXES <<<"$mixes_list"
IFS=, read -r -a CAPACITY <<<"$capacity_list"
for w in "${WORKERS[@]}"; do [[ $w =~ ^[1-9][0-9]*$ ]] || { echo "bench-replay: --workers: '$w'" >&2; exit 2; }; done
for d in "${DUTS[@]}"; do case $d in testpmd|tagwall|ovs) ;; *) echo "bench-replay: unknown device '$d'" >&2; exit 2 ;; esac; done
for m in "${MIXES[@]}"; do case $m in established|imix|new-conn) ;; *) echo "bench-replay: unknown mix '$m'" >&2; exit 2 ;; esac; done
for n in "${RULES[@]}" "${CAPACITY[@]}" "$flows" "$flow_capacity"; do
    [[ $n =~ ^[1-9][0-9]*$ ]] || { echo "bench-replay: '$n' is not a positive number" >&2; exit 2; }
done
[ ${#GEN_CPUS[@]} -gt 0 ] || read -r -a GEN_CPUS <<<"$(expand_cpus "$gen_cpus")"
[[ $trial_seconds =~ ^[0-9]+(\.[0-9]+)?$ ]] || { echo "bench-replay: --trial-seconds '$trial_seconds'" >&2; exit 2; }

say() { printf 'bench-replay: %s\n' "$*" >&2; }

# ---------------------------------------------------------------------------------------------------
# Temporary directory, hugepages, and every process this script starts: all undone on exit.

# shellcheck source=scripts/bench-lib.bash
. scripts/bench-lib.bash
bench_begin bench-replay
DUT_PIDS=()
DUT_PREFIXES=()
GEN_PID=""
replay_cleanup() {
    if [ -n "$GEN_PID" ] && kill -0 "$GEN_PID" 2>/dev/null; then kill -KILL "$GEN_PID" 2>/dev/null || true; fi
    rm -rf "/var/run/dpdk/tagwall-gen-$$" 2>/dev/null || true
    stop_dut
    _bench_cleanup
}
trap replay_cleanup EXIT

# ---------------------------------------------------------------------------------------------------
# Tools.

if [ "$smoke" = 1 ]; then
    DUTS=(testpmd tagwall)
    RULES=(3)
    WORKERS=(1)
fi
want_ovs=0
for d in "${DUTS[@]}"; do [ "$d" = ovs ] && want_ovs=1; done
OVS_VSWITCHD=/usr/lib/openvswitch-switch-dpdk/ovs-vswitchd-dpdk
missing=()
command -v dpdk-testpmd >/dev/null || missing+=(dpdk-dev)
if [ "$want_ovs" = 1 ] && [ ! -x "$OVS_VSWITCHD" ]; then missing+=(openvswitch-switch-dpdk); fi
if [ "$smoke" = 0 ] && ! /usr/bin/python3 -c 'import matplotlib' 2>/dev/null; then missing+=(python3-matplotlib); fi
if [ "$want_ovs" = 1 ] && ! /usr/bin/python3 -c 'import yaml' 2>/dev/null; then missing+=(python3-yaml); fi
if [ ${#missing[@]} -gt 0 ]; then
    say "installing ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

BENCH=$BUILD_DIR/src/tools/tagwall-bench
TAGWALL=$BUILD_DIR/src/tools/tagwall
TAGWALLCTL=$BUILD_DIR/src/tools/tagwallctl
if [ "$do_build" = 1 ] && [ -f "$BUILD_DIR/build.ninja" ]; then
    ninja -C "$BUILD_DIR" -j "${JOBS:-2}" src/tools/tagwall-bench src/tools/tagwall src/tools/tagwallctl >&2
fi
for exe in "$BENCH" "$TAGWALL" "$TAGWALLCTL"; do [ -x "$exe" ] || { say "$exe is not built"; exit 1; }; done
buildtype=$(build_kind "$BUILD_DIR")
[ "$smoke" = 1 ] || warn_unless_release_lto "$BUILD_DIR"

HUGEPAGES_SHORT_WARNING="the devices may fail to start"
raise_hugepages
MEMIF=$TMP/memif
mkdir -p "$MEMIF"

# ---------------------------------------------------------------------------------------------------
# Devices under test.  start_dut KIND WORKERS POLICY: W wire pairs w<k>/u<k> as memif servers in
# $MEMIF, on the first W of --dut-cpus; sets DUT_FLUSH (a command that empties its connection table)
# and DUT_STATS (a command that prints its counters as JSON, or nothing).

cpu_list() { local IFS=,; echo "$*"; }
cpu_mask() { local m=0 c; for c in "$@"; do m=$((m | (1 << c))); done; printf '0x%x' "$m"; }
memif_server() { echo "net_memif$1,role=server,socket=$MEMIF/$2.sock,socket-abstract=no"; }

wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...: polls COMMAND until it succeeds
    local limit=$1 what=$2 i
    shift 2
    for ((i = 0; i < limit * 10; i++)); do
        if "$@"; then return 0; fi
        sleep 0.1
    done
    say "timed out waiting for $what"
    return 1
}
sockets_ready() { local k; for ((k = 0; k < $1; k++)); do [ -S "$MEMIF/w$k.sock" ] && [ -S "$MEMIF/u$k.sock" ] || return 1; done; }

DUT_FLUSH=""
DUT_STATS=""
DUT_RX_QUEUES=1
DUT_ARGS=()
start_dut() {
    local kind=$1 w=$2 policy=$3 k
    DUT_ARGS=("$@")
    local cpus=("${DUT_CPUS[@]:0:$w}")
    rm -f "$MEMIF"/*.sock
    DUT_FLUSH=""
    DUT_STATS=""
    DUT_RX_QUEUES=1
    case $kind in
    testpmd)
        local prefix=tagwall-testpmd-$$ lcores="0@${cpus[0]}" vdevs=()
        for ((k = 0; k < w; k++)); do
            lcores+=",$((k + 1))@${cpus[$k]}"
            vdevs+=(--vdev "$(memif_server $((2 * k)) "w$k")" --vdev "$(memif_server $((2 * k + 1)) "u$k")")
        done
        # io forwarding, port topology "paired" (0<->1, 2<->3 ...): stream k's two ports on forwarding
        # core k.  The main lcore only prints statistics every 10 s.
        taskset -c "$(cpu_list "${cpus[@]}")" dpdk-testpmd --lcores "$lcores" --file-prefix="$prefix" --no-pci \
            --log-level=lib.eal:error "${vdevs[@]}" -- --forward-mode=io --nb-cores="$w" --rxq=1 --txq=1 \
            --total-num-mbufs=$((16384 + 4096 * w)) --stats-period=10 >"$TMP/testpmd.log" 2>&1 </dev/null &
        DUT_PIDS+=($!)
        DUT_PREFIXES+=("$prefix")
        ;;
    tagwall)
        {
            echo "dataplane:"
            echo "  workers: $w"
            echo "  ports:"
            for ((k = 0; k < w; k++)); do
                echo "    - {name: w$k, role: workload, devargs: \"$(memif_server $((2 * k)) "w$k")\"}"
                echo "    - {name: u$k, role: uplink, devargs: \"$(memif_server $((2 * k + 1)) "u$k")\"}"
            done
            echo "  forwarding: wire"
            printf '  pairs: ['
            for ((k = 0; k < w; k++)); do printf '%s[w%d, u%d]' "$([ $k -gt 0 ] && echo ', ')" "$k" "$k"; done
            echo "]"
            echo "  flows: {capacity: $flow_capacity}"
            echo "control: {socket: $TMP/tagwall.sock, socket_mode: \"0600\", allowed_gids: [0]}"
            echo "log: {path: $TMP/events.jsonl}"
            echo "policy: $policy"
        } >"$TMP/tagwall.yaml"
        taskset -c "$(cpu_list "${cpus[@]}")" "$TAGWALL" --config "$TMP/tagwall.yaml" >"$TMP/tagwall.log" 2>&1 </dev/null &
        DUT_PIDS+=($!)
        DUT_PREFIXES+=("tagwall-$!")
        wait_for 120 "tagwall to be ready" grep -qs "tagwall: ready" "$TMP/tagwall.log" || { cat "$TMP/tagwall.log" >&2; return 1; }
        DUT_FLUSH="$TAGWALLCTL --socket $TMP/tagwall.sock flows flush >/dev/null"
        DUT_STATS="$TAGWALLCTL --socket $TMP/tagwall.sock --json stats"
        ;;
    ovs)
        local dir=$TMP/ovs prefix=tagwall-ovs-$$ pinned=""
        rm -rf "$dir"
        mkdir -p "$dir"
        ovsdb-tool create "$dir/conf.db" /usr/share/openvswitch/vswitch.ovsschema
        ovsdb-server "$dir/conf.db" --remote="punix:$dir/db.sock" --pidfile="$dir/ovsdb-server.pid" \
            --unixctl="$dir/ovsdb-server.ctl" --log-file="$dir/ovsdb-server.log" -vconsole:off --detach --no-chdir
        DUT_PIDS+=("$(cat "$dir/ovsdb-server.pid")")
        local vsctl=(ovs-vsctl --db="unix:$dir/db.sock" --timeout=60)
        "${vsctl[@]}" --no-wait init
        # The main thread on the first DUT CPU, one PMD thread per worker CPU; everything else the
        # process starts (handlers, revalidators) is confined to the same CPUs by taskset.
        "${vsctl[@]}" --no-wait set Open_vSwitch . other_config:dpdk-init=true \
            "other_config:dpdk-lcore-mask=$(cpu_mask "${cpus[0]}")" "other_config:pmd-cpu-mask=$(cpu_mask "${cpus[@]}")" \
            other_config:dpdk-socket-mem=1024 "other_config:dpdk-extra=--file-prefix=$prefix --no-pci"
        OVS_RUNDIR=$dir OVS_DBDIR=$dir OVS_LOGDIR=$dir taskset -c "$(cpu_list "${cpus[@]}")" "$OVS_VSWITCHD" \
            "unix:$dir/db.sock" --pidfile="$dir/ovs-vswitchd.pid" --unixctl="$dir/ovs-vswitchd.ctl" \
            --log-file="$dir/ovs-vswitchd.log" -vconsole:off --detach --no-chdir
        DUT_PIDS+=("$(cat "$dir/ovs-vswitchd.pid")")
        DUT_PREFIXES+=("$prefix")
        "${vsctl[@]}" add-br br0 -- set bridge br0 datapath_type=netdev
        local pairs=()
        for ((k = 0; k < w; k++)); do
            # Pair k's two receive queues on PMD k (CPU cpus[k]), as tagwall gives a pair to a worker.
            "${vsctl[@]}" add-port br0 "w$k" -- set Interface "w$k" type=dpdk ofport_request=$((2 * k + 1)) \
                "options:dpdk-devargs=$(memif_server $((2 * k)) "w$k")" "other_config:pmd-rxq-affinity=0:${cpus[$k]}"
            "${vsctl[@]}" add-port br0 "u$k" -- set Interface "u$k" type=dpdk ofport_request=$((2 * k + 2)) \
                "options:dpdk-devargs=$(memif_server $((2 * k + 1)) "u$k")" "other_config:pmd-rxq-affinity=0:${cpus[$k]}"
            pairs+=(--pair "$((2 * k + 1)):$((2 * k + 2))")
        done
        /usr/bin/python3 scripts/ovs-flows.py "$policy" "${pairs[@]}" >"$TMP/flows.txt"
        local ofctl=(ovs-ofctl --bundle)
        "${ofctl[@]}" del-flows "unix:$dir/br0.mgmt"
        "${ofctl[@]}" add-flows "unix:$dir/br0.mgmt" "$TMP/flows.txt"
        local appctl=(ovs-appctl -t "$dir/ovs-vswitchd.ctl")
        "${appctl[@]}" dpctl/ct-set-maxconns "$flow_capacity" >/dev/null
        DUT_FLUSH="ovs-appctl -t $dir/ovs-vswitchd.ctl dpctl/flush-conntrack >/dev/null"
        # OVS transmits on a port from each PMD thread and the main thread (a tx queue each): the
        # generator (the memif client) must have exactly as many receive rings.
        DUT_RX_QUEUES=$(($(printf '%s\n' "${cpus[@]}" | sort -u | wc -l) + 1))
        pinned=$("${appctl[@]}" dpif-netdev/pmd-rxq-show | tr -s ' \n' ' ')
        say "ovs: $(ovs-ofctl dump-aggregate "unix:$dir/br0.mgmt" | tr -d '\n'); rx queues: $pinned"
        ;;
    esac
    wait_for 60 "the memif sockets of $kind" sockets_ready "$w" || return 1
}

stop_dut() {
    local pid i
    for ((i = ${#DUT_PIDS[@]} - 1; i >= 0; i--)); do
        pid=${DUT_PIDS[$i]}
        kill -TERM "$pid" 2>/dev/null || continue
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
    done
    # Processes started with & are our children: reap them (ovs daemons detached themselves).
    wait 2>/dev/null || true
    for p in "${DUT_PREFIXES[@]}"; do
        rm -f /dev/hugepages/"$p"map_* 2>/dev/null || true
        rm -rf "/var/run/dpdk/$p" 2>/dev/null || true
    done
    DUT_PIDS=()
    DUT_PREFIXES=()
    rm -f "$MEMIF"/*.sock 2>/dev/null || true
}

# The DPDK 22.11 memif PMD can crash a server whose client disconnects while it forwards (its poller
# reads a ring the disconnect just unmapped: seen with dpdk-testpmd).  Before each generator run the
# device is checked and, when it died, started again (counted, and said).
ensure_dut() {
    local pid
    for pid in "${DUT_PIDS[@]}"; do
        if ! kill -0 "$pid" 2>/dev/null; then
            say "the device (${DUT_ARGS[0]}) died after the last generator run disconnected; starting it again"
            echo "${DUT_ARGS[0]}" >>"$TMP/restarts.txt"
            stop_dut
            start_dut "${DUT_ARGS[@]}"
            return
        fi
    done
}

# ---------------------------------------------------------------------------------------------------
# The generator.  run_gen LABEL-JSON W POLICY MIX GEN-ARGS...: one `tagwall-bench generate`; its JSON,
# with LABEL-JSON and the device's counters after it, is appended to $TMP/results.jsonl.

run_gen() {
    local label=$1 w=$2 policy=$3 mix=$4
    shift 4
    local ngen=$((${#GEN_CPUS[@]} < w ? ${#GEN_CPUS[@]} : w))
    local prefix=tagwall-gen-$$
    local between=()
    [ "$mix" = new-conn ] && [ -n "$DUT_FLUSH" ] && between=(--between-trials "$DUT_FLUSH")
    [ "$mix" != new-conn ] && [ -n "$DUT_FLUSH" ] && eval "$DUT_FLUSH"
    ensure_dut
    local stats_before=null stats_after=null after=()
    [ -n "$DUT_STATS" ] && stats_before=$(eval "$DUT_STATS" || echo null)
    rm -f "$TMP/stats-after.json"
    # The device's counters are read by the generator after its last trial, its ports still connected.
    [ -n "$DUT_STATS" ] && after=(--after-trials "$DUT_STATS >$TMP/stats-after.json")
    "$BENCH" generate --policy "$policy" --memif-dir "$MEMIF" --pairs "$w" \
        --cpus "$(cpu_list "${GEN_CPUS[@]:0:$ngen}")" --mix "$mix" --trial-seconds "$trial_seconds" \
        --resolution "$resolution" --loss-tolerance "$loss_tolerance" --file-prefix "$prefix" --rx-queues "$DUT_RX_QUEUES" "${between[@]}" "${after[@]}" --json "$@" \
        >"$TMP/gen.json" 2>"$TMP/gen.err" &
    GEN_PID=$!
    local rc=0
    wait "$GEN_PID" || rc=$?
    GEN_PID=""
    cut -d' ' -f1 /proc/loadavg >>"$TMP/load.txt"
    rm -rf "/var/run/dpdk/$prefix" 2>/dev/null || true
    grep -E "trial|warm-up" "$TMP/gen.err" >&2 || true
    if [ "$rc" != 0 ] || [ ! -s "$TMP/gen.json" ]; then
        say "tagwall-bench generate FAILED ($label):"
        cat "$TMP/gen.err" >&2
        return 1
    fi
    [ -s "$TMP/stats-after.json" ] && stats_after=$(cat "$TMP/stats-after.json")
    /usr/bin/python3 - "$label" "$TMP/gen.json" "$stats_before" "$stats_after" >>"$TMP/results.jsonl" <<'PY'
import json, sys
label, gen, before, after = sys.argv[1:5]
rec = json.loads(label)
rec["generator"] = json.load(open(gen))
rec["dut_stats_before"] = json.loads(before)
rec["dut_stats_after"] = json.loads(after)
print(json.dumps(rec))
PY
}

# The record run_gen appended last, as a python expression's input.
last_record() { tail -n 1 "$TMP/results.jsonl"; }

# ---------------------------------------------------------------------------------------------------
# Smoke: low fixed rates, exact checks.

if [ "$smoke" = 1 ]; then
    policy=$TMP/policy.yaml
    /usr/bin/python3 scripts/gen-policy.py --apps 3 >"$policy"
    trial_seconds=0.5
    flow_capacity=65536
    : >"$TMP/results.jsonl"
    failures=0
    check() {  # check DESCRIPTION PYTHON-CONDITION (r = the last record, g = its generator JSON)
        if last_record | /usr/bin/python3 -c "import json,sys; r=json.load(sys.stdin); g=r['generator']; t=g['trials'][0]; sys.exit(0 if ($2) else 1)"; then
            say "smoke: PASS $1"
        else
            say "smoke: FAIL $1: $(last_record | /usr/bin/python3 -c 'import json,sys; r=json.load(sys.stdin); print(json.dumps(r["generator"]["trials"]), json.dumps(r.get("dut_stats_after") or {}).__getitem__(slice(0,600)))')"
            failures=$((failures + 1))
        fi
    }
    for dut in testpmd tagwall; do
        start_dut "$dut" 1 "$policy"
        run_gen "{\"dut\": \"$dut\"}" 1 "$policy" established --flows 200 --rate 20000
        check "$dut established: every offered frame forwarded" \
            "g['established_flows'] == 200 and t['offered'] > 0 and t['forwarded'] == t['offered'] and t['rx_foreign'] == 0"
        run_gen "{\"dut\": \"$dut\"}" 1 "$policy" new-conn --rate 2000
        check "$dut new-conn: every connection completed (4 segments each)" \
            "t['offered'] > 0 and t['forwarded'] == t['offered'] and t['rx_valid'] == 4 * t['offered']"
        if [ "$dut" = tagwall ]; then
            run_gen "{\"dut\": \"$dut\"}" 1 "$policy" denied --flows 200 --rate 20000
            check "tagwall denied: nothing forwarded, each offered frame counted as a drop by the default" \
                "t['offered'] > 0 and t['rx_valid'] == 0 and r['dut_stats_after']['reasons'].get('default', 0) - (r['dut_stats_before']['reasons'].get('default', 0)) == t['offered'] and r['dut_stats_after']['totals']['drop'] - r['dut_stats_before']['totals']['drop'] == t['offered']"
        fi
        stop_dut
    done
    if [ "$failures" -ne 0 ]; then say "smoke: $failures check(s) FAILED"; exit 1; fi
    say "smoke: all checks passed"
    exit 0
fi

# ---------------------------------------------------------------------------------------------------
# The benchmark.

: >"$TMP/results.jsonl"
declare -A POLICY
for a in "${RULES[@]}"; do
    POLICY[$a]=$TMP/policy-$a.yaml
    /usr/bin/python3 scripts/gen-policy.py --apps "$a" >"${POLICY[$a]}"
done
started=$(date +%s)
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for w in "${WORKERS[@]}"; do
    if [ "$w" -gt "${#DUT_CPUS[@]}" ]; then say "skipping $w workers: only ${#DUT_CPUS[@]} --dut-cpus"; continue; fi
    for dut in "${DUTS[@]}"; do
        sizes=("${RULES[@]}")
        [ "$dut" = testpmd ] && sizes=("${RULES[0]}")  # testpmd ignores the policy
        for a in "${sizes[@]}"; do
            say "== $dut, $w worker(s), policy gen-policy --apps $a =="
            start_dut "$dut" "$w" "${POLICY[$a]}"
            for mix in "${MIXES[@]}"; do
                extra=(--search)
                [ "$mix" != new-conn ] && extra+=(--flows "$flows")
                run_gen "{\"kind\": \"mix\", \"dut\": \"$dut\", \"apps\": $a, \"workers\": $w, \"mix\": \"$mix\"}" \
                    "$w" "${POLICY[$a]}" "$mix" "${extra[@]}" || say "($dut $mix: no figure)"
            done
            stop_dut
        done
    done
done
if [ ${#CAPACITY[@]} -gt 0 ]; then
    w=${WORKERS[0]}
    a=${RULES[-1]}
    for dut in "${DUTS[@]}"; do
        [ "$dut" = testpmd ] && continue  # no connection table
        say "== capacity: $dut, $w worker(s), policy gen-policy --apps $a =="
        start_dut "$dut" "$w" "${POLICY[$a]}"
        for n in "${CAPACITY[@]}"; do
            run_gen "{\"kind\": \"capacity\", \"dut\": \"$dut\", \"apps\": $a, \"workers\": $w, \"mix\": \"established\"}" \
                "$w" "${POLICY[$a]}" established --search --flows "$n" || say "($dut capacity $n: no figure)"
        done
        stop_dut
    done
fi
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

mkdir -p "$OUT_DIR/perf"
args_line="scripts/bench-replay.sh --gen-cpus $gen_cpus --dut-cpus $dut_cpus --workers $workers_list --duts $duts_list --rules $rules_list --mixes $mixes_list --flows $flows --capacity '$capacity_list' --flow-capacity $flow_capacity --trial-seconds $trial_seconds --resolution $resolution --loss-tolerance $loss_tolerance"
/usr/bin/python3 scripts/replay-report.py --results "$TMP/results.jsonl" --out-dir "$OUT_DIR" --command "$args_line" \
    --build "$buildtype" --load-before "$load_before" --load-after "$load_after" \
    --load-max "$(sort -g "$TMP/load.txt" 2>/dev/null | tail -n 1)" \
    --restarts "$(sort "$TMP/restarts.txt" 2>/dev/null | uniq -c | awk '{printf "%s%s x%s", (NR > 1 ? ", " : ""), $2, $1}')" \
    --seconds $(($(date +%s) - started)) --gen-cpus "$gen_cpus" --dut-cpus "$dut_cpus" \
    --testpmd-version "$(dpkg-query -W -f='${Version}' dpdk-dev 2>/dev/null || echo '?')" \
    --ovs-version "$(dpkg-query -W -f='${Version}' openvswitch-switch-dpdk 2>/dev/null || echo '?')"
say "wrote $OUT_DIR/performance.md, $OUT_DIR/perf/replay.json and its plots"
