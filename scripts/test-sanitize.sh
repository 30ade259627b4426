#!/usr/bin/env bash
# The sanitizer build (issue 8): configures build-asan with clang,
# AddressSanitizer + UndefinedBehaviorSanitizer (+ LeakSanitizer) and
# libFuzzer's coverage hooks (SINFER_FUZZ: the same directory then holds the
# fuzz targets scripts/fuzz.sh runs, so the library is compiled once for
# both), builds it, and runs the test suites under it.
#
#   scripts/test-sanitize.sh [CTEST_ARGS...]
#
# Suites left out (SANITIZE_EXCLUDE, a ctest -E regex; see tests/sanitize/README.md
# for why each one): none fit badly enough to skip by default. The benchmarks
# are not built. JOBS sets the build and ctest parallelism (default: nproc).
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
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
# scrolling past); detect_leaks: LeakSanitizer at every process exit (it
# works in this container; tests/sanitize/lsan.supp lists what is not ours).
export ASAN_OPTIONS="halt_on_error=1:abort_on_error=0:detect_leaks=1:strict_init_order=1:check_initialization_order=1:detect_stack_use_after_return=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
export LSAN_OPTIONS="suppressions=$root/tests/sanitize/lsan.supp:print_suppressions=0${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
exclude=()
if [ -n "${SANITIZE_EXCLUDE:-}" ]; then
  exclude=(-E "$SANITIZE_EXCLUDE")
fi
start=$SECONDS
cd "$build_dir"
ctest --output-on-failure -j"$jobs" "${exclude[@]}" "$@"
echo "test-sanitize: tests took $((SECONDS - start)) s" >&2
