/* main() for a fuzz target inside the sandbox (sbx_fuzz.h). Not instrumented itself: only the
 * target's own code counts as coverage. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "sbx_abi.h"
#include "sbx_fuzz.h"

/* inline-8bit-counters: one __sancov_cntrs section in a static link, announced per module. */
static uint8_t *cnt_lo, *cnt_hi;

void __sanitizer_cov_8bit_counters_init(uint8_t *start, uint8_t *stop);
void __sanitizer_cov_8bit_counters_init(uint8_t *start, uint8_t *stop)
{
	if (start >= stop)
		return;
	if (!cnt_lo || start < cnt_lo)
		cnt_lo = start;
	if (stop > cnt_hi)
		cnt_hi = stop;
}

/* pc-table: accepted so that targets built with it link; sandbox-fuzz gives libFuzzer the
 * counters only, not PC tables (README, "Limits of this version"). */
void __sanitizer_cov_pcs_init(const uintptr_t *beg, const uintptr_t *end);
void __sanitizer_cov_pcs_init(const uintptr_t *beg, const uintptr_t *end)
{
	(void)beg;
	(void)end;
}

/* trace-pc-guard: each guard gets a counter of its own in this array. */
#define GUARD_COUNTERS (1u << 16)
static uint8_t guard_cnt[GUARD_COUNTERS];
static uint32_t guard_next;

void __sanitizer_cov_trace_pc_guard_init(uint32_t *start, uint32_t *stop);
void __sanitizer_cov_trace_pc_guard_init(uint32_t *start, uint32_t *stop)
{
	if (start == stop || *start)
		return;
	for (uint32_t *g = start; g < stop; g++)
		*g = 1 + (guard_next++ % (GUARD_COUNTERS - 1));
}

void __sanitizer_cov_trace_pc_guard(uint32_t *guard);
void __sanitizer_cov_trace_pc_guard(uint32_t *guard)
{
	guard_cnt[*guard]++;
}

/* trace-cmp, trace-div, trace-gep and the C library's comparison hooks: libFuzzer's value
 * profile and its table of compared bytes live in the host's libFuzzer, which sees the counters
 * only. Accepted and ignored, so that a target built with them links (Go's -d=libfuzzer always
 * emits the cmp and strcmp hooks); weak, so that a target's own win. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-parameter"
#define SBX_IGNORED_HOOK(name, ...)                                                                \
	void name(__VA_ARGS__) __attribute__((weak));                                              \
	void name(__VA_ARGS__)                                                                     \
	{                                                                                          \
	}
SBX_IGNORED_HOOK(__sanitizer_cov_trace_cmp1, uint8_t a, uint8_t b)
SBX_IGNORED_HOOK(__sanitizer_cov_trace_cmp2, uint16_t a, uint16_t b)
SBX_IGNORED_HOOK(__sanitizer_cov_trace_cmp4, uint32_t a, uint32_t b)
SBX_IGNORED_HOOK(__sanitizer_cov_trace_cmp8, uint64_t a, uint64_t b)
SBX_IGNORED_HOOK(__sanitizer_cov_trace_const_cmp1, uint8_t a, uint8_t b)
SBX_IGNORED_HOOK(__sanitizer_cov_trace_const_cmp2, uint16_t a, uint16_t b)
SBX_IGNORED_HOOK(__sanitizer_cov_trace_const_cmp4, uint32_t a, uint32_t b)
SBX_IGNORED_HOOK(__sanitizer_cov_trace_const_cmp8, uint64_t a, uint64_t b)
SBX_IGNORED_HOOK(__sanitizer_cov_trace_switch, uint64_t v, uint64_t *cases)
SBX_IGNORED_HOOK(__sanitizer_cov_trace_div4, uint32_t v)
SBX_IGNORED_HOOK(__sanitizer_cov_trace_div8, uint64_t v)
SBX_IGNORED_HOOK(__sanitizer_cov_trace_gep, uintptr_t idx)
SBX_IGNORED_HOOK(__sanitizer_weak_hook_memcmp, void *pc, const void *a, const void *b, size_t n,
		 int r)
SBX_IGNORED_HOOK(__sanitizer_weak_hook_strncmp, void *pc, const char *a, const char *b, size_t n,
		 int r)
SBX_IGNORED_HOOK(__sanitizer_weak_hook_strcmp, void *pc, const char *a, const char *b, int r)
SBX_IGNORED_HOOK(__sanitizer_weak_hook_strncasecmp, void *pc, const char *a, const char *b,
		 size_t n, int r)
SBX_IGNORED_HOOK(__sanitizer_weak_hook_strcasecmp, void *pc, const char *a, const char *b, int r)
SBX_IGNORED_HOOK(__sanitizer_weak_hook_strstr, void *pc, const char *a, const char *b, char *r)
SBX_IGNORED_HOOK(__sanitizer_weak_hook_strcasestr, void *pc, const char *a, const char *b, char *r)
SBX_IGNORED_HOOK(__sanitizer_weak_hook_memmem, void *pc, const void *a, size_t na, const void *b,
		 size_t nb, void *r)
#pragma GCC diagnostic pop

static int run_file(const char *path)
{
	FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
	if (!f) {
		fprintf(stderr, "sandbox-fuzz driver: %s: %s\n", path, strerror(errno));
		return 1;
	}
	size_t cap = 4096, n = 0;
	uint8_t *buf = malloc(cap);
	for (size_t k; buf && (k = fread(buf + n, 1, cap - n, f)) > 0;) {
		n += k;
		if (n == cap)
			buf = realloc(buf, cap *= 2);
	}
	if (f != stdin)
		fclose(f);
	if (!buf)
		return 1;
	/* An exact-size copy, as libFuzzer gives. */
	uint8_t *data = malloc(n ? n : 1);
	memcpy(data, buf, n);
	free(buf);
	fprintf(stderr, "Running: %s (%zu bytes)\n", path, n);
	LLVMFuzzerTestOneInput(data, n);
	free(data);
	return 0;
}

