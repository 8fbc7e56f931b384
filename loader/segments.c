/* The page list the monitor maps: PT_LOADs rounded out to pages, with a page that two
 * segments share (Linux allows it) given the union of their protections. */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "loader_priv.h"

static uint64_t page_down(uint64_t a)
{
	return a & ~(LOADER_PAGE - 1);
}

static uint64_t page_up(uint64_t a)
{
	return (a + LOADER_PAGE - 1) & ~(LOADER_PAGE - 1);
}

static void sort_u64(uint64_t *v, unsigned n)
{
	for (unsigned i = 1; i < n; i++)
		for (unsigned j = i; j > 0 && v[j - 1] > v[j]; j--) {
			uint64_t t = v[j];
			v[j] = v[j - 1];
			v[j - 1] = t;
		}
}

void loader_make_segments(struct loader_plan *plan)
{
	uint64_t cut[2 * LOADER_MAX_SEGS];
	struct loader_image *img = &plan->img;
	unsigned ncut = 0;

	/* Every page-rounded start and end is a place where the protection may change; between
	 * two neighbouring cuts it is constant. */
	for (unsigned k = 0; k < plan->nloads; k++) {
		cut[ncut++] = page_down(plan->loads[k].vaddr);
		cut[ncut++] = page_up(plan->loads[k].vaddr + plan->loads[k].memsz);
	}
	sort_u64(cut, ncut);
	img->nsegs = 0;
	for (unsigned c = 0; c + 1 < ncut; c++) {
		uint64_t a = cut[c], b = cut[c + 1];
		uint32_t prot = 0;
		int covered = 0;

		if (a == b)
			continue;
		for (unsigned k = 0; k < plan->nloads; k++) {
			const struct loader_load *ld = &plan->loads[k];
			if (page_down(ld->vaddr) <= a && b <= page_up(ld->vaddr + ld->memsz)) {
				prot |= ld->prot;
				covered = 1;
			}
		}
		if (!covered)
			continue;
		struct loader_segment *last = img->nsegs ? &img->segs[img->nsegs - 1] : NULL;
		if (last && last->end == a && last->prot == prot) {
			last->end = b;
			continue;
		}
		img->segs[img->nsegs++] =
		    (struct loader_segment){.start = a, .end = b, .prot = prot};
	}
	img->lo = cut[0];
	img->hi = cut[ncut - 1];
	img->brk = img->hi;
}

int loader_add_interp(struct loader_image *prog, const struct loader_image *interp,
		      const char *name, char *err, size_t errlen)
{
	struct loader_segment merged[LOADER_MAX_RANGES];
	unsigned n = 0, a = 0, b = 0;

	if (interp->interp[0])
		return loader_fail(err, errlen, -ENOEXEC,
				   "the interpreter %s has a PT_INTERP of its own: an interpreter "
				   "must load without one",
				   name);
	if (prog->nsegs + interp->nsegs > LOADER_MAX_RANGES)
		return loader_fail(err, errlen, -ENOEXEC,
				   "the program and its interpreter %s have %u page ranges "
				   "together, more than %d",
				   name, prog->nsegs + interp->nsegs, LOADER_MAX_RANGES);
	/* Both lists are sorted and disjoint: merge them, refusing any overlap. */
	while (a < prog->nsegs || b < interp->nsegs) {
		const struct loader_segment *p = a < prog->nsegs ? &prog->segs[a] : NULL;
		const struct loader_segment *q = b < interp->nsegs ? &interp->segs[b] : NULL;
		if (p && q && p->start < q->end && q->start < p->end)
			return loader_fail(err, errlen, -ENOEXEC,
					   "the interpreter %s at 0x%" PRIx64 "-0x%" PRIx64
					   " overlaps the program at 0x%" PRIx64 "-0x%" PRIx64,
					   name, q->start, q->end, p->start, p->end);
		if (p && (!q || p->start < q->start)) {
			merged[n++] = *p;
			a++;
		} else {
			merged[n++] = *q;
			b++;
		}
	}
	memcpy(prog->segs, merged, n * sizeof(merged[0]));
	for (unsigned i = 0; i < interp->ncpuid && prog->ncpuid < LOADER_CPUID_MAX; i++)
		prog->cpuid[prog->ncpuid++] = interp->cpuid[i];
	prog->nsegs = n;
	prog->lo = prog->lo < interp->lo ? prog->lo : interp->lo;
	prog->hi = prog->hi > interp->hi ? prog->hi : interp->hi;
	prog->entry = interp->entry;
	prog->interp_base = interp->bias;
	return 0;
}
