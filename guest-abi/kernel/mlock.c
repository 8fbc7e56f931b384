/* mlock and its family. This kernel never pages guest memory out, so a lock changes nothing;
 * what remains is what Linux checks, so that a program that tests its result (gpgme, dar,
 * databases pinning keys) sees Linux's answers: the range must be mapped, the flags known. */
#include "kernel.h"

#define MLOCK_ONFAULT 1u
#define MCL_CURRENT 1u
#define MCL_FUTURE 2u
#define MCL_ONFAULT 4u

/* Every page of [addr, addr+len), rounded out to pages, lies in some mapping. The rounding
 * wraps as Linux's does (a length near 2^64 rounds to nothing), and only a range that then
 * passes the top of the address space is EINVAL. */
static long range_mapped(uint64_t addr, uint64_t len)
{
	uint64_t start = addr & ~(SBX_PAGE_SIZE - 1);
	len = (len + (addr - start) + SBX_PAGE_SIZE - 1) & ~(SBX_PAGE_SIZE - 1);
	uint64_t end = start + len;
	if (end < start)
		return -EINVAL;
	for (uint64_t a = start; a < end;) {
		const struct k_vma *v = k_vma_find(a);
		if (!v)
			return -ENOMEM;
		a = v->end;
	}
	return 0;
}

long k_sys_mlock(struct k_frame *f)
{
	return range_mapped(f->rdi, f->rsi);
}

long k_sys_munlock(struct k_frame *f)
{
	return range_mapped(f->rdi, f->rsi);
}

long k_sys_mlock2(struct k_frame *f)
{
	if (f->rdx & ~(uint64_t)MLOCK_ONFAULT)
		return -EINVAL;
	return range_mapped(f->rdi, f->rsi);
}

long k_sys_mlockall(struct k_frame *f)
{
	uint64_t fl = f->rdi;
	if (!fl || (fl & ~(uint64_t)(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT)) || fl == MCL_ONFAULT)
		return -EINVAL;
	return 0;
}

long k_sys_munlockall(struct k_frame *f)
{
	(void)f;
	return 0;
}
