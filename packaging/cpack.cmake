# Binary packages of whatever the install rules install (libtokenselect, its header, CMake and
# pkg-config files, the `tokenselect` CLI, the desktop app when built, docs):
#   build/tokenselect_0.4.0_amd64.deb     Debian package, prefix /usr, deps from dpkg-shlibdeps
#   build/tokenselect-0.4.0-Linux.tar.gz  relocatable tree (bin/ lib/ include/ share/)
# Make them after a build with either of
#   cmake --build build --target package
#   cd build && cpack                         (or: cpack --config build/CPackConfig.cmake)
# and `cpack -G TGZ` / `-G DEB` for one of them (the DEB needs dpkg-shlibdeps from dpkg-dev and
# `file`). Included last from CMakeLists.txt.
set(TS_PACKAGE_MAINTAINER "TokenSelect developers <tokenselect@localhost>" CACHE STRING "Debian Maintainer field")
set(TS_PACKAGE_HOMEPAGE "https://arxiv.org/abs/2411.02886" CACHE STRING "Package homepage")

set(CPACK_PACKAGE_NAME tokenselect)
set(CPACK_PACKAGE_VENDOR "TokenSelect developers")
set(CPACK_PACKAGE_CONTACT "${TS_PACKAGE_MAINTAINER}")
set(CPACK_PACKAGE_HOMEPAGE_URL "${TS_PACKAGE_HOMEPAGE}")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "Long-context LLM runtime with dynamic token-level KV-cache selection")
set(CPACK_PACKAGE_DESCRIPTION "TokenSelect runs GGUF models (Llama-family, Qwen2) on the CPU and, in every \
layer and step, attends only to the KV-cache tokens that matter (TokenSelect, arXiv 2411.02886), \
so it can chat over documents far longer than the model's trained context. This package holds \
the tokenselect command-line tool and libtokenselect, a shared library with a stable C ABI \
(header, pkg-config and CMake files included). License: Apache-2.0.")
set(CPACK_RESOURCE_FILE_LICENSE "${PROJECT_SOURCE_DIR}/LICENSE")
set(CPACK_RESOURCE_FILE_README "${PROJECT_SOURCE_DIR}/README.md")
set(CPACK_GENERATOR DEB TGZ)
set(CPACK_PACKAGE_DIRECTORY "${PROJECT_BINARY_DIR}") # not the current directory, whatever it is

set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)   # tokenselect_<version>_<arch>.deb
set(CPACK_DEBIAN_PACKAGE_SECTION science)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)    # Depends: from the ELF files' DT_NEEDED
# A front end in the package linking libtokenselect (the desktop app) finds it here; the path is
# relative to CPack's staging root (the DEB prefix is /usr).
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS_PRIVATE_DIRS "usr/${CMAKE_INSTALL_LIBDIR}")
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON) # shlibs file + ldconfig trigger for libtokenselect.so.0
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS_POLICY ">=")

# Source packages: use `git archive`; keep CPack's from sweeping up builds and models.
set(CPACK_SOURCE_GENERATOR TGZ)
set(CPACK_SOURCE_IGNORE_FILES "/\\\\.git/" "/build[^/]*/" "/assets/models/.*\\\\.gguf$" "__pycache__")

include(CPack)
