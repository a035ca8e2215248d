# Install rules of libtokenselect: the library, its header, a CMake package
# (find_package(tokenselect 0.1) -> tokenselect::tokenselect) and tokenselect.pc, plus the docs.
# The CLI and the desktop app install themselves (app/). Included last from CMakeLists.txt.
include(CMakePackageConfigHelpers)

set(TS_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/tokenselect)

# libtokenselect.so.0.4.0, its SONAME link .so.0 and the namelink .so. The runtime's static
# libraries are linked PRIVATE into it, so the export set needs no other target and consumers
# get no transitive dependencies.
install(TARGETS tokenselect_lib EXPORT tokenselectTargets LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(FILES ${PROJECT_SOURCE_DIR}/capi/include/tokenselect.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(FILES ${PROJECT_SOURCE_DIR}/README.md ${PROJECT_SOURCE_DIR}/LICENSE DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/assets/docs/ DESTINATION ${CMAKE_INSTALL_DATADIR}/tokenselect/docs)

# CMake package: targets file, config file, version file (0.x accepts any 0.y >= the request).
install(EXPORT tokenselectTargets NAMESPACE tokenselect:: DESTINATION ${TS_CMAKE_DIR})
configure_package_config_file(${PROJECT_SOURCE_DIR}/capi/tokenselect-config.cmake.in
  ${PROJECT_BINARY_DIR}/tokenselect-config.cmake INSTALL_DESTINATION ${TS_CMAKE_DIR})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/tokenselect-config-version.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMajorVersion)
install(FILES ${PROJECT_BINARY_DIR}/tokenselect-config.cmake ${PROJECT_BINARY_DIR}/tokenselect-config-version.cmake
  DESTINATION ${TS_CMAKE_DIR})

# pkg-config: with relative install dirs the file finds the prefix from its own location
# (${pcfiledir}), so it stays right under `cmake --install --prefix ...`, DESTDIR and CPack;
# absolute CMAKE_INSTALL_LIBDIR/INCLUDEDIR are written as they are.
if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}")
  set(TS_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
  set(TS_PC_LIBDIR "${CMAKE_INSTALL_LIBDIR}")
else()
  # <prefix>/<libdir>/pkgconfig -> <prefix>: one ".." per path component.
  string(REGEX REPLACE "[^/]+" ".." TS_PC_UP "${CMAKE_INSTALL_LIBDIR}/pkgconfig")
  set(TS_PC_PREFIX "\${pcfiledir}/${TS_PC_UP}")
  set(TS_PC_LIBDIR "\${prefix}/${CMAKE_INSTALL_LIBDIR}")
endif()
if(IS_ABSOLUTE "${CMAKE_INSTALL_INCLUDEDIR}")
  set(TS_PC_INCLUDEDIR "${CMAKE_INSTALL_INCLUDEDIR}")
else()
  set(TS_PC_INCLUDEDIR "\${prefix}/${CMAKE_INSTALL_INCLUDEDIR}")
endif()
configure_file(${PROJECT_SOURCE_DIR}/capi/tokenselect.pc.in ${PROJECT_BINARY_DIR}/tokenselect.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/tokenselect.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
