# Shared helpers for packaging/test.sh and packaging/run-demo.sh (sourced, not run).
# shellcheck shell=bash disable=SC2034

TS_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TS_JOBS="${TS_JOBS:-$(nproc)}"
TS_BUILD_DIR="${TS_BUILD_DIR:-build}"
TS_DEFAULT_MODEL="assets/models/SmolLM2-135M-Instruct.Q4_1.gguf"

# Prints a section header and remembers when the section started; ends the previous one.
_ts_section_name=""
_ts_section_start=0
section() {
  section_end
  _ts_section_name="$1"
  _ts_section_start=$SECONDS
  printf '\n==== %s ====\n' "$1"
}
section_end() {
  if [[ -n $_ts_section_name ]]; then
    printf '==== %s: done in %ss ====\n' "$_ts_section_name" $((SECONDS - _ts_section_start))
    _ts_section_name=""
  fi
}

# Prints a command, then runs it.
run() {
  echo "+ $*"
  "$@"
}

# Puts a CUDA toolkit that is installed but not on PATH (the usual /usr/local/cuda) on PATH, so
# that CMake's CUDA detection finds nvcc.
find_cuda() {
  if ! command -v nvcc >/dev/null && [[ -x /usr/local/cuda/bin/nvcc ]]; then
    export PATH="/usr/local/cuda/bin:$PATH"
  fi
}

# CUDA architectures to build for: $TS_CUDA_ARCHS, else those of the GPUs present (9.0 -> 90),
# else 90.
cuda_archs() {
  if [[ -n ${TS_CUDA_ARCHS:-} ]]; then
    echo "$TS_CUDA_ARCHS"
    return
  fi
  local caps=""
  if command -v nvidia-smi >/dev/null; then
    caps="$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null |
      tr -d ' .' | grep -E '^[0-9]+$' | sort -u | paste -sd';' || true)"
  fi
  echo "${caps:-90}"
}

# Generator arguments for a new build directory: Ninja when available. An existing build
# directory keeps the generator it was configured with.
generator_args() {
  if [[ ! -f $1/CMakeCache.txt ]] && command -v ninja >/dev/null; then
    echo "-G Ninja"
  fi
}

# Configures the main (Release, CUDA when available, app when Qt 6 is found) build.
# shellcheck disable=SC2120
configure_main() {
  find_cuda
  # shellcheck disable=SC2046
  run cmake -S . -B "$TS_BUILD_DIR" $(generator_args "$TS_BUILD_DIR") \
    -DCMAKE_BUILD_TYPE=Release \
    -DTS_BUILD_APP="${TS_BUILD_APP:-AUTO}" \
    -DCMAKE_CUDA_ARCHITECTURES="$(cuda_archs)" \
    "$@"
}
