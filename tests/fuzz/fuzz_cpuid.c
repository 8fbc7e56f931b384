/* libFuzzer target for the cpuid site finder (loader/cpuid_sites.c) and the instruction decoder
 * under it (loader/x86_decode.c): any bytes are a function's code. Whatever they are, every
 * site found must be a cpuid of those bytes with movable instructions before it, and every
 * length the decoder gives must lie inside the bytes it was given. */
#include <stdint.h>
#include <string.h>

#include "loader_priv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint64_t va = 0x401000;
	struct loader_cpuid_site s[16];
	int n = loader_cpuid_scan(data, size, va, s, 16);
	if (n < 0 || n > 16)
		__builtin_trap();
	for (int i = 0; i < n; i++) {
		if (s[i].site < va || s[i].site + s[i].len > va + size ||
		    s[i].len > LOADER_CPUID_SITE_MAX || s[i].len != s[i].pre + 2 ||
		    (s[i].pre != 5 && s[i].pre < 7) || s[i].special > 1 ||
		    memcmp(s[i].orig, data + (s[i].site - va), s[i].len) ||
		    s[i].orig[s[i].pre] != 0x0f || s[i].orig[s[i].pre + 1] != 0xa2 ||
		    (i && s[i].site < s[i - 1].site + s[i - 1].len))
			__builtin_trap();
	}
	for (size_t off = 0; off < size && off < 4096; off++) {
		struct loader_insn in;
		unsigned len = loader_x86_decode(data + off, size - off, &in);
		if (len > 15 || len > size - off || (len && in.len != len))
			__builtin_trap();
	}
	return 0;
}
