#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz (clang, AddressSanitizer + UndefinedBehaviorSanitizer) and
# runs each for a while on its seed corpus.  See `scripts/fuzz.sh --help`.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
ROOT=$(pwd)

ALL_TARGETS=(fuzz-packet fuzz-pipeline fuzz-policy fuzz-ctl fuzz-policy-pcap)

usage() {
    cat <<'EOF'
usage: scripts/fuzz.sh [options] SECONDS [TARGET...]

Runs each TARGET (default: all of them, one after the other) for SECONDS seconds under libFuzzer, with
AddressSanitizer and UndefinedBehaviorSanitizer, starting from its seed corpus tests/fuzz/corpus/TARGET
and its dictionary tests/fuzz/TARGET.dict.  The committed corpus is only read: the inputs libFuzzer finds
go to a scratch directory (--out).  Prints, per target, the executions, executions per second, the final
coverage (libFuzzer's cov: edges and ft: features), the corpus size and the crashes.

Targets (what each one feeds, and what it checks: the header comment of tests/fuzz/fuzz_*.cpp):
  fuzz-packet       one frame -> parser, SpoofGuard, connection table, reject answers
  fuzz-pipeline     a pcap -> the whole worker Pipeline (batched and per-packet paths compared)
  fuzz-policy       policy YAML -> `tagwall check` (load, compile, analysis), classifiers compared
  fuzz-ctl          control-socket bytes -> socket server -> command dispatcher of a live appliance
                    (starts the DPDK EAL without hugepages: run it as root)
  fuzz-policy-pcap  policy YAML + pcap -> replay, RCU publication mid-stream, re-verification

Any crash, sanitizer report, leak, timeout (an input slower than --timeout) or out-of-memory is a
failure: the input is saved under the scratch directory, the command that reproduces it is printed,
and the exit status is 1.  To keep a reproducer, copy it into tests/fuzz/corpus/TARGET/ as
regress-NAME (the `fuzz` runner of scripts/test.sh then replays it on every run).

options:
  --merge        afterwards, add the new inputs that increase coverage to tests/fuzz/corpus/TARGET
                 (libFuzzer -merge=1: only inputs with new features are copied; commit them)
  --out DIR      scratch directory (default: BUILD_DIR/fuzz-runs/DATE-TIME)
  --timeout S    an input running longer than S seconds is a failure (default 10)
  --no-build     do not configure or build (BUILD_DIR must hold the targets)
  -h, --help     this text

environment:
  BUILD_DIR    the clang sanitizer build (default build-asan; configured here when missing, with
               CC=clang CXX=clang++ meson setup -Dfuzz=true -Db_sanitize=address,undefined)
  NINJA_JOBS   parallel compile jobs (default 2)
  FUZZ_ARGS    extra libFuzzer flags, e.g. FUZZ_ARGS='-max_len=8192' or '-only_ascii=1'
  FUZZ_NICE    nice level of the fuzzers (default 10: they yield to builds and tests)

examples:
  scripts/fuzz.sh 60                       # every target, one minute each
  scripts/fuzz.sh 600 fuzz-policy          # ten minutes of the policy language
  scripts/fuzz.sh --merge 3600 fuzz-packet # an hour, then keep what found new coverage
  LSAN_OPTIONS=suppressions=tests/fuzz/lsan.supp build-asan/tests/fuzz/fuzz-packet CRASH
                                           # replay one input: the broken invariant or the sanitizer report
EOF
}

# Sanitizer behaviour for the fuzzers (the same as scripts/test.sh's `asan` and `fuzz` runners):
#   abort_on_error / halt_on_error: a report ends the process with a signal libFuzzer records as a crash;
#   detect_leaks: per input (libFuzzer's -detect_leaks) and at exit; DPDK's own start-up allocations,
#   which the EAL keeps until the process ends, are suppressed by tests/fuzz/lsan.supp;
#   UBSan: print_stacktrace, and -fno-sanitize-recover makes every report fatal.
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:halt_on_error=1:detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1:check_initialization_order=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$ROOT/tests/fuzz/lsan.supp:print_suppressions=0}

seconds=""
targets=()
merge=0
build=1
out=""
timeout_s=10
while [ $# -gt 0 ]; do
    case $1 in
        -h|--help) usage; exit 0 ;;
        --merge) merge=1 ;;
        --no-build) build=0 ;;
        --out) out=${2:?--out needs a directory}; shift ;;
        --timeout) timeout_s=${2:?--timeout needs seconds}; shift ;;
        -*) printf 'fuzz.sh: unknown option %s\n\n' "$1" >&2; usage >&2; exit 2 ;;
        *) if [ -z "$seconds" ]; then seconds=$1; else targets+=("$1"); fi ;;
    esac
    shift
done
if ! [[ "$seconds" =~ ^[0-9]+$ ]] || [ "$seconds" -eq 0 ]; then
    printf 'fuzz.sh: give the seconds per target (a positive integer)\n\n' >&2
    usage >&2
    exit 2
