#!/usr/bin/env bash
# Classifier benchmark: every engine (trie, rte_acl, linear) on every ClassBench set through
# `tagwall-bench classify`, with a correctness check, written to docs/perf/classify.{md,json,png}.
#
#   - sets come from CLASSBENCH_DIR (default ../shared/classbench next to the repository); .xz files are
#     decompressed into a temporary directory that is removed on exit;
#   - every run is single-core (the EAL pins the bench to the first CPU it may use; --cpu N picks it);
#   - when root, hugepages are raised to --hugepages-gb for the run (rte_acl needed 3.9 GB on fw1_100k)
#     and put back to their previous count on exit;
#   - linear only runs on sets up to --max-linear-rules rules (it is O(rules) per lookup) and with one
#     timed iteration;
#   - correctness: each engine's --matches output is compared with linear's where linear ran, else with
#     rte_acl's; the table reports the mismatch count (it must be 0).
# Exit status: 0 when every run succeeded with 0 mismatches, 1 otherwise, 2 on usage errors.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

usage() {
    cat <<'EOF'
usage: scripts/bench-classify.sh [options]

Runs tagwall-bench classify for each engine on each ClassBench set and writes
docs/perf/classify.md (tables), classify.json (raw results) and classify.png (Mpps per set and engine).

options:
  --sets LIST             comma-separated set names (default: every *.rules[.xz] in CLASSBENCH_DIR),
                          e.g. acl1_1k,fw1_10k
  --engines LIST          comma-separated engines (default trie,rte_acl,linear)
  --iterations N          timed passes over each trace, at least (default 3; linear always runs 1)
  --min-seconds S         and more passes until S seconds were measured (default 0.5; linear: 0)
  --max-linear-rules N    skip linear on sets with more rules (default 10000: the 1k and 10k sets)
  --hugepages-gb N        when root, make sure N GB of 2 MB hugepages are reserved (default 6)
  --cpu N                 run the bench on CPU N (taskset; default: the first CPU allowed)
  --max-simd-bitwidth N   EAL SIMD cap for every engine (default 512: rte_acl's best path, avx512x32,
                          where the CPU has it; 256 is DPDK's own default on x86)
  --updates N             erase and re-insert N rules one at a time in the trie and time each (default 200;
                          rte_acl cannot update in place: its update cost is a full rebuild)
  --out-dir DIR           where the report goes (default docs/perf)
  --no-build              do not run ninja for tagwall-bench first
  -h, --help              this text

environment: CLASSBENCH_DIR (default ../shared/classbench), BUILD_DIR (default build), JOBS (ninja -j, default 2)
EOF
}

CLASSBENCH_DIR=${CLASSBENCH_DIR:-$ROOT/../shared/classbench}
BUILD_DIR=${BUILD_DIR:-build}
OUT_DIR=docs/perf
sets_arg=""
engines_arg="trie,rte_acl,linear"
iterations=3
min_seconds=0.5
max_linear_rules=10000
hugepages_gb=6
cpu=""
simd=512
do_build=1
updates=200

need_value() {
    if [ $# -lt 2 ] || [ -z "$2" ]; then echo "bench-classify: $1 needs a value" >&2; exit 2; fi
}
while [ $# -gt 0 ]; do
    case $1 in
        -h|--help) usage; exit 0 ;;
        --sets) need_value "$@"; sets_arg=$2; shift ;;
        --engines) need_value "$@"; engines_arg=$2; shift ;;
        --iterations) need_value "$@"; iterations=$2; shift ;;
        --min-seconds) need_value "$@"; min_seconds=$2; shift ;;
        --max-linear-rules) need_value "$@"; max_linear_rules=$2; shift ;;
        --hugepages-gb) need_value "$@"; hugepages_gb=$2; shift ;;
        --cpu) need_value "$@"; cpu=$2; shift ;;
        --max-simd-bitwidth) need_value "$@"; simd=$2; shift ;;
        --out-dir) need_value "$@"; OUT_DIR=$2; shift ;;
        --updates) need_value "$@"; updates=$2; shift ;;
        --no-build) do_build=0 ;;
        *) echo "bench-classify: unknown option $1" >&2; usage >&2; exit 2 ;;
    esac
    shift
done
for n in "$iterations" "$max_linear_rules" "$hugepages_gb" "$simd" ${cpu:+"$cpu"}; do
    [[ $n =~ ^[0-9]+$ ]] || { echo "bench-classify: '$n' is not a number" >&2; exit 2; }
