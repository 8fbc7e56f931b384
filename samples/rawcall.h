/* rawcall's parts: the ring, output and exit (rawcall_ring.c), the modes (rawcall.c), and the table
 * of every call with every argument kind (rawcall_calls.c). Freestanding: no libc. */
#ifndef RAWCALL_H
#define RAWCALL_H

#include "sbx_abi.h"

#define RING ((volatile struct sbx_ring *)SBX_RING_ADDR)
#define BOOT ((volatile struct sbx_bootinfo *)SBX_BOOTINFO_ADDR)

/* One request with all seven argument words; returns what the monitor answered. */
int64_t rawcall7(uint32_t nr, const uint64_t a[7]);
/* The same with the slot's pad word (SBX_SLOT_OWN: served by the vCPU's own thread). */
int64_t rawcall7_pad(uint32_t nr, uint32_t pad, const uint64_t a[7]);
/* The same with five words (the last two zero). */
int64_t rawcall_call(uint32_t nr, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4);
uint64_t rawcall_len(const char *s);
void rawcall_doorbell(void);
/* Where rawcall_say writes (the guest's fd 1 unless changed). */
extern int rawcall_out;
void rawcall_say(const char *s);
void rawcall_say_num(int64_t v);
void rawcall_leave(uint64_t status) __attribute__((noreturn));
void *memset(void *d, int c, unsigned long n);
void *memcpy(void *d, const void *s, unsigned long n);

/* `rawcall calls NR [ARG]`: every argument kind for call NR (rawcall_calls.c). */
void rawcall_calls(uint32_t nr, uint64_t arg) __attribute__((noreturn));

#endif
