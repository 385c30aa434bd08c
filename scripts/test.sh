#!/usr/bin/env bash
# The whole test suite: installs what is missing, builds, runs every ctest test.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/build.sh build
ctest --test-dir build --output-on-failure -j "$(nproc)" "$@"
