# cuda.cmake: the CUDA backend (src/backend/cuda/), built into comine_nn beside the CPU
# backend when COMINE_CUDA is on:
#   OFF  (default until the backend has passed its tests on a GPU): no CUDA anywhere;
#   AUTO: on when nvcc, cuBLAS and cuDNN are found, else off with a message;
#   ON:   required (configuration fails and says what is missing).
# Code for sm_90 (H100/H200) plus PTX unless CMAKE_CUDA_ARCHITECTURES is given.  When on,
# COMINE_HAVE_CUDA=1 is defined for comine_nn and everything that links it.
# The tests of the backend (tests/test_backend_*.c) link the interface target comine_backend.
set(COMINE_CUDA OFF CACHE STRING "CUDA backend (cuDNN 9, cuBLAS): OFF, AUTO (when found) or ON (required)")
set_property(CACHE COMINE_CUDA PROPERTY STRINGS OFF AUTO ON)
string(TOUPPER "${COMINE_CUDA}" _comine_cuda_mode)
if(NOT _comine_cuda_mode MATCHES "^(OFF|AUTO|ON)$")
  message(FATAL_ERROR "COMINE_CUDA=${COMINE_CUDA}: expected OFF, AUTO or ON")
endif()

set(COMINE_CUDA_FOUND OFF)
if(NOT _comine_cuda_mode STREQUAL "OFF")
  set(_missing "")
  include(CheckLanguage)
  if(NOT CMAKE_CUDA_COMPILER AND NOT DEFINED ENV{CUDACXX} AND EXISTS /usr/local/cuda/bin/nvcc)
    set(CMAKE_CUDA_COMPILER /usr/local/cuda/bin/nvcc CACHE FILEPATH "CUDA compiler")
  endif()
  check_language(CUDA)
  if(NOT CMAKE_CUDA_COMPILER)
    list(APPEND _missing "nvcc (set CMAKE_CUDA_COMPILER or put the CUDA toolkit's bin/ on PATH)")
  else()
    get_filename_component(_nvcc_bin "${CMAKE_CUDA_COMPILER}" DIRECTORY)
    get_filename_component(_cuda_root_guess "${_nvcc_bin}" DIRECTORY)
    if(NOT CUDAToolkit_ROOT)
      set(CUDAToolkit_ROOT "${_cuda_root_guess}")
    endif()
    find_package(CUDAToolkit)
    if(NOT CUDAToolkit_FOUND)
      list(APPEND _missing "the CUDA toolkit (runtime headers and libraries)")
    elseif(NOT TARGET CUDA::cublas)
      list(APPEND _missing "cuBLAS")
    endif()
    find_path(CUDNN_INCLUDE_DIR cudnn.h
              HINTS ${CUDAToolkit_INCLUDE_DIRS} ${CUDAToolkit_ROOT}/include /usr/include /usr/include/x86_64-linux-gnu)
    find_library(CUDNN_LIBRARY cudnn
                 HINTS ${CUDAToolkit_LIBRARY_DIR} ${CUDAToolkit_ROOT}/lib64 ${CUDAToolkit_ROOT}/lib
                       /usr/lib/x86_64-linux-gnu)
    if(NOT CUDNN_INCLUDE_DIR OR NOT CUDNN_LIBRARY)
      list(APPEND _missing "cuDNN 9 (cudnn.h and libcudnn; set CUDNN_INCLUDE_DIR and CUDNN_LIBRARY)")
    endif()
  endif()
  if(_missing)
    string(REPLACE ";" ", " _missing "${_missing}")
    if(_comine_cuda_mode STREQUAL "ON")
      message(FATAL_ERROR "COMINE_CUDA=ON but not found: ${_missing}")
    endif()
    message(STATUS "CUDA backend: off (not found: ${_missing})")
  else()
    set(COMINE_CUDA_FOUND ON)
  endif()
endif()

if(COMINE_CUDA_FOUND)
  if(NOT CMAKE_CUDA_ARCHITECTURES)
    set(CMAKE_CUDA_ARCHITECTURES "90-real;90-virtual")
  endif()
  set(CMAKE_CUDA_STANDARD 17)
  set(CMAKE_CUDA_STANDARD_REQUIRED ON)
  set(CMAKE_CUDA_RUNTIME_LIBRARY Shared)
  set(CMAKE_CUDA_FLAGS_RELEASE "-O3")
  enable_language(CUDA)
  message(STATUS "CUDA backend: on (nvcc ${CMAKE_CUDA_COMPILER_VERSION}, architectures ${CMAKE_CUDA_ARCHITECTURES}, "
                 "cuDNN ${CUDNN_LIBRARY})")
endif()

# The backend's tests link the backend, which is part of comine_nn.
add_library(comine_backend INTERFACE)
target_link_libraries(comine_backend INTERFACE comine_nn)

# Run once the whole project is configured (comine_nn and the compile options exist): the
# CUDA sources join comine_nn; the project's C options (-Wall, -march=native, ...) apply to C
# sources only and reach nvcc's host compiler through -Xcompiler.
function(comine_cuda_attach)
  file(GLOB _cuda_srcs CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/src/backend/cuda/*.c
                                         ${CMAKE_SOURCE_DIR}/src/backend/cuda/*.cu)
  get_target_property(_opts comine_nn COMPILE_OPTIONS)
  set(_new "")
  if(_opts)
    foreach(o ${_opts})
      if(o MATCHES "^\\$<")  # already a generator expression (language-guarded)
        list(APPEND _new "${o}")
      else()
        list(APPEND _new "$<$<COMPILE_LANGUAGE:C>:${o}>" "$<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=${o}>")
      endif()
    endforeach()
  endif()
  set_property(TARGET comine_nn PROPERTY COMPILE_OPTIONS "${_new}")
  target_sources(comine_nn PRIVATE ${_cuda_srcs})
  target_include_directories(comine_nn PRIVATE ${CUDNN_INCLUDE_DIR})
  target_link_libraries(comine_nn PUBLIC CUDA::cudart CUDA::cublas ${CUDNN_LIBRARY})
  target_compile_definitions(comine_nn PUBLIC COMINE_HAVE_CUDA=1)
  if(TARGET comine_shared)
    target_link_libraries(comine_shared PRIVATE CUDA::cudart CUDA::cublas ${CUDNN_LIBRARY})
  endif()
endfunction()
if(COMINE_CUDA_FOUND)
  cmake_language(DEFER CALL comine_cuda_attach)
endif()
