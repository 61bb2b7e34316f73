#!/usr/bin/env bash
# Builds tagwall and runs every test: the Catch2 unit tests, the command-line tests (tests/cli/*.sh),
# the pcap integration tests (pcaps/) and the end-to-end tests through network namespaces (tests/e2e/*.sh).
# Each runner is one run_* function.
#
# The LAST line of the output is always `tests: N passed, M failed`, counting every test case of every
# runner; the exit status is 0 only when nothing failed.
#
# Environment: BUILD_DIR (default ./build), and everything scripts/setup.sh honours (WERROR=1, BUILDTYPE,
# TAGWALL_SKIP_APT=1 ...).
# shellcheck disable=SC2317  # the run_* functions are called indirectly, as "run_$runner"
set -uo pipefail   # no -e: a failing test must not stop the run; every step checks its own status.
cd "$(dirname "$0")/.." || exit 2
ROOT=$(pwd)

usage() {
    cat <<'EOF'
usage: scripts/test.sh [--unit-only | --cli-only | --pcap-only | --e2e-only] [--no-setup] [FILTER...]

Sets up the machine (scripts/setup.sh: packages, hugepages, meson), builds with ninja, then runs:
  unit   the Catch2 binary build/tests/tagwall-unit-tests (every test case and section is counted)
  cli    every executable tests/cli/*.sh, one test case each (pass = exit 0)
  pcap   every pcaps/NNN-*.pcap replayed under pcaps/policy.yaml, its verdicts diffed against
         pcaps/NNN-*.verdicts (scripts/make-pcaps.py regenerates both), one test case each
  e2e    every executable tests/e2e/*.sh, one test case each: real traffic between network namespaces
         through `tagwall --config` (scripts/netns-lab.sh).  Needs root; without root or network
         namespaces every e2e test is counted as failed, with the reason

options:
  --unit-only   run only the unit tests
  --cli-only    run only the command-line tests
  --pcap-only   run only the pcap integration tests
  --e2e-only    run only the end-to-end tests
  --no-setup    skip scripts/setup.sh (the build directory must already be configured)
  FILTER...     Catch2 test spec(s), e.g. '[loader]' or 'Prefix*'; implies --unit-only
  -h, --help    this text

environment: BUILD_DIR (default build), WERROR=1, BUILDTYPE, TAGWALL_SKIP_APT=1 (see scripts/setup.sh)
The last line printed is always `tests: N passed, M failed`.
EOF
}

# ---------------------------------------------------------------------------------------------------
# Options

runners=(unit cli pcap e2e)
do_setup=1
filters=()
while [ $# -gt 0 ]; do
    case $1 in
        -h|--help) usage; exit 0 ;;
        --unit-only) runners=(unit) ;;
        --cli-only) runners=(cli) ;;
        --pcap-only) runners=(pcap) ;;
        --e2e-only) runners=(e2e) ;;
        --no-setup) do_setup=0 ;;
        --) shift; filters+=("$@"); break ;;
        -*) printf 'test.sh: unknown option %s\n\n' "$1" >&2; usage >&2; exit 2 ;;
        *) filters+=("$1") ;;
    esac
    shift
done
[ ${#filters[@]} -gt 0 ] && runners=(unit)

BUILD_DIR=${BUILD_DIR:-build}
case $BUILD_DIR in /*) ;; *) BUILD_DIR=$ROOT/$BUILD_DIR ;; esac
export BUILD_DIR
RESULTS_DIR=$BUILD_DIR/test-results

# ---------------------------------------------------------------------------------------------------
# Totals.  Every runner reports through `record`; `finish` prints the final line and exits.

total_passed=0
total_failed=0
summary=()

say() { printf '%s\n' "$*"; }
banner() { printf '\n==== %s ====\n' "$*"; }

# record RUNNER PASSED FAILED [NOTE]
record() {
    total_passed=$((total_passed + $2))
    total_failed=$((total_failed + $3))
    summary+=("$(printf '  %-6s %4d passed, %4d failed%s' "$1" "$2" "$3" "${4:+  ($4)}")")
}

finish() {
    if [ ${#summary[@]} -gt 0 ]; then
        banner summary
        printf '%s\n' "${summary[@]}"
    fi
    echo "tests: $total_passed passed, $total_failed failed"
    if [ "$total_failed" -eq 0 ]; then exit 0; fi
    exit 1
}

# Prints the last lines of a file, indented, for failure reports.
show_tail() {
    local file=$1 lines=${2:-40}
    [ -s "$file" ] || { say "    (no output)"; return; }
    tail -n "$lines" "$file" | sed 's/^/    | /'
}

# ---------------------------------------------------------------------------------------------------
# Setup and build.  A failure here is one failed test, so that CI still gets its final line.

setup_and_build() {
    if [ "$do_setup" = 1 ]; then
        banner setup
        if ! ./scripts/setup.sh; then
            say "setup failed; see its output above"
            record setup 0 1 "scripts/setup.sh failed"
            finish
        fi
    fi
    banner "build ($BUILD_DIR)"
    if ! ninja -C "$BUILD_DIR" -j2; then
        say "build failed; see the compiler output above"
        record build 0 1 "ninja failed"
        finish
    fi
}

# ---------------------------------------------------------------------------------------------------
# Runner: Catch2 unit tests, counted from the JUnit report (a test case with SECTIONs yields one
# <testcase> per leaf section; each is counted).

# Parses a JUnit file; prints "PASSED FAILED SKIPPED" on the first line, then a short report of each
# failure.  Exit status 1 when the file is missing or is not well-formed XML.
parse_junit() {
    /usr/bin/python3 - "$1" <<'EOF'
import sys
import xml.etree.ElementTree as ET

try:
    root = ET.parse(sys.argv[1]).getroot()
except (OSError, ET.ParseError) as e:
    print(f"cannot read the JUnit report: {e}", file=sys.stderr)
    sys.exit(1)
passed = failed = skipped = 0
report = []
for tc in root.iter("testcase"):
    bad = [c for c in tc if c.tag in ("failure", "error")]
    if not bad:
        passed += 1
        skipped += any(c.tag == "skipped" for c in tc)
        continue
    failed += 1
    report.append(f"FAIL {tc.get('name', '?')}")
    for c in bad[:3]:
        lines = [l.rstrip() for l in (c.text or c.get("message") or "").strip().splitlines() if l.strip()]
        report += ["    | " + l for l in lines[:12]]
    if len(bad) > 3:
        report.append(f"    | ... and {len(bad) - 3} more failures in this test case")
print(passed, failed, skipped)
print("\n".join(report))
EOF
}

run_unit() {
    banner unit
    local bin=$BUILD_DIR/tests/tagwall-unit-tests
    local report=$RESULTS_DIR/unit.junit.xml out=$RESULTS_DIR/unit.out
    if [ ! -x "$bin" ]; then
        say "FAIL unit: $bin was not built"
        record unit 0 1 "binary missing"
        return
    fi
    rm -f "$report"
    local rc=0
    # --warn NoTests: a filter that matches nothing is an error (exit 2), not a silent success.
    # (the outer 2>> catches the shell's own "Segmentation fault" notice, so that it lands in the log)
    { timeout 900 "$bin" --warn NoTests -r junit -o "$report" "${filters[@]}" >"$out" 2>&1; } 2>>"$out" || rc=$?

    # Catch2's JUnit reporter writes its report when the run ends, so a readable report means the run
    # completed; no report means the binary crashed, was killed or timed out (124).
    local parsed passed failed skipped note=""
    if ! parsed=$(parse_junit "$report" 2>>"$out"); then
        say "FAIL unit: tagwall-unit-tests stopped with status $rc before writing its report" \
            "(crash, signal or timeout); its output ends with:"
        show_tail "$out"
        record unit 0 1 "crashed, exit status $rc"
        return
    fi
    read -r passed failed skipped <<<"$(head -n 1 <<<"$parsed")"
    tail -n +2 <<<"$parsed"
    [ "$skipped" -gt 0 ] && note="$skipped skipped, counted as passed"
    if [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; then
        # Catch2 also exits non-zero on a bad command line or when no test case matched the filter.
        if [ $((passed + failed)) -eq 0 ] && [ ${#filters[@]} -gt 0 ]; then
            say "FAIL unit: no test case matches ${filters[*]} (list them: $bin --list-tests)"
        else
            say "FAIL unit: tagwall-unit-tests exited with status $rc without a failing test case; output:"
            show_tail "$out"
        fi
        failed=1
        note="exited with status $rc"
    elif [ "$failed" -gt 0 ]; then
        say "(JUnit report: $report; test output: $out)"
    fi
    say "unit: $passed passed, $failed failed"
    record unit "$passed" "$failed" "$note"
}

# ---------------------------------------------------------------------------------------------------
# Runner: command-line tests.  Each executable tests/cli/*.sh is one test case; it gets TAGWALL_BIN
# (the tagwall binary) and TAGWALL_ROOT (the repository root) and passes by exiting 0.

# run_scripts RUNNER TAIL SCRIPT...: each executable SCRIPT is one test case (pass = exit 0, 300 s at
# most), run with TAGWALL_BIN and TAGWALL_ROOT; a failure shows the last TAIL lines of its output.
run_scripts() {
    local runner=$1 tail_lines=$2 passed=0 failed=0 t name out rc
    shift 2
    export TAGWALL_BIN=$BUILD_DIR/src/tools/tagwall TAGWALL_ROOT=$ROOT
    out=$(mktemp)
    for t in "$@"; do
        name=$(basename "$t" .sh)
        if [ ! -x "$t" ]; then
            say "FAIL $name: $t is not executable (chmod +x, and commit the mode)"
            failed=$((failed + 1))
            continue
        fi
        rc=0
        # A test stopped by the timeout still cleans up (its EXIT trap runs on SIGTERM).
        timeout 300 "$t" >"$out" 2>&1 </dev/null || rc=$?
        if [ "$rc" -eq 0 ]; then
            say "PASS $name"
            passed=$((passed + 1))
        else
            say "FAIL $name (exit status $rc):"
            show_tail "$out" "$tail_lines"
            failed=$((failed + 1))
        fi
    done
    rm -f "$out"
    record "$runner" "$passed" "$failed"
}

run_cli() {
    banner cli
    local t tests=()
    for t in tests/cli/*.sh; do [ -e "$t" ] && tests+=("$t"); done
    run_scripts cli 60 "${tests[@]}"
}

# ---------------------------------------------------------------------------------------------------
# Runner: pcap integration tests.  Each pcaps/NNN-*.pcap is one test case: it is replayed through the
# worker pipeline under pcaps/policy.yaml and the verdict of every packet is diffed against
# pcaps/NNN-*.verdicts (written with the pcap by scripts/make-pcaps.py, reasoned by hand).

run_pcap() {
    banner pcap
    local passed=0 failed=0 f name expected got err rc
    local bench=$BUILD_DIR/src/tools/tagwall-bench
    if [ ! -x "$bench" ]; then
        say "FAIL pcap: $bench was not built"
        record pcap 0 1 "tagwall-bench missing"
        return
    fi
    got=$(mktemp)
    err=$(mktemp)
    for f in pcaps/[0-9][0-9][0-9]-*.pcap; do
        [ -e "$f" ] || continue
        name=$(basename "$f" .pcap)
        expected=${f%.pcap}.verdicts
        if [ ! -f "$expected" ]; then
            say "FAIL $name: $expected is missing (scripts/make-pcaps.py writes it)"
            failed=$((failed + 1))
            continue
        fi
        rc=0
        : >"$got"
        timeout 120 "$bench" replay --policy pcaps/policy.yaml --pcap "$f" --verdicts "$got" >"$err" 2>&1 </dev/null || rc=$?
        if [ "$rc" -ne 0 ]; then
            say "FAIL $name (tagwall-bench replay exit status $rc):"
            show_tail "$err" 20
            failed=$((failed + 1))
        elif diff -u --label "$expected" --label "replay verdicts" "$expected" "$got" >"$err" 2>&1; then
            say "PASS $name"
            passed=$((passed + 1))
        else
            say "FAIL $name: verdicts differ (- expected, + tagwall):"
            show_tail "$err" 60
            failed=$((failed + 1))
        fi
    done
    # The adversarial suite (scripts/make-adversarial-pcaps.py), under pcaps/adversarial/policy.yaml:
    # each pcaps/adversarial/NNN-*.pcap is one test case.  Its verdicts are compared with NNN-*.verdicts
    # (a first line `# partial: ...` limits the comparison to the packets listed), the `reasons` object
    # of `replay --json` with NNN-*.reasons exactly (every non-zero counter, nothing else), and each key
    # of NNN-*.stats, when there is one, with the same key of the JSON.
    local json
    json=$(mktemp)
    for f in pcaps/adversarial/[0-9][0-9][0-9]-*.pcap; do
        [ -e "$f" ] || continue
        name=adversarial/$(basename "$f" .pcap)
        expected=${f%.pcap}.verdicts
        if [ ! -f "$expected" ]; then
            say "FAIL $name: $expected is missing (scripts/make-adversarial-pcaps.py writes it)"
            failed=$((failed + 1))
            continue
        fi
        rc=0
        : >"$got"
        timeout 120 "$bench" replay --policy pcaps/adversarial/policy.yaml --pcap "$f" --json --verdicts "$got" \
            >"$json" 2>"$err" </dev/null || rc=$?
        if [ "$rc" -ne 0 ]; then
            say "FAIL $name (tagwall-bench replay exit status $rc):"
            show_tail "$err" 20
            failed=$((failed + 1))
        elif /usr/bin/python3 - "${f%.pcap}" "$got" "$json" >"$err" 2>&1 <<'EOF'
import difflib
import json
import os
import sys

base, got_path, json_path = sys.argv[1:]
ok = True


def report(title, lines):
    global ok
    ok = False
    print(title)
    print("\n".join(lines))


def lines_of(obj):
    return [f"{k}: {json.dumps(v, sort_keys=True)}" for k, v in sorted(obj.items())]


expected = open(base + ".verdicts").read().splitlines()
got = open(got_path).read().splitlines()
if expected and expected[0].startswith("# partial"):
    # Only the packets listed (PORT INDEX names one).
    by_packet = {tuple(line.split()[:2]): line for line in got}
    expected = [line for line in expected[1:] if line.strip()]
    got = [by_packet.get(tuple(line.split()[:2]), " ".join(line.split()[:2]) + " (no verdict)") for line in expected]
if expected != got:
    report("verdicts differ (- expected, + tagwall):",
           list(difflib.unified_diff(expected, got, base + ".verdicts", "replay verdicts", lineterm="", n=2))[:60])
replay = json.load(open(json_path))
if os.path.exists(base + ".reasons"):
    want, have = json.load(open(base + ".reasons")), replay.get("reasons", {})
    if want != have:
        report("reason counters differ (- expected, + tagwall):",
               list(difflib.unified_diff(lines_of(want), lines_of(have), base + ".reasons", "replay reasons",
                                         lineterm="", n=99)))
if os.path.exists(base + ".stats"):
    want = json.load(open(base + ".stats"))
    have = {k: replay.get(k) for k in want}
    if want != have:
        report("replay statistics differ (- expected, + tagwall):",
               list(difflib.unified_diff(lines_of(want), lines_of(have), base + ".stats", "replay --json",
                                         lineterm="", n=99)))
sys.exit(0 if ok else 1)
EOF
        then
            say "PASS $name"
            passed=$((passed + 1))
        else
            say "FAIL $name:"
            show_tail "$err" 80
            failed=$((failed + 1))
        fi
    done
    rm -f "$got" "$err" "$json"
    if [ $((passed + failed)) -eq 0 ]; then
        say "FAIL pcap: no pcaps/NNN-*.pcap found"
        failed=1
    fi
    record pcap "$passed" "$failed"
}

# ---------------------------------------------------------------------------------------------------
# Runner: end-to-end tests.  Each executable tests/e2e/*.sh is one test case (pass = exit 0): it builds a
# lab of network namespaces (scripts/netns-lab.sh), runs `tagwall --config` on the lab's veths, sends real
# traffic and tears everything down.  It gets TAGWALL_BIN and TAGWALL_ROOT, like the cli tests.

# Why this machine cannot run the e2e tests; empty when it can.
e2e_unavailable() {
    [ "$(id -u)" -eq 0 ] || { echo "not root: the e2e tests need root (network namespaces, af_packet)"; return; }
    command -v ip >/dev/null || { echo "ip (iproute2) is not installed"; return; }
    # Creating one is the real test (a container without CAP_SYS_ADMIN can list but not create).
    local probe=twprobe$$
    if ! ip netns add "$probe" 2>/dev/null; then echo "cannot create a network namespace (ip netns add)"; return; fi
    ip netns del "$probe"
}

run_e2e() {
    banner e2e
    local t why tests=()
    for t in tests/e2e/*.sh; do [ -e "$t" ] && tests+=("$t"); done
    if [ ${#tests[@]} -eq 0 ]; then
        say "FAIL e2e: no tests/e2e/*.sh found"
        record e2e 0 1
        return
    fi
    # Not skipped: a run that could not exercise the dataplane must not look green.
    why=$(e2e_unavailable)
    if [ -n "$why" ]; then
        for t in "${tests[@]}"; do say "FAIL $(basename "$t" .sh): not run: $why"; done
        record e2e 0 ${#tests[@]} "not run: $why"
        return
    fi
    run_scripts e2e 80 "${tests[@]}"
}

# ---------------------------------------------------------------------------------------------------

setup_and_build
mkdir -p "$RESULTS_DIR"
for runner in "${runners[@]}"; do
    "run_$runner"
done
finish
