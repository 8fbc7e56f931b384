/* A small parser with a planted bug: a record "SBXF" <u16 length> <payload>, where a payload
 * of length 0x4242 whose first byte is '!' takes a path that writes through a null pointer.
 * The crash is reachable only through the magic and the length check, which coverage
 * guidance finds byte by byte. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "sbx_fuzz.h"

static int checksum(const uint8_t *p, size_t n)
{
	int s = 0;
	for (size_t i = 0; i < n; i++)
		s += p[i];
	return s;
}

static volatile int parse_calls;

static void __attribute__((noinline)) planted_bug(volatile int *p)
{
	*p = 1;
}

static int parse_record(const uint8_t *data, size_t size)
{
	if (size < 7)
		return -1;
	if (data[0] != 'S')
		return -1;
	if (data[1] != 'B')
		return -1;
	if (data[2] != 'X')
		return -1;
	if (data[3] != 'F')
		return -1;
	uint16_t len = (uint16_t)(data[4] | data[5] << 8);
	if (len != 0x4242)
		return checksum(data + 6, size - 6);
#ifndef PLANTED_SAFE /* the throughput benchmark's build: the same work, no crash to stop it */
	if (data[6] == '!')
		planted_bug((volatile int *)(uintptr_t)(size & 0)); /* the bug */
#else
	if (data[6] == '!')
		planted_bug((volatile int *)(uintptr_t)&parse_calls);
#endif
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	parse_record(data, size);
	return 0;
}
