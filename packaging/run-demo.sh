#!/usr/bin/env bash
# One command from a fresh checkout to an answer: installs the dependencies, fetches the default
# model, builds the `tokenselect` tool and asks it a question about the Book of Genesis
# (~57k tokens, seven times the model's trained context) with TokenSelect attention.
#
# Usage: packaging/run-demo.sh [tokenselect run options...]
#   Options are passed to `tokenselect run`; --model, --doc and --prompt replace the defaults,
#   e.g.  packaging/run-demo.sh --doc assets/docs/short-story.txt --prompt "Who is the keeper?"
# Env:   TS_SKIP_SETUP=1  skip install-deps/fetch-model;  TS_JOBS, TS_CUDA_ARCHS as in test.sh
set -euo pipefail
# shellcheck source=packaging/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
cd "$TS_ROOT"

DEFAULT_DOC="assets/docs/genesis-kjv.txt"
DEFAULT_PROMPT="According to the text, how old was Joseph when he died?"
CLI="$TS_BUILD_DIR/app/cli/tokenselect"

case "${1:-}" in -h|--help) sed -n '2,9p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;; esac

# True when the caller passed option $1 (as "--opt value" or "--opt=value").
has_option() {
  local want="$1" a
  for a in "${USER_ARGS[@]}"; do
    [[ $a == "$want" || $a == "$want="* ]] && return 0
  done
  return 1
}
USER_ARGS=("$@")

if [[ ${TS_SKIP_SETUP:-0} != 1 ]]; then
  section "dependencies"
  packaging/install-deps.sh
  section "model"
  packaging/fetch-model.sh
fi

section "build tokenselect"
if [[ -f $TS_BUILD_DIR/CMakeCache.txt ]]; then
  echo "using the existing configuration in $TS_BUILD_DIR/"
else
  configure_main
fi
run cmake --build "$TS_BUILD_DIR" -j"$TS_JOBS" --target tokenselect
[[ -x $CLI ]] || { echo "run-demo: built, but $CLI is missing" >&2; exit 1; }

args=(run)
has_option --model || args+=(--model "$TS_DEFAULT_MODEL")
has_option --doc || args+=(--doc "$DEFAULT_DOC")
has_option --prompt || args+=(--prompt "$DEFAULT_PROMPT")
args+=("${USER_ARGS[@]}")

section "demo"
rc=0
run "$CLI" "${args[@]}" || rc=$?
section_end
exit "$rc"
