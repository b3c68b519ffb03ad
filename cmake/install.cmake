# install.cmake: libcomine (shared, with a SOVERSION, and static), the `comine` binary, the
# public headers, a pkg-config file and a CMake package config.
#   cmake --install BUILD --prefix P
#   cc prog.c $(pkg-config --cflags --libs comine)          (PKG_CONFIG_PATH=P/lib/pkgconfig)
#   find_package(comine) -> comine::comine                   (CMAKE_PREFIX_PATH=P)
# Both libraries are made of the area libraries' objects (compiled once, position independent).
include(CMakePackageConfigHelpers)
get_property(COMINE_AREA_LIBS GLOBAL PROPERTY COMINE_AREA_LIBS)

# the static library: the area archives merged into one (GNU ar's MRI script)
set(_mri "create ${CMAKE_BINARY_DIR}/libcomine.a\n")
set(_archives "")
foreach(lib ${COMINE_AREA_LIBS})
  string(APPEND _mri "addlib $<TARGET_FILE:${lib}>\n")
  list(APPEND _archives $<TARGET_FILE:${lib}>)
endforeach()
string(APPEND _mri "save\nend\n")
file(GENERATE OUTPUT ${CMAKE_BINARY_DIR}/libcomine.mri CONTENT "${_mri}")
add_custom_command(OUTPUT ${CMAKE_BINARY_DIR}/libcomine.a
                   COMMAND ${CMAKE_COMMAND} -E remove -f ${CMAKE_BINARY_DIR}/libcomine.a
                   COMMAND ${CMAKE_AR} -M < ${CMAKE_BINARY_DIR}/libcomine.mri
                   DEPENDS ${COMINE_AREA_LIBS} ${CMAKE_BINARY_DIR}/libcomine.mri
                   COMMENT "Merging the area libraries into libcomine.a" VERBATIM)
add_custom_target(comine_static ALL DEPENDS ${CMAKE_BINARY_DIR}/libcomine.a)

# what a static link needs besides libcomine.a
set(COMINE_STATIC_DEPS ${DNNL_LIBRARY} ${BLAS_LIBRARY} ${TURBOJPEG_LIBRARY} ${PNG_LIBRARIES})
if(PLPLOT_INCLUDE_DIR AND PLPLOT_LIBRARY)
  list(APPEND COMINE_STATIC_DEPS ${PLPLOT_LIBRARY})
endif()
if(MPI_C_FOUND)
  list(APPEND COMINE_STATIC_DEPS ${MPI_C_LIBRARIES})
endif()
if(COMINE_OMP_LIBS)
  list(APPEND COMINE_STATIC_DEPS ${OpenMP_C_LIBRARIES})
endif()
if(COMINE_CUDA_FOUND)  # the CUDA backend (cuda.cmake): its runtime, cuBLAS, cuDNN, and C++'s (nvcc's objects)
  list(APPEND COMINE_STATIC_DEPS ${CUDA_cudart_LIBRARY} ${CUDA_cublas_LIBRARY} ${CUDNN_LIBRARY} -lstdc++)
endif()
list(FILTER COMINE_STATIC_DEPS EXCLUDE REGEX "libpthread\\.a$")  # glibc's: -pthread below
list(APPEND COMINE_STATIC_DEPS ${MATH_LIBRARY} -pthread)
list(REMOVE_DUPLICATES COMINE_STATIC_DEPS)
string(REPLACE ";" " " COMINE_PC_LIBS_PRIVATE "${COMINE_STATIC_DEPS}")

# the shared library: every area archive linked whole, then what they need
add_library(comine_shared SHARED ${CMAKE_BINARY_DIR}/generated/libcomine_shared.c)
file(WRITE ${CMAKE_BINARY_DIR}/generated/libcomine_shared.c
     "/* libcomine.so: the area archives, linked whole */\ntypedef int comine_shared_unit;\n")
add_dependencies(comine_shared ${COMINE_AREA_LIBS})
target_link_libraries(comine_shared PRIVATE -Wl,--whole-archive ${_archives} -Wl,--no-whole-archive
                      ${COMINE_STATIC_DEPS} ${COMINE_OMP_LIBS} Threads::Threads)
set_target_properties(comine_shared PROPERTIES OUTPUT_NAME comine VERSION ${PROJECT_VERSION}
                      SOVERSION ${PROJECT_VERSION_MAJOR})

if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}")
  set(COMINE_PC_LIBDIR "${CMAKE_INSTALL_LIBDIR}")
else()
  set(COMINE_PC_LIBDIR "\${exec_prefix}/${CMAKE_INSTALL_LIBDIR}")
endif()
if(IS_ABSOLUTE "${CMAKE_INSTALL_INCLUDEDIR}")
  set(COMINE_PC_INCLUDEDIR "${CMAKE_INSTALL_INCLUDEDIR}")
else()
  set(COMINE_PC_INCLUDEDIR "\${prefix}/${CMAKE_INSTALL_INCLUDEDIR}")
endif()
# the prefix is the one given at install time (cmake --install --prefix P), not at configure
# time: a token in the prefix line only (Libs.private may name libraries under the configure
# prefix, e.g. /usr/local/cuda, which stay where they are)
set(COMINE_PC_PREFIX "@COMINE_INSTALL_PREFIX@")
configure_file(${CMAKE_SOURCE_DIR}/cmake/comine.pc.in ${CMAKE_BINARY_DIR}/comine.pc.in.configured @ONLY)
install(CODE "
  file(READ \"${CMAKE_BINARY_DIR}/comine.pc.in.configured\" pc)
  string(REPLACE \"@COMINE_INSTALL_PREFIX@\" \"\${CMAKE_INSTALL_PREFIX}\" pc \"\${pc}\")
  file(WRITE \"\$ENV{DESTDIR}\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_LIBDIR}/pkgconfig/comine.pc\" \"\${pc}\")
  message(STATUS \"Installing: \$ENV{DESTDIR}\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_LIBDIR}/pkgconfig/comine.pc\")")

string(REPLACE ";" "\\;" _deps_escaped "${COMINE_STATIC_DEPS}")
set(COMINE_STATIC_DEPS "${_deps_escaped}")
configure_package_config_file(${CMAKE_SOURCE_DIR}/cmake/comineConfig.cmake.in
                              ${CMAKE_BINARY_DIR}/comineConfig.cmake
                              INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/comine)
write_basic_package_version_file(${CMAKE_BINARY_DIR}/comineConfigVersion.cmake
                                 COMPATIBILITY SameMajorVersion)

install(TARGETS comine RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(TARGETS comine_shared LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(FILES ${CMAKE_BINARY_DIR}/libcomine.a DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(DIRECTORY ${CMAKE_SOURCE_DIR}/include/comine DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
        FILES_MATCHING PATTERN "*.h")
install(FILES ${CMAKE_BINARY_DIR}/generated/comine/version.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/comine)
install(FILES ${CMAKE_BINARY_DIR}/comineConfig.cmake ${CMAKE_BINARY_DIR}/comineConfigVersion.cmake
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/comine)
