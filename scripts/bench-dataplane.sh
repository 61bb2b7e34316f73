#!/usr/bin/env bash
# Dataplane benchmark: one worker's pipeline on a 10k-rule tag policy through `tagwall-bench pipeline
# --scenario all`, written to docs/perf/dataplane.{md,json}, with the issue's acceptance figures.
#
#   - the policy comes from scripts/gen-policy.py (--apps 3333: 3 x 3333 + 3 = 10002 rules, 10000
#     endpoints) into a temporary directory that is removed on exit (or --policy FILE);
#   - one run, single core (the EAL pins the bench to the first CPU it may use; --cpu N picks it),
#     frames on the EAL heap (hugepages when available: the report says whether they were);
#   - when root, hugepages are raised to --hugepages-gb for the run and put back on exit;
#   - scenarios: established (100k flows, ACKs both ways), baseline (the same frames through parse and
#     forward only), new-flow (1M SYNs, each a new connection), memory (1M flows held: RSS and EAL
#     heap after the pipeline's construction and after the traffic);
#   - a sweep of established alone over flow counts (1k .. 1M), to show the memory-bound part.
# Exit status: 0 when the bench ran (whether or not the targets were met: the report says), 1 when it
# failed, 2 on usage errors.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() {
    cat <<'EOF'
usage: scripts/bench-dataplane.sh [options]

Generates a 10k-rule tag policy with scripts/gen-policy.py, runs
  tagwall-bench pipeline --policy POLICY --scenario all --json
and writes docs/perf/dataplane.md (a table per scenario: Mpps, cycles/packet, ratio to the
parse-and-forward baseline, memory before/after holding 1M flows, and the acceptance targets) and
docs/perf/dataplane.json (the bench's raw objects, with the machine and the options).

What the figures mean (tagwall-bench pipeline --help has the details):
  Mpps median  from the median 1024-packet segment of each timed pass: what the code costs when it
               has the core (a shared machine preempts long passes; short segments mostly escape it)
  Mpps wall    packets / seconds over all timed passes, preemption included
  vs baseline  the scenario's median Mpps / the baseline's median Mpps (baseline = the worker's parse,
               parse_ack_segment() or parse_frame(), and the wire peer only, same frames, same memory,
               same bursts of 32)
  cycles       TSC cycles per packet (constant-rate TSC, not core clock cycles)
Targets (one worker, 64-byte frames): established >= 15 Mpps, new-flow >= 4 Mpps on the 10k-rule
policy, no memory growth holding 1M flows.

options:
  --apps N             gen-policy.py --apps (default 3333: 10002 rules)
  --policy FILE        use this policy instead of generating one
  --flows N            established/baseline: concurrent flows (default 100000)
  --new-flows N        new-flow: SYNs per pass, each a new connection (default 1000000)
  --memory-flows N     memory: flows held at once (default 1000000)
  --flow-capacity N    flow table size for every scenario (default: power of two >= 2 x its flows)
  --sweep LIST         also run established alone at each of these flow counts, comma-separated, to
                       show how the cost grows with the flow table's working set (default
                       1000,10000,100000,1000000; '' skips it)
  --iterations N       timed passes per scenario, at least (default 5)
  --min-seconds S      ...and more passes until S seconds were measured (default 1)
  --stride 64|128      bytes between frames in memory (default 64)
  --engine E           classifier engine: trie, rte_acl or linear (default trie)
  --hugepages-gb N     when root, make sure N GB of 2 MB hugepages are reserved (default 1)
  --cpu N              run the bench on CPU N (taskset; default: the first CPU allowed)
  --out-dir DIR        where the report goes (default docs/perf)
  --no-build           do not run ninja for tagwall-bench first
  -h, --help           this text

environment: BUILD_DIR (default build; figures to quote: meson setup BUILD_DIR --buildtype=release -Db_lto=true),
             JOBS (ninja -j, default 2)
example: BUILD_DIR=build-bench JOBS=1 scripts/bench-dataplane.sh --cpu 1
EOF
}

BUILD_DIR=${BUILD_DIR:-build}
OUT_DIR=docs/perf
apps=3333
policy=""
flows=100000
new_flows=1000000
memory_flows=1000000
flow_capacity=0
iterations=5
min_seconds=1
stride=64
engine=trie
hugepages_gb=1
sweep=1000,10000,100000,1000000
cpu=""
do_build=1

