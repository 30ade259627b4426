#!/usr/bin/env bash
# Runs the libFuzzer targets of tests/fuzz (issue 8), each for SECONDS
# (default 30), on a copy of its seed corpus in a temporary directory (the
# repository's corpus does not grow). Builds them first (build-asan, clang,
# ASan + UBSan: the directory scripts/test-sanitize.sh uses) when needed.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]      (no TARGET: every target)
#
# FUZZ_JOBS=N runs N targets at a time (default 1). Prints per target the
# executions, exec/s, final coverage (cov: edges, ft: features), corpus size
# and, for a finding, the saved input (kept in $FUZZ_ARTIFACTS, default
# build-asan/fuzz-artifacts). A finding: minimise it (the target binary with
# -minimize_crash=1 -runs=10000 FILE), fix the bug, and add the input to
# tests/fuzz/corpus/TARGET/ as crash-<what>: every build's fuzz_corpus_TARGET
# test then replays it. Exits non-zero when any target found something.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
seconds="${1:-30}"
[ $# -gt 0 ] && shift
build_dir="${SANITIZE_BUILD_DIR:-build-asan}"
artifacts="${FUZZ_ARTIFACTS:-$root/$build_dir/fuzz-artifacts}"
fuzz_jobs="${FUZZ_JOBS:-1}"
all_targets=(job_config record_fields http_json_decode kserve_v2_decode openai_decode prometheus_text
             snapshot_codec call_log)
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=("${all_targets[@]}")

# Longest input per target: enough for a real config or answer with room to
# mutate; longer inputs only slow every execution down.
max_len_of() {
  case "$1" in
    job_config|http_json_decode|kserve_v2_decode|openai_decode|prometheus_text) echo 8192 ;;
    *) echo 4096 ;;
  esac
}

# Tokens of each target's input language (tests/fuzz/*.dict): mutations
# that insert a whole keyword reach deeper than byte flips alone.
dict_of() {
  case "$1" in
    job_config) echo tests/fuzz/job_config.dict ;;
    record_fields) echo tests/fuzz/json.dict ;;
    *_decode) echo tests/fuzz/decode.dict ;;
    prometheus_text) echo tests/fuzz/prometheus_text.dict ;;
  esac
}

for t in "${targets[@]}"; do
  if [[ ! " ${all_targets[*]} " =~ " $t " ]]; then
    echo "fuzz.sh: unknown target '$t' (known: ${all_targets[*]})" >&2
    exit 2
  fi
done

scripts/install-deps.sh
if [ ! -f "$build_dir/CMakeCache.txt" ]; then
  cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++ \
    -DSINFER_FUZZ=ON -DSINFER_BUILD_BENCH=OFF >/dev/null
fi
cmake --build "$build_dir" -j"$(nproc)" --target "${targets[@]/#/fuzz_}" >&2

work="$(mktemp -d "${TMPDIR:-/tmp}/sinfer-fuzz.XXXXXX")"
trap 'rm -rf "$work"' EXIT
mkdir -p "$artifacts"
export ASAN_OPTIONS="halt_on_error=1:detect_leaks=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"

run_one() {
  local t="$1"
  mkdir -p "$work/$t/corpus"
  cp -r "tests/fuzz/corpus/$t/." "$work/$t/corpus/"
  local cmd=("$build_dir/fuzz/fuzz_$t" "$work/$t/corpus" -max_total_time="$seconds" -max_len="$(max_len_of "$t")"
             -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$artifacts/$t-")
  local dict
  dict="$(dict_of "$t")"
  [ -z "$dict" ] || cmd+=(-dict="$dict")
  echo "${cmd[*]}" > "$work/$t/command"
  local rc=0
  "${cmd[@]}" > "$work/$t/log" 2>&1 || rc=$?
  echo "$rc" > "$work/$t/rc"
}

summary() {
  local t="$1" log="$work/$1/log" rc
  rc="$(cat "$work/$t/rc")"
  local execs rate cov ft corp found
  execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)"
  rate="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)"
  cov="$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)"
  ft="$(grep -o 'ft: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)"
  corp="$(grep -o 'corp: [0-9]*/[0-9]*[a-zA-Z]*' "$log" | tail -1 | cut -d' ' -f2)"
  printf '%-18s execs %-10s exec/s %-7s cov %-6s ft %-7s corpus %-12s' "$t" "${execs:-?}" "${rate:-?}" \
    "${cov:-?}" "${ft:-?}" "${corp:-?}"
  if [ "$rc" = 0 ]; then
    echo " ok"
  else
    found="$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -1)"
    echo " FAILED (exit $rc)${found:+; input saved as $found}"
    echo "--- $t: $(cat "$work/$t/command")" >&2
    grep -v '^#[0-9]' "$log" | tail -40 >&2
  fi
}

echo "fuzz.sh: ${#targets[@]} targets, ${seconds} s each, $fuzz_jobs at a time" >&2
running=0
for t in "${targets[@]}"; do
  run_one "$t" &
  running=$((running + 1))
  if [ "$running" -ge "$fuzz_jobs" ]; then
    wait -n || true
    running=$((running - 1))
  fi
done
wait || true

failed=0
for t in "${targets[@]}"; do
  summary "$t"
  [ "$(cat "$work/$t/rc")" = 0 ] || failed=1
done
exit "$failed"
