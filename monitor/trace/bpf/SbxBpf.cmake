# Without the tools or the BTF, the monitor is built without tracing (trace_stub.c says so at
# run time) rather than not at all.
find_program(SBX_BPFTOOL bpftool PATHS /usr/sbin /sbin)
find_program(SBX_BPF_CLANG NAMES clang clang-16 clang-15 clang-14)
set(SBX_VMLINUX_BTF /sys/kernel/btf/vmlinux CACHE FILEPATH
  "BTF of the kernel the BPF program is built against (CO-RE relocates it to others)")
# Where kvm is a module (Debian's kernels), its types are in the module's split BTF, not in
# vmlinux's: dump both together.
set(SBX_KVM_BTF /sys/kernel/btf/kvm CACHE FILEPATH "split BTF of the kvm module, if a module")
set(SBX_HAVE_TRACE ON)
if(NOT SBX_BPFTOOL)
  message(WARNING "bpftool not found: building without --trace-exits (scripts/setup.sh "
    "installs it)")
  set(SBX_HAVE_TRACE OFF)
elseif(NOT SBX_BPF_CLANG)
  message(WARNING "clang not found: building without --trace-exits")
  set(SBX_HAVE_TRACE OFF)
elseif(NOT EXISTS ${SBX_VMLINUX_BTF})
  message(WARNING "${SBX_VMLINUX_BTF} not found (a kernel without CONFIG_DEBUG_INFO_BTF, or no "
    "/sys): building without --trace-exits; -DSBX_VMLINUX_BTF=FILE names another kernel's BTF")
  set(SBX_HAVE_TRACE OFF)
else()
  execute_process(COMMAND ${SBX_BPF_CLANG} -dumpversion OUTPUT_VARIABLE SBX_BPF_CLANG_VERSION
    OUTPUT_STRIP_TRAILING_WHITESPACE)
  if(SBX_BPF_CLANG_VERSION VERSION_LESS 12)
    message(WARNING "${SBX_BPF_CLANG} is version ${SBX_BPF_CLANG_VERSION}; the BPF program "
      "needs clang 12 or later: building without --trace-exits")
    set(SBX_HAVE_TRACE OFF)
  endif()
endif()
if(SBX_HAVE_TRACE)
set(SBX_BTF_DUMP_ARGS file ${SBX_VMLINUX_BTF})
if(EXISTS ${SBX_KVM_BTF})
  set(SBX_BTF_DUMP_ARGS -B ${SBX_VMLINUX_BTF} file ${SBX_KVM_BTF})
endif()

set(SBX_BPF_GEN_DIR ${CMAKE_CURRENT_BINARY_DIR}/bpf)
set(SBX_BPF_SRC ${CMAKE_CURRENT_SOURCE_DIR}/trace/bpf)
file(MAKE_DIRECTORY ${SBX_BPF_GEN_DIR})
add_custom_command(OUTPUT ${SBX_BPF_GEN_DIR}/vmlinux.h
  COMMAND sh -c "out=\"$0\"; \"$@\" format c > \"$out.tmp\" && mv \"$out.tmp\" \"$out\""
          ${SBX_BPF_GEN_DIR}/vmlinux.h ${SBX_BPFTOOL} btf dump ${SBX_BTF_DUMP_ARGS}
  COMMENT "Generating vmlinux.h from ${SBX_BTF_DUMP_ARGS}"
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
set_source_files_properties(${CMAKE_CURRENT_SOURCE_DIR}/trace/trace_exits.c PROPERTIES
  OBJECT_DEPENDS ${SBX_BPF_GEN_DIR}/exits.skel.h)
# What compiles trace_exits.c, wherever it is compiled (the fuzz build recompiles libsandbox's
# sources): the generated headers' directory, and the skeleton built first.
add_library(sbx_exits_gen INTERFACE)
target_include_directories(sbx_exits_gen INTERFACE ${SBX_BPF_GEN_DIR} ${SBX_BPF_SRC})
add_dependencies(sbx_exits_gen sbx_exits_skel)
endif()
