#!/usr/bin/env bash
# The whole test suite: installs what is missing, builds, runs every ctest test, then the
# checkpoint tests again under ASan + UBSan (build-asan).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/build.sh build
ctest --test-dir build --output-on-failure -j "$(nproc)" "$@"

# The checkpoint parser reads untrusted files: its tests run again under ASan + UBSan. Only that
# target is built there, unoptimised (a handful of files, under a minute; not the project twice);
# its command checks run the flashline binary of the main build.
asan=build-asan
if [ ! -f "$asan/build.ninja" ]; then
  cmake -S . -B "$asan" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DFLASHLINE_SANITIZE=ON \
    -DFLASHLINE_CHECKPOINT_TEST_BIN="$PWD/build/launch/flashline"
fi
cmake --build "$asan" -j "$(nproc)" --target checkpoint_tests
UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
  ctest --test-dir "$asan" --output-on-failure -j "$(nproc)" -L checkpoint_sanitize
