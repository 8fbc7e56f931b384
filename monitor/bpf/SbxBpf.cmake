# The BPF program of --trace-exits and sandbox-stat: vmlinux.h from the running kernel's BTF,
# the program built with clang -target bpf, and its libbpf skeleton from bpftool. All at build
# time; nothing generated is committed. scripts/setup.sh installs clang and bpftool.
find_program(SBX_BPFTOOL bpftool PATHS /usr/sbin /sbin)
if(NOT SBX_BPFTOOL)
  message(FATAL_ERROR "bpftool not found: it builds the BPF program of --trace-exits "
    "(Debian package bpftool; scripts/setup.sh installs it)")
endif()
find_program(SBX_BPF_CLANG NAMES clang clang-14)
if(NOT SBX_BPF_CLANG)
  message(FATAL_ERROR "clang not found: it compiles the BPF program of --trace-exits "
    "(Debian package clang; scripts/setup.sh installs it)")
endif()
set(SBX_VMLINUX_BTF /sys/kernel/btf/vmlinux CACHE FILEPATH
  "BTF of the kernel the BPF program is built against (CO-RE relocates it to others)")
if(NOT EXISTS ${SBX_VMLINUX_BTF})
  message(FATAL_ERROR "${SBX_VMLINUX_BTF} not found: vmlinux.h for the BPF program is "
    "generated from the kernel's BTF (CONFIG_DEBUG_INFO_BTF); pass -DSBX_VMLINUX_BTF=FILE "
    "with the BTF of a kernel that has it")
endif()

set(SBX_BPF_GEN_DIR ${CMAKE_CURRENT_BINARY_DIR}/bpf)
set(SBX_BPF_SRC ${CMAKE_CURRENT_SOURCE_DIR}/bpf)
file(MAKE_DIRECTORY ${SBX_BPF_GEN_DIR})
add_custom_command(OUTPUT ${SBX_BPF_GEN_DIR}/vmlinux.h
  COMMAND sh -c "\"$0\" btf dump file \"$1\" format c > \"$2.tmp\" && mv \"$2.tmp\" \"$2\""
          ${SBX_BPFTOOL} ${SBX_VMLINUX_BTF} ${SBX_BPF_GEN_DIR}/vmlinux.h
  COMMENT "Generating vmlinux.h from ${SBX_VMLINUX_BTF}"
  VERBATIM)
add_custom_command(OUTPUT ${SBX_BPF_GEN_DIR}/exits.bpf.o
  COMMAND ${SBX_BPF_CLANG} -g -O2 -target bpf -mcpu=v3 -D__TARGET_ARCH_x86 -Wall -Werror
          -I${SBX_BPF_GEN_DIR} -I${SBX_BPF_SRC} -c ${SBX_BPF_SRC}/exits.bpf.c
          -o ${SBX_BPF_GEN_DIR}/exits.bpf.o
  DEPENDS ${SBX_BPF_SRC}/exits.bpf.c ${SBX_BPF_SRC}/exits.h ${SBX_BPF_GEN_DIR}/vmlinux.h
  COMMENT "Building the BPF program exits.bpf.o"
  VERBATIM)
add_custom_command(OUTPUT ${SBX_BPF_GEN_DIR}/exits.skel.h
  COMMAND sh -c "\"$0\" gen skeleton \"$1\" name sbx_exits_bpf > \"$2.tmp\" && mv \"$2.tmp\" \"$2\""
          ${SBX_BPFTOOL} ${SBX_BPF_GEN_DIR}/exits.bpf.o ${SBX_BPF_GEN_DIR}/exits.skel.h
  DEPENDS ${SBX_BPF_GEN_DIR}/exits.bpf.o
  COMMENT "Generating the libbpf skeleton exits.skel.h"
  VERBATIM)
add_custom_target(sbx_exits_skel DEPENDS ${SBX_BPF_GEN_DIR}/exits.skel.h)
set_source_files_properties(${CMAKE_CURRENT_SOURCE_DIR}/trace_exits.c PROPERTIES
  OBJECT_DEPENDS ${SBX_BPF_GEN_DIR}/exits.skel.h)
# What compiles trace_exits.c, wherever it is compiled (the fuzz build recompiles libsandbox's
# sources): the generated headers' directory, and the skeleton built first.
add_library(sbx_exits_gen INTERFACE)
target_include_directories(sbx_exits_gen INTERFACE ${SBX_BPF_GEN_DIR} ${SBX_BPF_SRC})
add_dependencies(sbx_exits_gen sbx_exits_skel)
