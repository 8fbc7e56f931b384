/* libFuzzer target for the parsers the default view of a dynamic program trusts least: an ELF
 * object's dynamic section (loader_dyninfo_mem) and glibc's ld.so.cache
 * (loader_ldcache_lookup). The same bytes go through both; whatever they say must hold. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "loader.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const names[] = {"libc.so.6", "libm.so.6", "", "ld-linux-x86-64.so.2"};
	struct loader_dyninfo d;
	char err[256], out[4096];

	if (loader_dyninfo_mem(data, size, "fuzz", &d, err, sizeof(err)) == 0) {
		if (d.nneeded > LOADER_DYN_MAX_NEEDED || (d.interp && d.interp[0] != '/'))
			__builtin_trap();
		for (size_t i = 0; i < d.nneeded; i++)
			if (!d.needed[i] || !d.needed[i][0] || strlen(d.needed[i]) >= 4096)
				__builtin_trap();
		loader_dyninfo_free(&d);
	} else if (!memchr(err, 0, sizeof(err))) {
		__builtin_trap();
	}
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		int rc = loader_ldcache_lookup(data, size, names[i], out, sizeof(out));
		if (rc == 0 && (out[0] != '/' || strlen(out) >= sizeof(out)))
			__builtin_trap();
	}
	return 0;
}
