#!/usr/bin/env bash
# The sanitizer build (issue 8): configures build-asan with clang,
# AddressSanitizer + UndefinedBehaviorSanitizer (+ LeakSanitizer) and
# libFuzzer's coverage hooks (SINFER_FUZZ: the same directory then holds the
# fuzz targets scripts/fuzz.sh runs, so the library is compiled once for
# both), builds it, and runs the test suites under it.
#
#   scripts/test-sanitize.sh [CTEST_ARGS...]
#
# Every suite runs (tests/sanitize/README.md: times, and what is exempt and
# why); SANITIZE_EXCLUDE, a ctest -E regex, leaves suites out. Each suite
# gets SANITIZE_TIMEOUT seconds (default 600; the slowest, sim, takes about
# 110 s here): a hang fails the run instead of stalling CI. The benchmarks
# are not built. JOBS sets the build and ctest parallelism (default: nproc).
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir="${SANITIZE_BUILD_DIR:-build-asan}"
jobs="${JOBS:-$(nproc)}"
scripts/install-deps.sh
if [ ! -f "$build_dir/CMakeCache.txt" ]; then
  cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++ \
    -DSINFER_FUZZ=ON -DSINFER_BUILD_BENCH=OFF >/dev/null
fi
start=$SECONDS
cmake --build "$build_dir" -j"$jobs" >&2
echo "test-sanitize: build took $((SECONDS - start)) s" >&2

# halt_on_error: the first error fails the test (no "recovered" reports
# scrolling past); detect_leaks: LeakSanitizer at every process exit (the
# suites' own and the sinfer processes they start; no suppressions needed);
# the initialisation-order and stack-use-after-return checks are off by
# default. The options reach the sinfer binaries the suites run.
export ASAN_OPTIONS="halt_on_error=1:detect_leaks=1:strict_init_order=1:check_initialization_order=1:detect_stack_use_after_return=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
exclude=()
if [ -n "${SANITIZE_EXCLUDE:-}" ]; then
  exclude=(-E "$SANITIZE_EXCLUDE")
fi
start=$SECONDS
cd "$build_dir"
ctest --output-on-failure -j"$jobs" --timeout "${SANITIZE_TIMEOUT:-600}" "${exclude[@]}" "$@"
echo "test-sanitize: tests took $((SECONDS - start)) s" >&2
