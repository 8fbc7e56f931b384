/* A planted heap overflow that does not crash on its own: a record "HEAP" <payload> copied into
 * a 16-byte block, up to 18 bytes of it. Two bytes past the block land in malloc's slack, so
 * only AddressSanitizer sees the bug: the target for sandbox-fuzz with sanitizers. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sbx_fuzz.h"

static char *volatile keep; /* the block escapes: the compiler keeps the copy */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 5 || data[0] != 'H' || data[1] != 'E' || data[2] != 'A' || data[3] != 'P')
		return 0;
#ifndef PLANTED_SAFE /* the throughput benchmark's build: the same work, no overflow */
	size_t n = size - 4 > 18 ? 18 : size - 4;
#else
	size_t n = size - 4 > 16 ? 16 : size - 4;
#endif
	char *p = malloc(16);
	keep = p;
	memcpy(p, data + 4, n); /* the bug: n may be 17 or 18 */
	free(keep);
	return 0;
}
