#!/usr/bin/env bash
# Runs the real tokenselect-chat under Xvfb and drives it as a person would: the default model
# opens by itself, a document is opened the way a file manager passes one, the question is typed
# (xdotool) and sent with Enter. Saves screenshots mid-answer and after the answer.
#
# Usage: tests/app/screenshot.sh [OUT_DIR] [BUILD_DIR]
#   OUT_DIR    where the PNGs go (default /tmp): tokenselect-chat-mid-answer.png, -answered.png
#   BUILD_DIR  a build with the app and the tests (default build)
# Env:   TS_SHOT_DOC       the document (default: the first ~11k tokens of Genesis)
#        TS_SHOT_QUESTION  the question
# Needs: xvfb and xdotool (packaging/install-deps.sh --with-app), the default model.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
OUT="$(realpath -m "${1:-/tmp}")"
BUILD="$(realpath -m "${2:-$ROOT/build}")"
APP="$BUILD/app/desktop/tokenselect-chat"
GRAB="$BUILD/tests/app/ts_screen_grab"
QUESTION="${TS_SHOT_QUESTION:-How old was Noah when the flood came?}"
for f in "$APP" "$GRAB"; do [[ -x $f ]] || { echo "screenshot.sh: missing $f (build the app and its tests)" >&2; exit 1; }; done
for t in Xvfb xdotool; do command -v $t >/dev/null || { echo "screenshot.sh: $t not found (packaging/install-deps.sh --with-app)" >&2; exit 1; }; done
mkdir -p "$OUT"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/ts-shot.XXXXXX")"
PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

DOC="${TS_SHOT_DOC:-}"
if [[ -z $DOC ]]; then
  DOC="$WORK/genesis-1-11.txt"
  head -c 40000 "$ROOT/assets/docs/genesis-kjv.txt" | sed '$d' >"$DOC"  # whole lines only
fi

# A display of our own: the first free number from 90.
N=90
while [[ -e /tmp/.X11-unix/X$N || -e /tmp/.X$N-lock ]]; do N=$((N + 1)); done
Xvfb ":$N" -screen 0 1600x1000x24 -nolisten tcp >"$WORK/xvfb.log" 2>&1 &
PIDS+=($!)
export DISPLAY=":$N"
for _ in $(seq 50); do xdotool getdisplaygeometry >/dev/null 2>&1 && break; sleep 0.1; done

# Fresh settings (not the user's): two threads, answers of at most 200 tokens.
export XDG_CONFIG_HOME="$WORK/config"
mkdir -p "$XDG_CONFIG_HOME/TokenSelect"
printf '[session]\nthreads=2\n[generation]\nmaxTokens=200\n' >"$XDG_CONFIG_HOME/TokenSelect/tokenselect-chat.conf"

LOG="$WORK/app.log"
QT_QPA_PLATFORM=xcb QT_LOGGING_RULES="tokenselect.app.info=true" "$APP" "$DOC" >"$LOG" 2>&1 &
APP_PID=$!
PIDS+=("$APP_PID")

# wait_for TEXT SECONDS: until the app logs TEXT.
wait_for() {
  local i
  for ((i = 0; i < $2 * 10; i++)); do
    grep -q "$1" "$LOG" && return 0
    kill -0 "$APP_PID" 2>/dev/null || { cat "$LOG" >&2; echo "screenshot.sh: the app exited" >&2; exit 1; }
    sleep 0.1
  done
  cat "$LOG" >&2
  echo "screenshot.sh: no '$1' after $2 s" >&2
  exit 1
}

echo "screenshot.sh: reading $(basename "$DOC") ($(wc -c <"$DOC") bytes)…"
wait_for "model ready" 120
wait_for "document read" 900
WIN="$(xdotool search --sync --onlyvisible --name "TokenSelect Chat" | head -n1)"
xdotool windowmove "$WIN" 0 0 windowsize "$WIN" 1600 1000 windowfocus "$WIN"
sleep 1
xdotool type --delay 15 "$QUESTION"
xdotool key Return
wait_for "answer streaming" 120  # eight tokens in
"$GRAB" "$OUT/tokenselect-chat-mid-answer.png"
wait_for "answer finished" 600
sleep 1
"$GRAB" "$OUT/tokenselect-chat-answered.png"
echo "screenshot.sh: saved $OUT/tokenselect-chat-mid-answer.png and $OUT/tokenselect-chat-answered.png"
