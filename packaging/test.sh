#!/usr/bin/env bash
# Builds TokenSelect and runs its tests; the README's test command and what .ci/run calls.
#
#   1. release  build/       Release, CUDA when nvcc is found, the app when Qt 6 is found;
#                            every ctest test ("100% tests passed, 0 tests failed out of N").
#   2. asan     build-asan/  ASan + UBSan, CPU only; unit tests (ctest -L unit).
#   3. fuzz     build-fuzz/  clang-14 libFuzzer targets fuzz_gguf and fuzz_tokenizer, each
#                            run for $TS_FUZZ_SECONDS on a copy of tests/fuzz/corpus/<name>.
#
# Usage: packaging/test.sh [--quick] [--no-asan] [--no-fuzz] [--only release|asan|fuzz]
#   --quick    only stage 1;  --only NAME  only that stage
# Env:   TS_JOBS (nproc), TS_FUZZ_SECONDS (60), TS_CUDA_ARCHS (the GPUs' archs, else 90),
#        TS_TEST_TIMEOUT (default per-test timeout in seconds, 1800)
# The e2e tests need the default model: packaging/fetch-model.sh.
set -euo pipefail
# shellcheck source=packaging/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
cd "$TS_ROOT"

WITH_RELEASE=1
WITH_ASAN=1
WITH_FUZZ=1
FUZZ_SECONDS="${TS_FUZZ_SECONDS:-60}"
TEST_TIMEOUT="${TS_TEST_TIMEOUT:-1800}"
FUZZ_TARGETS=(fuzz_gguf fuzz_tokenizer)

usage() { sed -n '2,14p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

bad_usage() { usage >&2; echo "test.sh: $*" >&2; exit 2; }
while [[ $# -gt 0 ]]; do
  case "$1" in
    --quick) WITH_ASAN=0; WITH_FUZZ=0 ;;
    --no-asan) WITH_ASAN=0 ;;
    --no-fuzz) WITH_FUZZ=0 ;;
    --only)
      [[ $# -ge 2 ]] || bad_usage "--only needs a stage name"
      WITH_RELEASE=0; WITH_ASAN=0; WITH_FUZZ=0
      case "$2" in
        release) WITH_RELEASE=1 ;;
        asan) WITH_ASAN=1 ;;
        fuzz) WITH_FUZZ=1 ;;
        *) bad_usage "unknown stage: $2" ;;
      esac
      shift ;;
    -h|--help) usage; exit 0 ;;
    *) bad_usage "unknown argument: $1" ;;
  esac
  shift
done

# run_ctest DIR TAG [ctest args]: runs ctest, keeps its output in DIR/ctest.log. A TAG prefixes
# ctest's summary line ("TAG: 100% tests passed, ...") so that the only untagged summary lines
# are the release stage's: CI reads that one (it is also the last line test.sh prints).
run_ctest() {
  local dir="$1" tag="$2"; shift 2
  local cmd=(ctest --test-dir "$dir" --output-on-failure -j"$TS_JOBS" --timeout "$TEST_TIMEOUT" "$@")
  echo "+ ${cmd[*]}"
  if [[ -n $tag ]]; then
    "${cmd[@]}" 2>&1 | tee "$dir/ctest.log" | sed -u -E "s/^([0-9]+% tests passed)/$tag: \1/"
  else
    "${cmd[@]}" 2>&1 | tee "$dir/ctest.log"
  fi
}

# The ctest summary line of build dir $1 ("100% tests passed, 0 tests failed out of N").
ctest_summary() {
  grep -E '^[0-9]+% tests passed' "$1/ctest.log" 2>/dev/null | tail -n1 || true
}

# --- 1. release build, all tests ----------------------------------------------------------
release_stage() {
  section "release: configure"
  [[ -f $TS_DEFAULT_MODEL ]] ||
    echo "warning: $TS_DEFAULT_MODEL is missing (packaging/fetch-model.sh); model tests will fail or skip"
  configure_main
  section "release: build"
  run cmake --build "$TS_BUILD_DIR" -j"$TS_JOBS"
  section "release: test"
  run_ctest "$TS_BUILD_DIR" ""
}

