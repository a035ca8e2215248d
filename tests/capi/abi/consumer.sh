#!/usr/bin/env bash
# Out-of-tree consumer test (ctest runs the three steps in order; see abi_tests.cmake):
#   consumer.sh install    cmake --install the build tree into $TS_WORK/prefix (all components)
#   consumer.sh pkgconfig  cc consumer.c $(pkg-config --cflags --libs tokenselect), run it
#   consumer.sh cmake      find_package(tokenselect 0.1) + tokenselect::tokenselect, run it
# Env (set by ctest): TS_BUILD_DIR TS_WORK TS_CONSUMER_SRC TS_MODEL CMAKE_COMMAND CC PKG_CONFIG
set -euo pipefail
prefix="$TS_WORK/prefix"

# run_consumer BINARY: runs it on the model; the library must resolve inside the prefix.
run_consumer() {
  local lib
  lib="$(ldd "$1" | awk '/libtokenselect\.so/ {print $3}')"
  echo "libtokenselect: $lib"
  [[ $(realpath "$lib") == "$(realpath "$prefix")"/* ]] || { echo "FAIL: $1 does not use $prefix" >&2; exit 1; }
  if [[ ! -f $TS_MODEL ]]; then
    echo "SKIP: built, but not run: no model at $TS_MODEL (packaging/fetch-model.sh)"
    exit 77
  fi
  "$1" "$TS_MODEL"
}

case "$1" in
  install)
    rm -rf "$TS_WORK"
    "$CMAKE_COMMAND" --install "$TS_BUILD_DIR" --prefix "$prefix"
    ;;
  pkgconfig)
    pc_dir="$(dirname "$(find "$prefix" -name tokenselect.pc | head -n1)")"
    export PKG_CONFIG_PATH="$pc_dir"
    flags="$("$PKG_CONFIG" --cflags --libs tokenselect)"
    libdir="$("$PKG_CONFIG" --variable=libdir tokenselect)"
    echo "pkg-config: $flags (version $("$PKG_CONFIG" --modversion tokenselect))"
    # shellcheck disable=SC2086
    "$CC" -std=c99 -Wall -Wextra -pedantic -Werror "$TS_CONSUMER_SRC/consumer.c" $flags \
      -Wl,-rpath,"$libdir" -o "$TS_WORK/consumer-pkgconfig"
    run_consumer "$TS_WORK/consumer-pkgconfig"
    ;;
  cmake)
    rm -rf "$TS_WORK/consumer-build"
    "$CMAKE_COMMAND" -S "$TS_CONSUMER_SRC" -B "$TS_WORK/consumer-build" -DCMAKE_C_COMPILER="$CC" \
      -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF
    "$CMAKE_COMMAND" --build "$TS_WORK/consumer-build"
    run_consumer "$TS_WORK/consumer-build/consumer"
    ;;
  *) echo "usage: $0 install|pkgconfig|cmake" >&2; exit 2 ;;
esac