need_value() {
    if [ $# -lt 2 ] || [ -z "$2" ]; then echo "bench-dataplane: $1 needs a value" >&2; exit 2; fi
}
while [ $# -gt 0 ]; do
    case $1 in
        -h|--help) usage; exit 0 ;;
        --apps) need_value "$@"; apps=$2; shift ;;
        --policy) need_value "$@"; policy=$2; shift ;;
        --flows) need_value "$@"; flows=$2; shift ;;
        --new-flows) need_value "$@"; new_flows=$2; shift ;;
        --memory-flows) need_value "$@"; memory_flows=$2; shift ;;
        --flow-capacity) need_value "$@"; flow_capacity=$2; shift ;;
        --sweep) [ $# -ge 2 ] || { echo "bench-dataplane: --sweep needs a value" >&2; exit 2; }; sweep=$2; shift ;;
        --iterations) need_value "$@"; iterations=$2; shift ;;
        --min-seconds) need_value "$@"; min_seconds=$2; shift ;;
        --stride) need_value "$@"; stride=$2; shift ;;
        --engine) need_value "$@"; engine=$2; shift ;;
        --hugepages-gb) need_value "$@"; hugepages_gb=$2; shift ;;
        --cpu) need_value "$@"; cpu=$2; shift ;;
        --out-dir) need_value "$@"; OUT_DIR=$2; shift ;;
        --no-build) do_build=0 ;;
        *) echo "bench-dataplane: unknown option $1" >&2; usage >&2; exit 2 ;;
    esac
    shift
done
for n in "$apps" "$flows" "$new_flows" "$memory_flows" "$flow_capacity" "$iterations" "$hugepages_gb" ${cpu:+"$cpu"}; do
    [[ $n =~ ^[0-9]+$ ]] || { echo "bench-dataplane: '$n' is not a number" >&2; exit 2; }
done
IFS=, read -r -a sweep_flows <<<"$sweep"
for n in "${sweep_flows[@]}"; do
    if ! [[ $n =~ ^[1-9][0-9]*$ ]]; then echo "bench-dataplane: --sweep: '$n' is not a flow count" >&2; exit 2; fi
done
[[ $min_seconds =~ ^[0-9]+(\.[0-9]+)?$ ]] || { echo "bench-dataplane: --min-seconds '$min_seconds' is not a number" >&2; exit 2; }
case $stride in 64|128) ;; *) echo "bench-dataplane: --stride must be 64 or 128" >&2; exit 2 ;; esac
case $engine in trie|rte_acl|linear) ;; *) echo "bench-dataplane: unknown engine '$engine'" >&2; exit 2 ;; esac
[ "$apps" -gt 0 ] || { echo "bench-dataplane: --apps must be at least 1" >&2; exit 2; }
if [ -n "$policy" ] && [ ! -r "$policy" ]; then echo "bench-dataplane: cannot read --policy $policy" >&2; exit 2; fi

say() { printf 'bench-dataplane: %s\n' "$*" >&2; }

# ---------------------------------------------------------------------------------------------------
# Temporary directory and hugepages, both undone on exit.

# shellcheck source=scripts/bench-lib.bash
. scripts/bench-lib.bash
bench_begin bench-dataplane

# ---------------------------------------------------------------------------------------------------
# Build, policy, run.

BENCH=$BUILD_DIR/src/tools/tagwall-bench
if [ "$do_build" = 1 ] && [ -f "$BUILD_DIR/build.ninja" ]; then
    ninja -C "$BUILD_DIR" -j "${JOBS:-2}" src/tools/tagwall-bench >&2
fi
[ -x "$BENCH" ] || { say "$BENCH not found: build first (meson setup $BUILD_DIR --buildtype=release -Db_lto=true && ninja -C $BUILD_DIR)"; exit 1; }
buildtype=$(build_kind "$BUILD_DIR")
warn_unless_release_lto "$BUILD_DIR"

if [ -z "$policy" ]; then
    policy=$TMP/policy.yaml
    python3 scripts/gen-policy.py --apps "$apps" >"$policy"
    policy_desc="scripts/gen-policy.py --apps $apps"
else
    policy_desc=$policy
fi
say "policy: $policy_desc"

raise_hugepages

runner=()
[ -n "$cpu" ] && runner=(taskset -c "$cpu")
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
say "running tagwall-bench pipeline --scenario all (load average before: $load_before)"
if ! "${runner[@]}" "$BENCH" pipeline --policy "$policy" --scenario all --json --engine "$engine" \
        --flows "$flows" --packets 0 --new-flows "$new_flows" --memory-flows "$memory_flows" \
        --flow-capacity "$flow_capacity" \
        --iterations "$iterations" --min-seconds "$min_seconds" --stride "$stride" \
        >"$TMP/results.jsonl" 2>"$TMP/err"; then
    say "tagwall-bench pipeline FAILED:"
    cat "$TMP/err" >&2
    exit 1
