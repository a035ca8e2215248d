#!/usr/bin/env bash
# Regenerates capi/abi/libtokenselect.abi, the ABI baseline that the ctest `capi_abidiff`
# (tests/capi/abi/abi_check.sh) compares every build of libtokenselect with.
#
# Run it deliberately, only together with a version bump in capi/include/tokenselect.h and
# project(): minor for added functions/fields, major (new SONAME) for incompatible changes. A
# released version's baseline must never change.
#
# Usage: packaging/update-abi.sh [BUILD_DIR]   (default: build; needs abidw from abigail-tools)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${1:-$ROOT/build}"
LIB="$BUILD/capi/libtokenselect.so"
OUT="$ROOT/capi/abi/libtokenselect.abi"

command -v abidw >/dev/null || { echo "update-abi.sh: abidw not found (apt-get install abigail-tools)" >&2; exit 1; }
[[ -f $LIB ]] || { echo "update-abi.sh: no $LIB; build the tokenselect_lib target first" >&2; exit 1; }
real="$(readlink -f "$LIB")"
version="${real##*.so.}"   # libtokenselect.so.0.1.0 -> 0.1.0

# Only the public header's types; no build paths, architecture or DT_NEEDED list, stable ids.
xml="$(abidw --headers-dir "$ROOT/capi/include" --drop-private-types --exported-interfaces-only --no-corpus-path \
  --no-comp-dir-path --short-locs --no-elf-needed --no-architecture --type-id-style hash "$real")"
mkdir -p "$(dirname "$OUT")"
# abidiff reads comments only inside the root element: the version goes on line 2.
{
  head -n1 <<<"$xml"
  echo "  <!-- libtokenselect $version ABI, from packaging/update-abi.sh; the baseline for tests/capi/abi/abi_check.sh -->"
  tail -n +2 <<<"$xml" | sed "s|path='$ROOT/|path='|"
} >"$OUT"
echo "update-abi.sh: wrote $OUT (libtokenselect $version, $(grep -c '<elf-symbol ' "$OUT") functions)"
