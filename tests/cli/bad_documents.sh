#!/usr/bin/env bash
# `tokenselect run --doc FILE` on bad documents: each is a one-line error naming the file and
# what is wrong (the byte offset where there is one), before any model is loaded.
# Usage: bad_documents.sh TOKENSELECT_BINARY
set -uo pipefail
CLI="$1"
DIR="$(mktemp -d "${TMPDIR:-/tmp}/ts-baddocs.XXXXXX")"
trap 'rm -rf "$DIR"' EXIT
FAILED=0

# expect NAME BYTES WANTED: the run fails and its stderr contains WANTED.
expect() {
  local name="$1" wanted="$3" out rc
  printf '%b' "$2" >"$DIR/$name"
  out="$("$CLI" run --model "$DIR/no-such-model.gguf" --doc "$DIR/$name" -p "question?" 2>&1 >/dev/null)"
  rc=$?
  if [[ $rc == 0 || $out != *"$wanted"* ]]; then
    echo "FAIL $name: exit $rc, wanted '$wanted' in: $out"
    FAILED=1
  else
    echo "ok   $name: $out"
  fi
}

expect empty.txt '' "empty.txt: document is empty"
expect blank.txt ' \n\t\r\n' "blank.txt: document is empty"
expect binary.zip 'PK\x03\x04\x00\x00' "binary.zip: looks like a binary file (NUL byte at offset 4)"
expect latin1.txt 'abc\xe9t\xe9' "latin1.txt: invalid UTF-8 at byte offset 3"
expect truncated.txt 'ok \xe2\x82' "truncated.txt: invalid UTF-8 at byte offset 3"
# A good document (BOM, CRLF) passes: the run then fails on the missing model instead.
expect good.txt '\xef\xbb\xbfK\xc3\xb6ln\r\nline 2\n' "no-such-model.gguf"
out="$("$CLI" run --model "$DIR/no-such-model.gguf" --doc "$DIR/missing.txt" -p "q" 2>&1 >/dev/null)"
if [[ $out == *"missing.txt: cannot open"* ]]; then echo "ok   missing.txt: $out"; else echo "FAIL missing.txt: $out"; FAILED=1; fi
exit $FAILED