fi
[ ${#targets[@]} -eq 0 ] && targets=("${ALL_TARGETS[@]}")
for t in "${targets[@]}"; do
    [[ " ${ALL_TARGETS[*]} " == *" $t "* ]] || { echo "fuzz.sh: unknown target '$t' (${ALL_TARGETS[*]})" >&2; exit 2; }
done

BUILD_DIR=${BUILD_DIR:-build-asan}
case $BUILD_DIR in /*) ;; *) BUILD_DIR=$ROOT/$BUILD_DIR ;; esac

if [ "$build" = 1 ]; then
    if [ ! -f "$BUILD_DIR/build.ninja" ]; then
        command -v clang++ >/dev/null || { echo "fuzz.sh: clang++ is missing (scripts/setup.sh installs it)" >&2; exit 2; }
        CC=clang CXX=clang++ meson setup "$BUILD_DIR" --buildtype=debugoptimized -Dfuzz=true \
            -Db_sanitize=address,undefined -Db_lundef=false >/dev/null || exit 2
    fi
    ninja -C "$BUILD_DIR" -j"${NINJA_JOBS:-2}" "${targets[@]/#/tests/fuzz/}" || { echo "fuzz.sh: build failed" >&2; exit 2; }
fi

[ -n "$out" ] || out=$BUILD_DIR/fuzz-runs/$(date +%Y%m%d-%H%M%S)
mkdir -p "$out" || exit 2
out=$(cd "$out" && pwd)

# libFuzzer's last status line ("#N DONE cov: C ft: F corp: K/..."), and its -print_final_stats lines.
stat_of() { sed -n "s/^stat::$1: *//p" "$2" | tail -n 1; }
field_of() { grep -E '^#[0-9]+' "$2" | grep -oE "$1: [0-9]+" | tail -n 1 | grep -oE '[0-9]+'; }

failed=0
summary=()
for t in "${targets[@]}"; do
    bin=$BUILD_DIR/tests/fuzz/$t
    [ -x "$bin" ] || { echo "fuzz.sh: $bin is not built" >&2; failed=1; continue; }
    dir=$out/$t
    mkdir -p "$dir/corpus" "$dir/artifacts"
    dict=()
    [ -f "tests/fuzz/$t.dict" ] && dict=(-dict="$ROOT/tests/fuzz/$t.dict")
    log=$dir/fuzz.log
    echo "== $t: ${seconds}s, new inputs in $dir/corpus, log $log"
    rc=0
    # shellcheck disable=SC2086  # FUZZ_ARGS is a list of flags
    nice -n "${FUZZ_NICE:-10}" "$bin" "$dir/corpus" "$ROOT/tests/fuzz/corpus/$t" "${dict[@]}" \
        -max_total_time="$seconds" -timeout="$timeout_s" -rss_limit_mb=4096 -print_final_stats=1 \
        -artifact_prefix="$dir/artifacts/" ${FUZZ_ARGS:-} >"$log" 2>&1 || rc=$?
    execs=$(stat_of number_of_executed_units "$log")
    rate=$(stat_of average_exec_per_sec "$log")
    cov=$(field_of cov "$log")
    ft=$(field_of ft "$log")
    corp=$(grep -E '^#[0-9]+' "$log" | grep -oE 'corp: [0-9]+' | tail -n 1 | grep -oE '[0-9]+')
    mapfile -t crashes < <(find "$dir/artifacts" -type f | sort)
    line=$(printf '%-17s %10s execs %7s exec/s  cov %6s  ft %7s  corpus %5s  crashes %d' "$t" "${execs:-?}" \
        "${rate:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}" "${#crashes[@]}")
    if [ "$rc" -ne 0 ] || [ ${#crashes[@]} -gt 0 ]; then
        failed=1
        line="$line  FAILED (exit status $rc)"
        echo "$line"
        grep -E 'ERROR: |FUZZ INVARIANT|runtime error|SUMMARY' "$log" | head -n 8 | sed 's/^/    | /'
        for c in "${crashes[@]}"; do
            echo "    input: $c"
            echo "    reproduce: LSAN_OPTIONS=suppressions=$ROOT/tests/fuzz/lsan.supp $bin $c"
        done
        [ ${#crashes[@]} -eq 0 ] && echo "    (no input saved; see $log)"
    else
        echo "$line"
    fi
    summary+=("$line")
    if [ "$merge" = 1 ] && [ "$rc" -eq 0 ]; then
        before=$(find "tests/fuzz/corpus/$t" -type f | wc -l)
        nice -n "${FUZZ_NICE:-10}" "$bin" -merge=1 "${dict[@]}" "$ROOT/tests/fuzz/corpus/$t" "$dir/corpus" \
            >"$dir/merge.log" 2>&1 || echo "    merge failed: see $dir/merge.log"
        after=$(find "tests/fuzz/corpus/$t" -type f | wc -l)
        echo "    merged: $((after - before)) new inputs into tests/fuzz/corpus/$t"
    fi
done

echo
echo "== fuzz summary (${seconds}s per target; scratch $out)"
printf '%s\n' "${summary[@]}"
exit "$failed"
