#!/usr/bin/env bash
# Runs every test the project has, as CI does: unit and end-to-end tests (gcc), the same under
# ASan+UBSan, a clang build with the libFuzzer targets (each fuzzed for FUZZ_SECONDS), and the
# clang-format check. Installs what it needs first (scripts/setup.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
FUZZ_SECONDS=${FUZZ_SECONDS:-30}
JOBS=$(nproc)
# No test executable runs for longer: a hang fails the run, naming the test, well within CI's
# time (the slowest, e2e, takes about 2 minutes here).
TEST_TIMEOUT=${TEST_TIMEOUT:-1800}

./scripts/setup.sh --no-build
# The tests' programs read no input but what a test gives them: whatever stdin CI has (a
# terminal, a pipe left open) must not hold one of them waiting.
exec </dev/null

step() { printf '\n=== %s\n' "$*"; }

step "layering: monitor/ folders include downwards only"
./scripts/check-layers.sh

step "gcc build and tests"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSBX_WERROR=ON >/dev/null
cmake --build build -j"$JOBS"
ctest --test-dir build --output-on-failure --timeout "$TEST_TIMEOUT"

step "gcc Release build (what a user builds; -O3 finds other warnings)"
cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release -DSBX_WERROR=ON -DSBX_TESTS=OFF >/dev/null
cmake --build build-release -j"$JOBS"

step "ASan+UBSan build and tests"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DSBX_SANITIZE=ON -DSBX_WERROR=ON >/dev/null
cmake --build build-asan -j"$JOBS"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
  LSAN_OPTIONS=suppressions=$PWD/tests/lsan.supp \
  ctest --test-dir build-asan --output-on-failure --timeout "$TEST_TIMEOUT"

step "clang build, fuzz targets and tests"
cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=clang \
  -DSBX_FUZZ=ON -DSBX_SAMPLES=ON -DSBX_WERROR=ON >/dev/null
cmake --build build-fuzz -j"$JOBS"
ctest --test-dir build-fuzz --output-on-failure --timeout "$TEST_TIMEOUT"
for f in build-fuzz/tests/fuzz/fuzz_*; do
  [ -x "$f" ] || continue
  name=$(basename "$f")
  corpus=$(mktemp -d)
  seeds=tests/data/${name#fuzz_}
  [ -d "$seeds" ] || seeds=
  [ "$name" = fuzz_elf ] && seeds=tests/data/elf
  step "fuzzing $name for ${FUZZ_SECONDS}s"
  "$f" -max_total_time="$FUZZ_SECONDS" -print_final_stats=1 "$corpus" $seeds 2>&1 |
    grep -E '^(stat::number_of_executed_units|stat::average_exec_per_sec|==[0-9]+==ERROR|SUMMARY)' || true
  test "${PIPESTATUS[0]}" -eq 0
  rm -rf "$corpus"
done

step "clang-format"
git ls-files '*.c' '*.h' | xargs clang-format --dry-run -Werror

echo
echo "all tests passed"
