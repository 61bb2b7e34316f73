#!/usr/bin/env bash
# Randomized differential test of the classifier engines, at a larger scale than the unit-test run:
# COUNT random rule sets (1..200 rules each, keys aimed at range edges) from SEED, every engine compared
# with the linear reference on every key.  It runs the "[diff]" test case of the unit-test binary, which
# reads TAGWALL_DIFF_COUNT and TAGWALL_DIFF_SEED; a failure names the engine, the set and the first key.
#
# usage: scripts/diff-classify.sh [COUNT [SEED]]     (default 2000 sets, seed from the clock, printed)
# environment: BUILD_DIR (default build), JOBS (ninja -j, default 2)
set -euo pipefail
cd "$(dirname "$0")/.."

case ${1:-} in -h|--help) sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;; esac
count=${1:-2000}
seed=${2:-$(date +%s)}
[[ $count =~ ^[0-9]+$ && $seed =~ ^[0-9]+$ ]] || { echo "diff-classify: COUNT and SEED are numbers" >&2; exit 2; }

BUILD_DIR=${BUILD_DIR:-build}
ninja -C "$BUILD_DIR" -j "${JOBS:-2}" tests/tagwall-unit-tests >&2
echo "diff-classify: $count random rule sets, seed $seed (replay: scripts/diff-classify.sh $count $seed)"
TAGWALL_DIFF_COUNT=$count TAGWALL_DIFF_SEED=$seed "$BUILD_DIR/tests/tagwall-unit-tests" '[diff]'
