#!/usr/bin/env bash
# The whole test suite: installs what is missing, builds, runs every ctest test, then the
# checkpoint tests again under ASan + UBSan (build-asan). Ends with the passed / failed / skipped
# counts, the skipped tests with their reasons, the tests the build left out, and the wall times.
# Extra arguments go to the main ctest run (e.g. -R distributed).
set -euo pipefail
cd "$(dirname "$0")/.."
suite_start=$(date +%s)
seconds_since() { echo $(($(date +%s) - $1)); }

./scripts/build.sh build
build_s=$(seconds_since "$suite_start")

# Tests declare their processors (OpenMP threads, mpirun ranks), so -j nproc never oversubscribes.
results="$PWD/build/ctest-results.xml"
rm -f "$results"
ctest_start=$(date +%s)
rc=0
ctest --test-dir build --output-on-failure -j "$(nproc)" --output-junit "$results" "$@" || rc=$?
ctest_s=$(seconds_since "$ctest_start")

# The checkpoint parser reads untrusted files: its tests run again under ASan + UBSan. Only that
# target is built there, unoptimised (a handful of files, under a minute; not the project twice);
# its command checks run the flashline binary of the main build.
asan_start=$(date +%s)
asan=build-asan
if [ ! -f "$asan/build.ninja" ]; then
  cmake -S . -B "$asan" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DFLASHLINE_SANITIZE=ON \
    -DFLASHLINE_CHECKPOINT_TEST_BIN="$PWD/build/launch/flashline"
fi
asan_results="$PWD/$asan/ctest-results.xml"
rm -f "$asan_results"
asan_rc=0
cmake --build "$asan" -j "$(nproc)" --target checkpoint_tests || asan_rc=$?
if ((asan_rc == 0)); then
  UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    ctest --test-dir "$asan" --output-on-failure -j "$(nproc)" -L checkpoint_sanitize --output-junit "$asan_results" ||
    asan_rc=$?
fi
asan_s=$(seconds_since "$asan_start")

echo
echo "== summary"
if [[ -f $results ]]; then
  python3 scripts/ctest_summary.py "$results" build/tests_left_out.txt
else
  echo "main run: no results (ctest exit $rc)"
fi
if [[ -f $asan_results ]]; then
  echo "under ASan + UBSan:"
  python3 scripts/ctest_summary.py "$asan_results"
else
  echo "under ASan + UBSan: not run (build exit $asan_rc)"
fi
echo "wall time: build ${build_s} s, tests ${ctest_s} s, ASan + UBSan ${asan_s} s, whole suite $(seconds_since "$suite_start") s"
((rc == 0 && asan_rc == 0))