done
[[ $min_seconds =~ ^[0-9]+(\.[0-9]+)?$ ]] || { echo "bench-classify: --min-seconds '$min_seconds' is not a number" >&2; exit 2; }
IFS=, read -r -a engines <<<"$engines_arg"
for e in "${engines[@]}"; do
    case $e in trie|rte_acl|linear) ;; *) echo "bench-classify: unknown engine '$e'" >&2; exit 2 ;; esac
done
[ -d "$CLASSBENCH_DIR" ] || { echo "bench-classify: no ClassBench directory $CLASSBENCH_DIR (set CLASSBENCH_DIR)" >&2; exit 2; }

say() { printf 'bench-classify: %s\n' "$*" >&2; }

# ---------------------------------------------------------------------------------------------------
# Temporary directory and hugepages, both undone on exit.

# shellcheck source=scripts/bench-lib.bash
. scripts/bench-lib.bash
HUGEPAGES_SHORT_WARNING="large rte_acl builds may fail"
bench_begin bench-classify

# ---------------------------------------------------------------------------------------------------
# Inputs

# Set names, ordered by family then size (acl1_1k, acl1_10k, acl1_100k, fw1_1k ...).
discover_sets() {
    local f
    for f in "$CLASSBENCH_DIR"/*.rules "$CLASSBENCH_DIR"/*.rules.xz; do
        [ -e "$f" ] || continue
        f=${f##*/}
        echo "${f%%.rules*}"
    done | sort -u | awk -F_ '{size = $2; sub(/k$/, "000", size); print $1, size + 0, $0}' | sort -k1,1 -k2,2n | cut -d' ' -f3
}

# materialise SET KIND (rules|trace): prints a readable path, decompressing into $TMP when needed.
materialise() {
    local base=$CLASSBENCH_DIR/$1.$2
    if [ -f "$base" ]; then echo "$base"
    elif [ -f "$base.xz" ]; then xz -dc "$base.xz" >"$TMP/$1.$2" && echo "$TMP/$1.$2"
    else return 1
    fi
}