int main(int argc, char **argv)
{
	if (LLVMFuzzerInitialize)
		LLVMFuzzerInitialize(&argc, &argv);
	size_t max = SBX_FUZZ_MAX_INPUT;
	const char *e = getenv("SANDBOX_FUZZ_MAX_LEN");
	if (e && strtoul(e, NULL, 0) > 0 && strtoul(e, NULL, 0) < max)
		max = strtoul(e, NULL, 0);
	long page = sysconf(_SC_PAGESIZE);
	size_t span = (max + (size_t)page - 1) / (size_t)page * (size_t)page;
	/* The input's bytes end where a guard page begins: a read past them faults. */
	uint8_t *buf = mmap(NULL, span + (size_t)page, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (buf == MAP_FAILED || mprotect(buf + span, (size_t)page, PROT_NONE) < 0) {
		perror("sandbox-fuzz driver: input buffer");
		return 1;
	}
	uint8_t *lo = cnt_lo, *hi = cnt_hi;
	if (!lo && guard_next) {
		lo = guard_cnt;
		hi = guard_cnt + (guard_next < GUARD_COUNTERS ? guard_next + 1 : GUARD_COUNTERS);
	}
	long n = syscall(SBX_SYS_EXEC, SBX_EXEC_OP_POINT, lo, (size_t)(hi - lo), buf, span);
	if (n < 0 && errno == ENOSYS) {
		/* Not under sandbox-fuzz: reproduce the inputs named. */
		int rc = 0;
		if (argc < 2)
			return run_file("-");
		for (int i = 1; i < argc; i++)
			if (argv[i][0] != '-' || !argv[i][1])
				rc |= run_file(argv[i]);
		return rc;
	}
	if (n < 0) {
		perror("sandbox-fuzz driver: snapshot point");
		return 1;
	}
	LLVMFuzzerTestOneInput(buf + span - (size_t)n, (size_t)n);
	syscall(SBX_SYS_EXEC, SBX_EXEC_OP_DONE);
	return 0;
}