# --- 2. ASan + UBSan, unit tests ----------------------------------------------------------
asan_stage() {
  section "asan: configure"
  # shellcheck disable=SC2046
  run cmake -S . -B build-asan $(generator_args build-asan) \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTS_SANITIZE=ON -DTS_WITH_CUDA=OFF -DTS_BUILD_APP=OFF
  section "asan: build"
  run cmake --build build-asan -j"$TS_JOBS"
  section "asan: unit tests"
  ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}" \
  UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}" \
    run_ctest build-asan asan -L unit
}

# --- 3. libFuzzer targets -----------------------------------------------------------------
has_target() {
  # Read all of the help first: grep -q stopping early would SIGPIPE cmake and, under
  # pipefail, report "no target".
  local targets
  targets="$(cmake --build build-fuzz --target help 2>/dev/null)"
  grep -Eq "(^|[ .])$1(:| |$)" <<<"$targets"
}

# Runs fuzz target $1 for $FUZZ_SECONDS on a scratch copy of its seed corpus.
run_fuzzer() {
  local name="$1" bin corpus seeds dict=()
  bin="$(find build-fuzz -type f -name "$name" -perm -u+x | head -n1)"
  [[ -n $bin ]] || { echo "error: built $name but cannot find its binary" >&2; return 1; }
  corpus="$(mktemp -d "${TMPDIR:-/tmp}/ts-$name.XXXXXX")"
  for seeds in "tests/fuzz/corpus/$name" "tests/fuzz/corpus/${name#fuzz_}"; do
    if [[ -d $seeds ]]; then
      cp -r "$seeds"/. "$corpus"/
      echo "seed corpus: $seeds ($(find "$seeds" -type f | wc -l) files)"
      break
    fi
  done
  for f in "tests/fuzz/$name.dict" "tests/fuzz/${name#fuzz_}.dict"; do
    [[ -f $f ]] && dict=(-dict="$f") && break
  done
  mkdir -p build-fuzz/artifacts
  # libFuzzer prints a line per new input: keep that in a log, show only the end of it.
  local log="build-fuzz/$name.log" rc=0
  run "$bin" "${dict[@]}" -max_total_time="$FUZZ_SECONDS" -timeout=25 -rss_limit_mb=4096 \
    -print_final_stats=1 -artifact_prefix="build-fuzz/artifacts/$name-" "$corpus" \
    >"$log" 2>&1 || rc=$?
  rm -rf "$corpus"
  if [[ $rc != 0 ]]; then
    tail -n 100 "$log"
    echo "error: $name failed (exit $rc); full log: $log; crashing input: build-fuzz/artifacts/" >&2
    return "$rc"
  fi
  grep -E '^(Done|stat::)' "$log" || tail -n 5 "$log"
}

fuzz_stage() {
  section "fuzz: configure"
  if ! command -v clang++-14 >/dev/null; then
    echo "skipping the fuzz stage: clang++-14 not found (packaging/install-deps.sh)"
    return
  fi
  # shellcheck disable=SC2046
  CC=clang-14 CXX=clang++-14 run cmake -S . -B build-fuzz $(generator_args build-fuzz) \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTS_FUZZ=ON -DTS_WITH_CUDA=OFF -DTS_BUILD_APP=OFF \
    -DTS_BUILD_TESTS=ON
  local name found=()
  for name in "${FUZZ_TARGETS[@]}"; do
    if has_target "$name"; then found+=("$name"); else echo "no target $name: skipped"; fi
  done
  [[ ${#found[@]} -gt 0 ]] || return 0
  section "fuzz: build"
  run cmake --build build-fuzz -j"$TS_JOBS" --target "${found[@]}"
  for name in "${found[@]}"; do
    section "fuzz: $name (${FUZZ_SECONDS}s)"
    run_fuzzer "$name"
  done
}

[[ $WITH_RELEASE == 1 ]] && release_stage
[[ $WITH_ASAN == 1 ]] && asan_stage
[[ $WITH_FUZZ == 1 ]] && fuzz_stage
section_end
if command -v ccache >/dev/null; then
  echo "ccache: $(ccache -s 2>/dev/null | grep -iE 'hits|hit rate' | head -n1 | tr -s ' ' || true)"
fi
echo "test.sh: all stages passed"
[[ $WITH_ASAN == 1 ]] && echo "asan unit tests: $(ctest_summary build-asan)"
[[ $WITH_RELEASE == 1 ]] && ctest_summary "$TS_BUILD_DIR"
exit 0