fi
[ -s "$TMP/err" ] && cat "$TMP/err" >&2
: >"$TMP/sweep.jsonl"
for n in "${sweep_flows[@]}"; do
    say "sweep: established with $n flows"
    if ! "${runner[@]}" "$BENCH" pipeline --policy "$policy" --scenario established --json --engine "$engine" \
            --flows "$n" --flow-capacity "$flow_capacity" --iterations 3 --min-seconds 0.5 --stride "$stride" \
            >>"$TMP/sweep.jsonl" 2>"$TMP/err"; then
        say "tagwall-bench pipeline --scenario established --flows $n FAILED:"
        cat "$TMP/err" >&2
        exit 1
    fi
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

# ---------------------------------------------------------------------------------------------------
# Report.

mkdir -p "$OUT_DIR"
machine_cpu=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
cores=$(nproc)
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
dirty=""
if git status --porcelain 2>/dev/null | grep -q .; then dirty=" + uncommitted changes"; fi

python3 - "$TMP/results.jsonl" "$TMP/sweep.jsonl" "$OUT_DIR" "$machine_cpu" "$cores" "$commit$dirty" "$policy_desc" \
    "$load_before" "$load_after" "$buildtype" "$iterations" "$min_seconds" <<'PY'
import datetime, json, os, sys

(results_path, sweep_path, out_dir, cpu, cores, commit, policy, load_before, load_after, buildtype,
 iterations, min_seconds) = sys.argv[1:13]
rows = [json.loads(l) for l in open(results_path) if l.strip()]
sweep = [json.loads(l) for l in open(sweep_path) if l.strip()]
rules = rows[0]["rules"] if rows else 0
by = {r["scenario"]: r for r in rows}
when = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
any_row = rows[0] if rows else {}
huge = "yes" if any_row.get("hugepages") else "NO (--no-huge: 4 KB pages)"
ghz = any_row.get("tsc_hz", 0) / 1e9

json.dump({"date": when, "commit": commit, "cpu": cpu, "cores": int(cores), "policy": policy, "rules": rules,
           "build": buildtype, "load_average_before": load_before, "load_average_after": load_after,
           "iterations": int(iterations), "min_seconds": float(min_seconds), "results": rows, "sweep": sweep},
          open(os.path.join(out_dir, "dataplane.json"), "w"), indent=1)

def mb(b):
    return f"{b / 1e6:.1f} MB"

def ratio(r):
    # median Mpps over the baseline's (the bench gives it as vs_baseline when both ran in one process)
    b = by.get("baseline")
    if r is None or b is None or not b["mpps_median"]:
        return "—"
    return f"{r['mpps_median'] / b['mpps_median']:.3f}"

