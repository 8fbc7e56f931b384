/* libFuzzer target for the ELF loader: any bytes go through loader_load_mem, and whatever
 * loads gets an initial stack built for it, as the monitor would do. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#include "loader.h"

#define GUEST_SIZE (32ull << 20)
#define USER_MIN 0x400000ull
#define STACK_TOP GUEST_SIZE
#define STACK_BYTES (1ull << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Guest RAM is mapped once per process: a fresh 32 MiB per input would dominate the run. */
static struct loader_mem *guest(void)
{
	static struct loader_mem mem;

	if (!mem.base) {
		void *p = mmap(NULL, GUEST_SIZE, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (p == MAP_FAILED)
			__builtin_trap();
		mem.base = p;
		mem.size = GUEST_SIZE;
	}
	return &mem;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const argv[] = {"/fuzz/prog", "-x", "input", NULL};
	static const char *const envp[] = {"HOME=/", "PATH=/bin:/usr/bin", NULL};
	struct loader_mem *mem = guest();
	struct loader_params params = {
	    .min_addr = USER_MIN,
	    .max_addr = STACK_TOP - STACK_BYTES,
	    .pie_base = USER_MIN,
	    .mem_is_zero = 0, /* exercise the zeroing too */
	    .cpuid_sites = 1, /* and the symbol table, CFI and code the cpuid finder reads */
	};
	struct loader_image img;
	char err[256];

	if (loader_load_mem(data, size, &params, mem, &img, err, sizeof(err)) != 0)
		return 0;
	/* What the loader reports must hold whatever the input was. */
	if (img.nsegs == 0 || img.nsegs > LOADER_MAX_RANGES || img.lo < USER_MIN ||
	    img.hi > params.max_addr || img.brk != img.hi || img.entry < img.lo ||
	    img.entry >= img.hi)
		__builtin_trap();
	if (img.ncpuid > LOADER_CPUID_MAX)
		__builtin_trap();
	for (unsigned i = 0; i < img.ncpuid; i++)
		if (img.cpuid[i].site < img.lo || img.cpuid[i].site + img.cpuid[i].len > img.hi ||
		    memcmp(mem->base + img.cpuid[i].site, img.cpuid[i].orig, img.cpuid[i].len))
			__builtin_trap();
	for (unsigned i = 0; i < img.nsegs; i++)
		if (img.segs[i].start >= img.segs[i].end || img.segs[i].start % 4096 ||
		    img.segs[i].end % 4096 || (i && img.segs[i - 1].end > img.segs[i].start))
			__builtin_trap();

	struct loader_stack_args args = {
	    .argv = argv,
	    .envp = envp,
	    .execfn = argv[0],
	    .clktck = 100,
	    .minsigstksz = 2048,
	    .stack_top = STACK_TOP,
	    .stack_limit = STACK_TOP - STACK_BYTES,
	};
	uint64_t rsp;
	memcpy(args.random, data, size < 16 ? size : 16);
	if (loader_build_stack(mem, &img, &args, &rsp, err, sizeof(err)) != 0 || rsp % 16)
		__builtin_trap();
	return 0;
}
