#!/usr/bin/env bash
# Installs what TokenSelect needs to build and test on Debian 12 (bookworm) / Ubuntu 22.04+.
#
# Idempotent: packages already installed are not touched, and `apt-get update` only runs when
# something is missing, so a second run takes about a second. Runs as root, or through sudo
# when not root. CUDA (nvcc) is not installed here: the build uses it when it finds it.
#
# Usage: packaging/install-deps.sh [--with-app] [--with-docs] [--no-python] [--dry-run]
#   --with-app   also Qt 6 (widgets, test, svg, pdf) for the desktop app
#   --with-docs  also bible-kjv (the `bible` tool and text, to regenerate assets/docs/genesis-kjv.txt)
#   --no-python  skip the Python test dependencies (packaging/requirements-test.txt)
#   --dry-run    print what would be installed, change nothing
# Env:  PYTHON=python3   the Python whose pip gets the test dependencies
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python3}"
REQUIREMENTS="$ROOT/packaging/requirements-test.txt"

# Build and test tools and libraries (CMakeLists.txt finds these).
BASE_PACKAGES=(
  build-essential cmake ninja-build pkg-config ccache
  libpcre2-dev libsentencepiece-dev sentencepiece libcli11-dev nlohmann-json3-dev libfmt-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  clang-14 libclang-rt-14-dev abigail-tools
)
# Qt 6 for app/desktop (Debian 12 ships Qt 6.4). qt6-base-dev has Widgets, Gui, Test, OpenGL;
# qt6-qpa-plugins has the xcb/offscreen platforms that running the app and its tests need.
APP_PACKAGES=(qt6-base-dev qt6-base-dev-tools qt6-qpa-plugins qt6-svg-dev qt6-pdf-dev xvfb xauth xdotool fonts-dejavu-core)
DOCS_PACKAGES=(bible-kjv bible-kjv-text)

WITH_APP=0
WITH_DOCS=0
WITH_PYTHON=1
DRY_RUN=0

usage() { sed -n '2,14p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
say() { echo "install-deps: $*"; }
die() { echo "install-deps: error: $*" >&2; exit 1; }
# Prints a command, then runs it (or only prints it with --dry-run).
run() {
  echo "+ $*"
  [[ $DRY_RUN == 1 ]] || "$@"
}

for arg in "$@"; do
  case "$arg" in
    --with-app) WITH_APP=1 ;;
    --with-docs) WITH_DOCS=1 ;;
    --no-python) WITH_PYTHON=0 ;;
    --dry-run) DRY_RUN=1 ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $arg" ;;
  esac
done

# --- privileges ---------------------------------------------------------------------------
SUDO=()
if [[ $EUID -ne 0 ]]; then
  command -v sudo >/dev/null || die "not root and sudo is not installed; run this as root"
  SUDO=(sudo)
fi

# --- Debian packages ----------------------------------------------------------------------
is_installed() {
  [[ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" == installed ]]
}

install_apt_packages() {
  if ! command -v dpkg-query >/dev/null || ! command -v apt-get >/dev/null; then
    die "this script needs a Debian-based system (dpkg and apt-get)"
  fi

  local wanted=("${BASE_PACKAGES[@]}")
  [[ $WITH_APP == 1 ]] && wanted+=("${APP_PACKAGES[@]}")
  [[ $WITH_DOCS == 1 ]] && wanted+=("${DOCS_PACKAGES[@]}")
  # Python: keep an existing interpreter (pyenv, venv, ...); add Debian's only where missing.
  if [[ $WITH_PYTHON == 1 ]]; then
    if ! command -v "$PYTHON" >/dev/null; then
      wanted+=(python3 python3-pip)
    elif ! "$PYTHON" -m pip --version >/dev/null 2>&1; then
      wanted+=(python3-pip)
    fi
  fi

  local missing=() p
  for p in "${wanted[@]}"; do
    is_installed "$p" || missing+=("$p")
  done
  if [[ ${#missing[@]} == 0 ]]; then
    say "all ${#wanted[@]} Debian packages are already installed"
    return
  fi
  say "missing Debian packages: ${missing[*]}"
  run "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
  run "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -q --no-install-recommends "${missing[@]}"
}

# --- Python test dependencies -------------------------------------------------------------
# Prints the requirement lines (name==version) that the interpreter does not satisfy yet.
unsatisfied_requirements() {
  "$PYTHON" - "$REQUIREMENTS" <<'PY'
import sys
from importlib import metadata
for line in open(sys.argv[1]):
    line = line.split("#", 1)[0].strip()
    if not line:
        continue
    name, _, want = line.partition("==")
    try:
        have = metadata.version(name.strip())
    except metadata.PackageNotFoundError:
        have = None
    if have is None or (want and have != want.strip()):
        print(line)
PY
}

# Extra pip flags for this interpreter: --user when its site-packages is not writable,
# --break-system-packages when it is a distribution's externally managed Python (PEP 668).
pip_flags() {
  "$PYTHON" - <<'PY'
import os, sys, sysconfig
flags = []
in_venv = sys.prefix != sys.base_prefix
if not in_venv and not os.access(sysconfig.get_path("purelib"), os.W_OK):
    flags.append("--user")
marker = os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED")
if not in_venv and os.path.exists(marker):
    flags.append("--break-system-packages")
print(" ".join(flags))
PY
}

install_python_packages() {
  [[ -f $REQUIREMENTS ]] || die "missing $REQUIREMENTS"
  if [[ $DRY_RUN == 1 ]] && ! "$PYTHON" -m pip --version >/dev/null 2>&1; then
    say "would pip install: $(grep -v '^#' "$REQUIREMENTS" | xargs)"
    return
  fi
  local todo
  todo="$(unsatisfied_requirements)"
  if [[ -z $todo ]]; then
    say "Python test packages already installed ($(grep -v '^#' "$REQUIREMENTS" | xargs)) in $("$PYTHON" -c 'import sys; print(sys.prefix)')"
    return
  fi
  local flags=()
  read -r -a flags <<<"$(pip_flags)"
  # shellcheck disable=SC2086
  run env PIP_ROOT_USER_ACTION=ignore "$PYTHON" -m pip install --disable-pip-version-check "${flags[@]}" $todo
}

say "repo: $ROOT"
install_apt_packages
[[ $WITH_PYTHON == 1 ]] && install_python_packages
if command -v nvcc >/dev/null; then
  say "CUDA: $(nvcc --version | sed -n 's/.*release \([0-9.]*\).*/\1/p') at $(command -v nvcc)"
else
  say "CUDA: nvcc not found (CPU-only build; install the CUDA toolkit for the GPU backend)"
fi
say "done"