md = ["# Dataplane benchmark: one worker's pipeline", "",
      f"Generated by `scripts/bench-dataplane.sh` on {when}, commit {commit}, {buildtype} build.  ",
      f"CPU: {cpu} ({cores} cores, TSC {ghz:.2f} GHz); one worker on one core; hugepages: {huge}.  ",
      f"Load average before / after the run: {load_before} / {load_after} (other work on the machine "
      "shares the cores and the last-level cache: the wall figures include it, the median figures mostly not).  ",
      f"Policy: {policy} ({rules} rules), classifier engine {any_row.get('engine', '?')}; "
      f"{any_row.get('services', '?')} (client, endpoint, TCP port) services the policy allows, found by asking the "
      "classifier.  ",
      f"Traffic: 64-byte Ethernet/802.1Q/IPv4/TCP frames (60 bytes + FCS) on the EAL heap at a "
      f"{any_row.get('stride', '?')}-byte stride, bursts of {any_row.get('burst', '?')} through `Pipeline::process()`; "
      f"one warm-up pass, then at least {iterations} timed passes and {min_seconds} s per scenario.", "",
      "| scenario | flows | flow table | packets timed | Mpps (median) | Mpps (wall) | cycles/pkt (median) | "
      "cycles/pkt (wall) | vs baseline | allow / drop / reject |",
      "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
for name in ("baseline", "established", "new-flow", "memory"):
    r = by.get(name)
    if not r:
        continue
    v = r["verdicts"]
    md.append(f"| {name} | {r['flows']} | {r.get('flow_capacity', '—')} | {r['packets']} | {r['mpps_median']:.2f} | "
              f"{r['mpps']:.2f} | {r['cycles_per_packet_median']:.1f} | {r['cycles_per_packet']:.1f} | "
              f"{'1' if name == 'baseline' else ratio(r)} | {v['allow']} / {v['drop']} / {v['reject']} |")
md += ["", "- **established**: every flow's handshake first (untimed), then one pure ACK each way per flow per pass, "
       "shuffled across flows and directions; **baseline**: the same frames through the worker's parse "
       "(`parse_ack_segment()`, which takes these ACKs) and the wire peer only; **new-flow**: every packet the SYN of a new connection, each pass into a fresh pipeline; "
       f"**memory**: the ACKs of the {by['memory']['flows'] if 'memory' in by else '?'} held flows.",
       "- Mpps (median): from the median 1024-packet segment of each pass; Mpps (wall): packets / seconds over "
       "all passes.  vs baseline: median Mpps over the baseline's median Mpps.  Cycles: TSC cycles per packet."]
nf = by.get("new-flow")
if nf:
    t = nf.get("flow_table", {})
    md.append(f"- new-flow: flow table of {nf['flow_capacity']} for {nf['flows']} SYNs per pass: "
              + ("eviction of half-open entries made room" if nf.get("eviction") else "large enough, no eviction")
              + f" ({t.get('evicted', 0)} evicted, {t.get('refused', 0)} refused in the last pass).")
m = by.get("memory")
if m:
    md += ["", f"Memory, {m['flows_live']} flows held in a table of {m['flow_capacity']} "
           f"({mb(m['flow_table_bytes'])} allocated at the pipeline's construction):", "",
           f"| | after construction | after {m['flows_live']} flows and traffic | growth |", "|---|---:|---:|---:|",
           f"| process RSS (/proc/self/statm) | {mb(m['rss_before_bytes'])} | {mb(m['rss_after_bytes'])} | "
           f"{m['rss_growth_bytes']} bytes |",
           f"| EAL heap in use (rte_malloc_get_socket_stats) | {mb(m['eal_heap_before_bytes'])} | "
           f"{mb(m['eal_heap_after_bytes'])} | {m['eal_heap_growth_bytes']} bytes |", "",
           "(The bench's own frames are allocated before the first reading; the flow table is ordinary memory, "
           "not EAL heap, so the EAL heap figure holds only the frames.)"]

if sweep:
    md += ["", "Established alone at growing flow counts (3 timed passes, 0.5 s at least, each its own process): "
           "how the cost per packet grows with the working set of the flow table (128-byte entries, which an "
           "established packet reads, their 64-byte buckets and 16-byte attributions, in transparent huge pages where "
           "the kernel gives them) once it no longer fits in the caches:", "",
           "| flows | flow table | flow table MB | Mpps (median) | cycles/pkt (median) | Mpps (wall) |",
           "|---:|---:|---:|---:|---:|---:|"]
    for r in sweep:
        md.append(f"| {r['flows']} | {r['flow_capacity']} | {r['flow_table_bytes'] / 1e6:.1f} | {r['mpps_median']:.2f} | "
                  f"{r['cycles_per_packet_median']:.1f} | {r['mpps']:.2f} |")

def target(name, want):
    r = by.get(name)
    if not r:
        return f"| {name} ≥ {want} Mpps | not run | |"
    return (f"| {name} ≥ {want} Mpps | {r['mpps_median']:.2f} Mpps median, {r['mpps']:.2f} wall | "
            f"{'met' if r['mpps_median'] >= want else 'NOT met'} |")
md += ["", "Acceptance (one worker, hugepages, 64-byte frames):", "", "| target | measured | |", "|---|---|---|",
       target("established", 15), target("new-flow", 4)]
if m:
    md.append(f"| 1M flows held, no memory growth after start | RSS {m['rss_growth_bytes']:+d} bytes, EAL heap "
              f"{m['eal_heap_growth_bytes']:+d} bytes, {m['flows_live']} flows live | "
              f"{'met' if m['flows_live'] >= 1000000 and abs(m['rss_growth_bytes']) < 1 << 20 and m['eal_heap_growth_bytes'] == 0 else 'NOT met'} |")
b = by.get("baseline")
if b:
    md.append(f"| baseline in the same run, ratio reported | established {ratio(by['established']) if 'established' in by else '—'}, "
              f"new-flow {ratio(nf) if nf else '—'} of the baseline's {b['mpps_median']:.2f} Mpps | reported |")
md.append("")
open(os.path.join(out_dir, "dataplane.md"), "w").write("\n".join(md))

for r in rows:
    print(f"  {r['scenario']:<12} {r['mpps_median']:8.2f} Mpps median {r['mpps']:8.2f} wall "
          f"{r['cycles_per_packet_median']:8.1f} cyc/pkt median  vs baseline {ratio(r) if r['scenario'] != 'baseline' else '1'}")
for r in sweep:
    print(f"  sweep {r['flows']:>8} flows {r['mpps_median']:8.2f} Mpps median {r['cycles_per_packet_median']:8.1f} cyc/pkt")
if m:
    print(f"  memory       RSS {mb(m['rss_before_bytes'])} -> {mb(m['rss_after_bytes'])}, "
          f"EAL heap {mb(m['eal_heap_before_bytes'])} -> {mb(m['eal_heap_after_bytes'])}")
PY
say "wrote $OUT_DIR/dataplane.md, dataplane.json"