if [ -n "$sets_arg" ]; then IFS=, read -r -a sets <<<"$sets_arg"; else mapfile -t sets < <(discover_sets); fi
[ ${#sets[@]} -gt 0 ] || { say "no ClassBench sets found in $CLASSBENCH_DIR"; exit 2; }

BENCH=$BUILD_DIR/src/tools/tagwall-bench
if [ "$do_build" = 1 ] && [ -f "$BUILD_DIR/build.ninja" ]; then
    ninja -C "$BUILD_DIR" -j "${JOBS:-2}" src/tools/tagwall-bench >&2
fi
[ -x "$BENCH" ] || { say "$BENCH not found: build first (scripts/setup.sh && ninja -C $BUILD_DIR)"; exit 1; }

raise_hugepages

# ---------------------------------------------------------------------------------------------------
# Runs.  Each result is one JSON line in $TMP/results.jsonl (the bench's object plus set and status).

runner=()
[ -n "$cpu" ] && runner=(taskset -c "$cpu")
results=$TMP/results.jsonl
: >"$results"

for set in "${sets[@]}"; do
    rules=$(materialise "$set" rules) || { say "$set: no rules file"; exit 2; }
    trace=$(materialise "$set" trace) || { say "$set: no trace file"; exit 2; }
    rule_count=$(grep -c '^@' "$rules" || true)
    for engine in "${engines[@]}"; do
        iters=$iterations
        min_s=$min_seconds
        if [ "$engine" = linear ]; then
            iters=1
            min_s=0
            if [ "$rule_count" -gt "$max_linear_rules" ]; then
                say "$set: linear skipped ($rule_count rules > --max-linear-rules $max_linear_rules)"
                printf '{"set":"%s","engine":"linear","rules":%d,"status":"skipped","reason":"%d rules > --max-linear-rules %d"}\n' \
                    "$set" "$rule_count" "$rule_count" "$max_linear_rules" >>"$results"
                continue
            fi
        fi
        upd=0
        [ "$engine" = linear ] || upd=$updates
        say "$set: $engine ($rule_count rules, $iters iterations)"
        if out=$("${runner[@]}" "$BENCH" classify --rules "$rules" --trace "$trace" --engine "$engine" \
                    --iterations "$iters" --min-seconds "$min_s" --max-simd-bitwidth "$simd" --updates "$upd" \
                    --json --matches "$TMP/$set.$engine.matches" 2>"$TMP/err"); then
            python3 -c 'import json,sys; o=json.loads(sys.argv[1]); o["set"]=sys.argv[2]; o["status"]="ok"; print(json.dumps(o))' \
                "$out" "$set" >>"$results"
        else
            err=$(tail -n 3 "$TMP/err" | tr '\n' ' ')
            say "$set: $engine FAILED: $err"
            python3 -c 'import json,sys; print(json.dumps({"set":sys.argv[1],"engine":sys.argv[2],"rules":int(sys.argv[3]),"status":"failed","reason":sys.argv[4]}))' \
                "$set" "$engine" "$rule_count" "$err" >>"$results"
        fi
    done
done

# ---------------------------------------------------------------------------------------------------
# Report: correctness, tables, raw JSON, plot.

mkdir -p "$OUT_DIR"
machine_cpu=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
dirty=""
if git status --porcelain 2>/dev/null | grep -q .; then dirty=" + uncommitted changes"; fi

status=0
python3 - "$results" "$TMP" "$OUT_DIR" "$machine_cpu" "$commit$dirty" "$iterations" "$max_linear_rules" "$min_seconds" <<'PY' || status=$?
import datetime, json, os, re, sys

results_path, tmp, out_dir, cpu, commit, iterations, max_linear, min_seconds = sys.argv[1:9]
rows = [json.loads(l) for l in open(results_path) if l.strip()]

def matches(s, e):
    p = os.path.join(tmp, f"{s}.{e}.matches")
    return open(p).read().split("\n") if os.path.exists(p) else None

# Correctness: against linear where it ran, else against rte_acl.
ok_engines = {(r["set"], r["engine"]) for r in rows if r["status"] == "ok"}
for r in rows:
    if r["status"] != "ok":
        continue
    ref = "linear" if (r["set"], "linear") in ok_engines else "rte_acl"
    if r["engine"] == ref or (r["set"], ref) not in ok_engines:
        r["checked_against"], r["mismatches"] = None, None
        continue
    a, b = matches(r["set"], r["engine"]), matches(r["set"], ref)
    r["checked_against"] = ref
    r["mismatches"] = sum(x != y for x, y in zip(a, b)) + abs(len(a) - len(b))

sets = list(dict.fromkeys(r["set"] for r in rows))
def get(s, e):
    return next((r for r in rows if r["set"] == s and r["engine"] == e and r["status"] == "ok"), None)

hugepages = sorted({str(r.get("hugepages")) for r in rows if r["status"] == "ok"})
algs = sorted({m.group(1) for r in rows if r["status"] == "ok" and r["engine"] == "rte_acl"
               for m in [re.search(r"classify algorithm (\w+)", r.get("detail", ""))] if m})
when = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
json.dump({"date": when, "commit": commit, "cpu": cpu, "iterations": int(iterations), "min_seconds": float(min_seconds),
           "max_linear_rules": int(max_linear), "results": rows},
          open(os.path.join(out_dir, "classify.json"), "w"), indent=1)

md = ["# Classifier benchmark: trie vs rte_acl vs linear", "",
      f"Generated by `scripts/bench-classify.sh` on {when}, commit {commit}.  ",
      f"CPU: {cpu}; one core; hugepages: {', '.join('yes' if h == 'True' else 'no' for h in hugepages) or 'n/a'}; "
      f"after one warm-up pass, at least {iterations} timed passes over each trace and at least {min_seconds} s "
      "(linear: exactly 1 pass), bursts of 64 keys.  ",
      f"linear runs only on sets of at most {max_linear} rules.  Memory: what the engine holds for lookups "
      "(rte_acl: DPDK heap growth over create+build); build scratch: rte_acl's temporary build heap, "
      "from its own log (it peaks at memory + scratch while building).  Cycles are TSC cycles per lookup.  "
      f"rte_acl classify algorithm: {', '.join(algs) or 'n/a'}.", "",
      "| set | rules | engine | build ms | memory MB | build scratch MB | Mpps | cycles/lookup | checked against | mismatches |",
      "|---|---:|---|---:|---:|---:|---:|---:|---|---:|"]
for r in rows:
    if r["status"] != "ok":
        md.append(f"| {r['set']} | {r.get('rules', '')} | {r['engine']} | {r['status']}: {r.get('reason', '')} | | | | | | |")
        continue
    chk = r["checked_against"] or "—"
    mm = "—" if r["mismatches"] is None else str(r["mismatches"])
    scratch = "—" if r.get("build_scratch_bytes") is None else f"{r['build_scratch_bytes'] / 1e6:.2f}"
    md.append(f"| {r['set']} | {r['rules']} | {r['engine']} | {r['build_ms']:.1f} | {r['memory_bytes'] / 1e6:.2f} | "
              f"{scratch} | {r['mpps']:.2f} | {r['cycles_per_lookup']:.1f} | {chk} | {mm} |")

ratio_rows = []
for s in sets:
    t, a = get(s, "trie"), get(s, "rte_acl")
    if t and a:
        peak = a["memory_bytes"] + (a.get("build_scratch_bytes") or 0)
        ratio_rows.append(f"| {s} | {t['mpps'] / a['mpps']:.2f} | {t['build_ms'] / max(a['build_ms'], 1e-9):.3f} | "
                          f"{t['memory_bytes'] / max(a['memory_bytes'], 1):.3f} | {t['memory_bytes'] / max(peak, 1):.3f} |")
if ratio_rows:
    md += ["", "Ratios trie / rte_acl (targets: lookup ≥ 1.0, build ≤ 0.1, memory ≤ 1.0):", "",
           "| set | lookup rate | build time | memory | memory vs rte_acl build peak |", "|---|---:|---:|---:|---:|"] + ratio_rows
upd_rows = []
for s in sets:
    t, a = get(s, "trie"), get(s, "rte_acl")
    if t and t.get("update_ops"):
        acl = f"{a['build_ms']:.1f} ms (full rebuild)" if a else "—"
        upd_rows.append(f"| {s} | {t['update_ops']} | {t['update_us_p50']:.1f} | {t['update_us_p99']:.1f} | "
                        f"{t['update_us_max']:.1f} | {t['update_mismatches']} | {acl} |")
if upd_rows:
    md += ["", "Single-rule updates in the trie: each of N rules erased then re-inserted, every operation timed; "
           "afterwards the whole trace is classified again and compared with the answers before (target: "
           "≤ 10 ms on the 100k sets; rte_acl has no in-place update, so its cost is a full rebuild):", "",
           "| set | operations | p50 µs | p99 µs | max µs | answers changed | rte_acl update |",
           "|---|---:|---:|---:|---:|---:|---|"] + upd_rows
md += ["", "![Mpps per set and engine](classify.png)", ""]
open(os.path.join(out_dir, "classify.md"), "w").write("\n".join(md))

# Plot data: one row per set, one column per engine (Mpps; '-' when missing).
engines = [e for e in ("trie", "rte_acl", "linear") if any(r["engine"] == e and r["status"] == "ok" for r in rows)]
with open(os.path.join(tmp, "plot.dat"), "w") as f:
    f.write("set " + " ".join(engines) + "\n")
    for s in sets:
        f.write(s + " " + " ".join(f"{get(s, e)['mpps']:.4f}" if get(s, e) else "-" for e in engines) + "\n")
open(os.path.join(tmp, "plot.engines"), "w").write(str(len(engines)))

bad = [r for r in rows if r["status"] == "failed" or (r.get("mismatches") or 0) > 0
       or (r.get("update_mismatches") or 0) > 0]
for r in rows:
    if r["status"] == "ok":
        extra = f", {r['mismatches']} mismatches vs {r['checked_against']}" if r["checked_against"] else ""
        print(f"  {r['set']:<10} {r['engine']:<8} build {r['build_ms']:9.1f} ms  mem {r['memory_bytes'] / 1e6:9.2f} MB  "
              f"{r['mpps']:8.2f} Mpps  {r['cycles_per_lookup']:8.1f} cyc{extra}")
    else:
        print(f"  {r['set']:<10} {r['engine']:<8} {r['status']}: {r.get('reason', '')}")
sys.exit(1 if bad else 0)
PY

n_engines=$(cat "$TMP/plot.engines" 2>/dev/null || echo 0)
if [ "$n_engines" -gt 0 ] && command -v gnuplot >/dev/null; then
    gnuplot <<EOF
set terminal pngcairo noenhanced size 1100,520 font "sans,10"
set output "$OUT_DIR/classify.png"
set title "tagwall classifier engines on ClassBench (single core, higher is better)"
set ylabel "lookups (Mpps, log scale)"
set logscale y
set style data histogram
set style histogram cluster gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set key top right
set grid ytics
set xtics rotate by -30
set datafile missing "-"
plot for [i=2:$((n_engines + 1))] "$TMP/plot.dat" using i:xtic(1) title columnheader(i)
EOF
    say "wrote $OUT_DIR/classify.md, classify.json, classify.png"
else
    say "wrote $OUT_DIR/classify.md, classify.json (no plot: install gnuplot-nox)"
fi
exit $status
