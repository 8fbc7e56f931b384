# sbx_sample(): build one small guest program twice, statically, against glibc and musl.
#
#   sbx_sample(NAME SRC [PIE] [STRIP] [NO_MUSL] [GROUP target] [FLAGS flag...])
#
# produces, in the current binary directory (${CMAKE_BINARY_DIR}/samples for samples/):
#   NAME-glibc  the C compiler with -static -O2 (add_executable with its own flags: it does not
#               use SBX_HOST_FLAGS and overrides the directory's options, sanitizers included)
#   NAME-musl   musl-gcc -static -O2 (a custom command, target NAME-musl-build; skipped with a
#               message when musl-gcc is missing)
# PIE builds static-PIE instead (-static-pie), STRIP strips the result, NO_MUSL skips the musl
# build, FLAGS are extra compile and link flags for both, and GROUP (default: samples) names a
# custom target that depends on both binaries. Both binaries are part of `all`.
include_guard(GLOBAL)

find_program(SBX_MUSL_GCC musl-gcc)
if(NOT SBX_MUSL_GCC)
  message(STATUS "samples: musl-gcc not found, the -musl sample binaries are skipped")
endif()

set(SBX_SAMPLE_FLAGS -O2 -Wall -Wextra)
if(SBX_WERROR)
  list(APPEND SBX_SAMPLE_FLAGS -Werror)
endif()

# musl-gcc's specs file cannot link static-PIE (it passes a dynamic linker and Scrt1.o), so the
# musl static-PIE build calls gcc directly with musl's headers, rcrt1.o and libc.a.
find_file(SBX_MUSL_RCRT1 rcrt1.o
  PATHS /usr/lib/x86_64-linux-musl /usr/lib/musl/lib /usr/local/musl/lib NO_DEFAULT_PATH)
find_path(SBX_MUSL_INCLUDE stdio.h
  PATHS /usr/include/x86_64-linux-musl /usr/lib/musl/include /usr/local/musl/include
  NO_DEFAULT_PATH)
find_program(SBX_GCC gcc)

function(_sbx_gcc_file out what)
  execute_process(COMMAND ${SBX_GCC} -print-file-name=${what} OUTPUT_VARIABLE f
                  OUTPUT_STRIP_TRAILING_WHITESPACE)
  set(${out} ${f} PARENT_SCOPE)
endfunction()

function(sbx_sample name src)
  cmake_parse_arguments(PARSE_ARGV 2 S "PIE;STRIP;NO_MUSL" "GROUP" "FLAGS")
  if(NOT S_GROUP)
    set(S_GROUP samples)
  endif()
  if(NOT TARGET ${S_GROUP})
    add_custom_target(${S_GROUP})
  endif()
  get_filename_component(srcabs ${src} ABSOLUTE)
  file(GLOB headers ${CMAKE_CURRENT_SOURCE_DIR}/*.h)
  set(outdir ${CMAKE_CURRENT_BINARY_DIR})

  if(S_PIE)
    set(cflags ${SBX_SAMPLE_FLAGS} -fPIE ${S_FLAGS})
    set(lflags -static-pie)
  else()
    set(cflags ${SBX_SAMPLE_FLAGS} ${S_FLAGS})
    set(lflags -static)
  endif()
  if(S_STRIP)
    list(APPEND lflags -s)
  endif()

  # glibc: an ordinary executable target, with only its own flags.
  add_executable(${name}-glibc ${src})
  set_target_properties(${name}-glibc PROPERTIES
    RUNTIME_OUTPUT_DIRECTORY ${outdir}
    COMPILE_OPTIONS "${cflags}"
    LINK_OPTIONS "${lflags};${S_FLAGS}"
    INCLUDE_DIRECTORIES ""
    COMPILE_DEFINITIONS ""
    POSITION_INDEPENDENT_CODE OFF)
  add_dependencies(${S_GROUP} ${name}-glibc)

  # musl
  if(S_NO_MUSL OR NOT SBX_MUSL_GCC)
    return()
  endif()
  set(out ${outdir}/${name}-musl)
  if(S_PIE)
    if(NOT SBX_MUSL_RCRT1 OR NOT SBX_MUSL_INCLUDE OR NOT SBX_GCC)
      message(STATUS "samples: musl rcrt1.o not found, ${name}-musl (static-PIE) is skipped")
      return()
    endif()
    get_filename_component(musllib ${SBX_MUSL_RCRT1} DIRECTORY)
    _sbx_gcc_file(gccinc include)
    _sbx_gcc_file(crtbegin crtbeginS.o)
    _sbx_gcc_file(crtend crtendS.o)
    _sbx_gcc_file(libgcc libgcc.a)
    set(cmd ${SBX_GCC} ${cflags} ${lflags} -nostdinc -isystem ${SBX_MUSL_INCLUDE}
        -isystem ${gccinc} -nostdlib -nostartfiles
        ${musllib}/rcrt1.o ${musllib}/crti.o ${crtbegin} ${srcabs}
        -L${musllib} -lc ${libgcc} ${crtend} ${musllib}/crtn.o -o ${out})
  else()
    set(cmd ${SBX_MUSL_GCC} ${cflags} ${lflags} -o ${out} ${srcabs})
  endif()
  add_custom_command(OUTPUT ${out}
    COMMAND ${cmd}
    DEPENDS ${srcabs} ${headers}
    COMMENT "Building C executable ${name}-musl (musl, static)"
    VERBATIM)
  # (the target cannot be called NAME-musl too: Ninja rejects a phony and a file of one name)
  add_custom_target(${name}-musl-build ALL DEPENDS ${out})
  add_dependencies(${S_GROUP} ${name}-musl-build)
endfunction()
