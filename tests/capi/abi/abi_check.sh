#!/usr/bin/env bash
# ABI check: compares the built libtokenselect with the committed ABI of the last release
# (capi/abi/libtokenselect.abi, written by packaging/update-abi.sh) using abidiff.
#   - incompatible change (abidiff exit bit 8, e.g. a removed function): fail;
#   - any other change (bit 4) while the version is still the baseline's: fail (a released
#     version's ABI must not change);
#   - with a newer version, the changes must be additions only: new functions, and members
#     appended at the end of ts_* structs (the struct_size convention); anything else, such as a
#     moved or retyped member, fails (abidiff rates those bit 4 only, as "needs review");
#   - exit 77 (ctest: skipped) when abidiff is not installed (Debian: abigail-tools).
# Usage: abi_check.sh BASELINE.abi LIBRARY HEADERS_DIR VERSION
set -uo pipefail
baseline="$1" lib="$2" headers="$3" version="$4"

if ! command -v abidiff >/dev/null; then
  echo "SKIP: abidiff not found (apt-get install abigail-tools)"
  exit 77
fi
if [[ ! -f $baseline ]]; then
  echo "FAIL: no baseline $baseline (packaging/update-abi.sh makes it)"
  exit 1
fi
# update-abi.sh writes "<!-- libtokenselect X.Y.Z ... -->" on the baseline's second line.
base_version="$(sed -n 's/^ *<!-- libtokenselect \([0-9.]*\) .*/\1/p' "$baseline" | head -n1)"
echo "baseline: $baseline (libtokenselect ${base_version:-?}); built: $lib ($version)"

abi_diff() {
  abidiff --headers-dir2 "$headers" --drop-private-types --exported-interfaces-only --no-architecture "$@" \
    "$baseline" "$lib"
}
abi_diff
rc=$?
if (( rc & 3 )); then
  echo "FAIL: abidiff could not compare (exit $rc)"
  exit 1
elif (( rc & 8 )); then
  echo "FAIL: incompatible ABI change. If it is intended: bump TS_VERSION_MAJOR (new SONAME), then packaging/update-abi.sh"
  exit 1
elif (( rc & 4 )) && [[ $version == "$base_version" ]]; then
  echo "FAIL: the ABI changed but the version is still $version: bump TS_VERSION_MINOR, then packaging/update-abi.sh"
  exit 1
elif (( rc & 4 )); then
  # Every line of the leaf-change report must be a summary or an addition.
  abi_diff --leaf-changes-only --no-show-locs | awk '
    /^$/ || /^(Leaf changes|Changed leaf types) summary:/ || /^[0-9]+ Added functions?:$/ || /^  \[A\] / { next }
    /^Removed\/Changed\/Added (functions|variables) summary: 0 Removed, 0 Changed,/ { next }
    /^'"'"'struct ts_[A-Za-z0-9_]+'"'"' changed:$/ { old = -1; next }
    /^  type size changed from [0-9]+ to [0-9]+ \(in bits\)$/ { old = $5; next }
    /^  [0-9]+ data member insertions?:$/ { next }
    /^    '"'"'[^'"'"']*'"'"', at offset [0-9]+ \(in bits\)$/ {
      off = $0; sub(/.*, at offset /, "", off); sub(/ .*/, "", off)
      if (old >= 0 && off + 0 >= old + 0) next
    }
    { print "not an addition: " $0; bad = 1 }
    END { exit bad }'
  if [[ ${PIPESTATUS[1]} != 0 ]]; then
    echo "FAIL: ABI changes beyond additions since $base_version; they need a new major version (SONAME)"
    exit 1
  fi
  echo "OK: only additions since $base_version (now $version)"
else
  echo "OK: ABI identical to the baseline"
fi
