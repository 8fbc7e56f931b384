/* The guest side of sandbox-fuzz: link a libFuzzer-style target with libsandbox-fuzz-guest.a,
 * which brings main(). The target defines
 *     int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
 * and optionally
 *     int LLVMFuzzerInitialize(int *argc, char ***argv);
 * Build it static with clang's coverage instrumentation:
 *     clang -O1 -g -static -fsanitize-coverage=inline-8bit-counters,pc-table target.c \
 *           -L/usr/local/lib -lsandbox-fuzz-guest -o target
 * Under `sandbox-fuzz` the driver runs the initialisation once, hands the monitor its coverage
 * counters and input buffer, and is then reset to that point for every input. Run any other
 * way (natively, or with `sandbox-run`), it runs the files named on its command line, or
 * stdin, once each: a reproducer. */
#ifndef SBX_FUZZ_H
#define SBX_FUZZ_H

#include <stddef.h>
#include <stdint.h>

/* The largest input the driver takes (the environment's SANDBOX_FUZZ_MAX_LEN may lower it). */
#define SBX_FUZZ_MAX_INPUT (1u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

#endif
