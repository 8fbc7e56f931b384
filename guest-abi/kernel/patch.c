/* Syscall-site patching: a `syscall` that traps costs a trap into the host (1-2 us on an AMD
 * host under PVM, ~21 us on an Intel one), a call into the kernel ~30 ns. The first time a site
 * traps, if its bytes have one of two fixed forms, it is rewritten into `jmp *disp32` through a
 * record in the window at SBX_PATCH_ADDR, whose code does what the site did and enters the
 * kernel at k_fast_entry with the frame a `syscall` makes:
 *
 *   A  b8 nr32 0f 05               mov $nr, %eax; syscall    (glibc's and musl's wrappers, Go)
 *   B  0f 05 48 3d imm32 jcc ...   syscall; cmp $imm32, %rax; jcc: glibc's read and syscall()
 *                                  (any number) when `ret` follows the jcc, and Go's
 *                                  Syscall6 (cmp $-4095; jbe) whatever follows
 *
 * Form B's compare is overwritten, and a jump to it would run other bytes: it is taken only in
 * shapes whose compare nothing else jumps to, a wrapper's end (a tail merged by a compiler
 * ends elsewhere) or Go's hand-written assembly. Only code mapped executable, and not writable,
 * from the program's image or a private file mapping (its libraries) is patched; never
 * anonymous memory (a JIT's code may change under us), code the program may copy or rewrite, a
 * shared mapping (the host's file) or the kernel. A site patched once is never patched again:
 * if its bytes are back (the program rewrote them, or the monitor put them back because code
 * jumps straight to its `syscall`, which is then cheaper as a trap than as a #UD exit) it traps
 * as it did. The `syscall` of form A is left as 0x37 0x00, disp32's upper half: invalid in
 * 64-bit mode, so a jump straight to it traps and the monitor makes it the syscall it was
 * (sbx_patch_resume). The records and the patched code are guest RAM, so snapshots, resets and
 * migration carry them as they carry the rest.
 *
 * With one thread nothing executes the site while it changes. With several, the monitor writes
 * it (PATCH) while no vCPU runs the program; a vCPU stopped inside the old instructions (at
 * form A's `syscall`, after form B's) goes on in the record. What no register shows is mended
 * by the kernel where it goes back to a saved address (k_patch_moved): a thread in the kernel
 * by form B's `syscall` returns into the new bytes, as does a signal's saved context. */
#include "kernel.h"

#define K_PATCH_RECS (SBX_PATCH_BYTES / SBX_PATCH_REC)
#define PAGE 4096ull
/* Form A's record after its `mov $nr, %eax` (5 bytes): what the site's `syscall` did. */
#define K_PATCH_A_SYSCALL 5

extern char k_fast_entry[];
static uint32_t k_patch_used; /* records handed out, in order */

/* Where each vCPU last set out to return to the program, written under the kernel lock just
 * before it lets the lock go (k_patch_returning). From then until its jump it runs kernel code,
 * where no register the monitor looks at shows where it is going: a site must not be patched
 * under it. A stale entry only puts a patch off to a later trap. */
#define K_PATCH_CPUS 1024
static uint64_t k_ret_rip[K_PATCH_CPUS];
static uint32_t k_ret_hi; /* entries below this were written */

/* Instruction prefixes and REX: a byte before a form's first one that could make it part of a
 * longer instruction (`41 b8 ..` is mov to %r8d). Such a site is left alone. */
static int prefix(uint8_t b)
{
	return (b & 0xf0) == 0x40 || b == 0x66 || b == 0x67 || b == 0xf0 || b == 0xf2 ||
	       b == 0xf3 || b == 0x2e || b == 0x3e || b == 0x26 || b == 0x36 || b == 0x64 ||
	       b == 0x65;
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint8_t *put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		*p++ = (uint8_t)(v >> (8 * i));
	return p;
}

static uint8_t *put64(uint8_t *p, uint64_t v)
{
	p = put32(p, (uint32_t)v);
	return put32(p, (uint32_t)(v >> 32));
}

/* jmp rel32 from p (its opcode's address) to `to`, both in the kernel's low 4 MiB. */
static uint8_t *jmp_rel(uint8_t *p, uint64_t to)
{
	*p = 0xe9;
	return put32(p + 1, (uint32_t)(to - ((uint64_t)p + 5)));
}

/* Code that may be patched: [a, b) inside one executable mapping of the program's image or a
 * private file mapping, and inside one page (one guest-physical page to write). That mapping,
 * or NULL. */
static const struct k_vma *patchable(uint64_t a, uint64_t b)
{
	const struct k_vma *v = k_vma_find(a);
	if (!v || b > v->end || (a & ~(PAGE - 1)) != ((b - 1) & ~(PAGE - 1)))
		return 0;
	int code = (v->kind == K_VMA_ELF || v->kind == K_VMA_FILE) && (v->prot & SBX_PROT_EXEC) &&
		   (v->ptprot & SBX_PROT_EXEC) && !(v->prot & SBX_PROT_WRITE);
	return code ? v : 0;
}

static int enabled(void)
{
	if (BOOT->flags & SBX_BOOT_NOPATCH)
		return 0;
	/* The record's code enters the kernel with a jump: only where kernel and program run at
	 * one level (PVM: both CPL3; --cpl 0: both CPL0), not a CPL3 program under a CPL0
	 * kernel, where only a trap changes level. */
	uint16_t cs;
	__asm__("mov %%cs, %0" : "=r"(cs));
	return (cs & 3) == 3 || (BOOT->flags & SBX_BOOT_CPL0);
}

/* Writes the site's new bytes through the kernel's map of RAM (the code is read-only in the page
 * tables), the first byte last: 0, or -1 when the page is not there. */
static int write_site(uint64_t site, const uint8_t *bytes, unsigned n)
{
	uint64_t gpa;
	if (k_gpa_run(site, n, &gpa) < n)
		return -1;
	volatile uint8_t *p = k_phys(gpa);
	for (unsigned i = n; i-- > 0;)
		p[i] = bytes[i];
	return 0;
}

static struct sbx_patch_rec *record(uint32_t i)
{
	return (struct sbx_patch_rec *)(SBX_PATCH_ADDR + (uint64_t)i * SBX_PATCH_REC);
}

/* Was site patched before? Only traps look, once per site that has a form. */
static int patched_before(uint64_t site)
{
	for (uint32_t i = 0; i < k_patch_used; i++)
		if (record(i)->site == site)
			return 1;
	return 0;
}

/* A conditional jump at p (rel8 or rel32) followed by ret. */
static int jcc_ret(const uint8_t *p)
{
	if (p[0] >= 0x70 && p[0] <= 0x7f)
		return p[2] == 0xc3;
	return p[0] == 0x0f && p[1] >= 0x80 && p[1] <= 0x8f && p[6] == 0xc3;
}

/* Go's check after its `syscall` (runtime/internal/syscall.Syscall6, syscall.RawSyscall6, the
 * runtime's own calls): cmp $-4095, %rax (imm32 0xfffff001), then jbe. A C compiler writes
 * that test as cmp $-4096 and ja or jbe. p: the cmp's imm32. */
static int go_check(const uint8_t *p)
{
	return le32(p) == 0xfffff001u && (p[4] == 0x76 || (p[4] == 0x0f && p[5] == 0x86));
}

/* The form of the site at `site` (len bytes): 'A', `mov $nr, %eax; syscall` (nr its immediate),
 * or 'B', a `syscall` ending a wrapper or Go's checked call; 0 if neither. */
static uint8_t form_at(uint64_t site, unsigned *len, uint32_t *nr)
{
	const struct k_vma *v = patchable(site, site + 7);
	if (v) {
		const uint8_t *p = (const uint8_t *)site;
		if (p[0] == 0xb8 && p[5] == 0x0f && p[6] == 0x05 &&
		    (v->start == site || !prefix(p[-1]))) {
			*len = 7, *nr = le32(p + 1);
			return 'A';
		}
	}
	/* Form B: the syscall, the compare after it, then a conditional jump and ret (read up to
	 * 15 bytes on, inside the mapping). */
	v = patchable(site, site + 8);
	if (v && site + 15 <= v->end) {
		const uint8_t *p = (const uint8_t *)site;
		if (p[0] == 0x0f && p[1] == 0x05 && p[2] == 0x48 && p[3] == 0x3d &&
		    (jcc_ret(p + 8) || go_check(p + 4))) {
			*len = 8, *nr = 0;
			return 'B';
		}
	}
	return 0;
}

/* Rewrites the site (form and len from form_at) into a jump to a record of its own: 0, or -1
 * when it was left as it is. */
static int install(uint64_t site, unsigned len, uint8_t form, uint32_t nr)
{
	if (patched_before(site))
		return -1;
	/* Records the monitor filled at load (cpuid sites) are passed over. */
	uint32_t limit = BOOT->patch_limit && BOOT->patch_limit < K_PATCH_RECS ? BOOT->patch_limit
									       : K_PATCH_RECS;
	while (k_patch_used < limit && record(k_patch_used)->code[0] == SBX_PATCH_FORM_CPUID)
		k_patch_used++;
	if (k_patch_used >= limit) {
		BOOT->patch_refused++;
		return -1;
	}
	struct sbx_patch_rec *r = record(k_patch_used);
	uint8_t *c = r->code;
	if (form == 'A') {
		*c = SBX_PATCH_FORM_MOV; /* mov $nr, %eax */
		c = put32(c + 1, nr);
		*c++ = 0x48, *c++ = 0xb9; /* movabs $site + 7, %rcx */
		c = put64(c, site + 7);
		c = jmp_rel(c, (uint64_t)k_fast_entry);
	} else {
		/* lea 1f(%rip), %rcx; jmp k_fast_entry; jmp <start>; 1: cmp $imm32, %rax;
		 * jmp *2f(%rip); 2: .quad site + 8. The call returns to 1 (SBX_PATCH_B_RET), and
		 * the two bytes before it go back to the start: a handler that restarts the call
		 * as Linux code does (rip - 2) makes it again. */
		*c++ = 0x48, *c++ = 0x8d, *c++ = 0x0d;
		c = put32(c, 7);
		c = jmp_rel(c, (uint64_t)k_fast_entry);
		*c++ = 0xeb, *c++ = 0xf2; /* jmp -14: the record's first instruction */
		k_memcpy(c, (const void *)(site + 2), 6);
		c += 6;
		*c++ = 0xff, *c++ = 0x25;
		c = put32(c, 0);
		c = put64(c, site + 8);
	}
	while (c < r->code + sizeof(r->code))
		*c++ = 0xcc;
	r->code_addr = (uint64_t)r->code;
	r->site = site;
	/* jmp *disp32: ff 24 25, the record's address (its upper half 0x37 0x00), then int3 for
	 * form B's eighth byte. */
	uint8_t b[8] = {0xff, 0x24, 0x25, 0, 0, 0, 0, 0xcc};
	put32(b + 3, (uint32_t)(uint64_t)r);
	if (k_nthreads > 1) {
		uint64_t inside = form == 'A' ? site + 5 : site + 2;
		for (uint32_t i = 0; i < k_ret_hi; i++)
			if (i != K_CPU->index && k_ret_rip[i] == inside)
				return -1;
		/* Where a vCPU stopped inside the old instructions goes on: at form A's
		 * `syscall`, the record's code after its mov (%eax may be another number, if
		 * code jumped there); after form B's, its compare. */
		uint64_t gpa, bytes = 0;
		if (k_gpa_run(site, len, &gpa) < len)
			return -1;
		k_memcpy(&bytes, b, len);
		uint64_t a[6] = {
		    site,
		    gpa,
		    bytes,
		    len,
		    inside,
		    (uint64_t)r->code + (form == 'A' ? K_PATCH_A_SYSCALL : SBX_PATCH_B_RET)};
		if (k_call(SBX_CALL_PATCH, a, 6) < 0)
			return -1;
	} else if (write_site(site, b, len) < 0) {
		return -1;
	}
	k_patch_used++;
	BOOT->patched++;
	return 0;
}

void k_patch_site(uint64_t nr, struct k_frame *f)
{
	uint64_t ret = f->rcx, site = 0;
	unsigned len;
	uint32_t imm;
	uint8_t form = 0;
	/* The code is written through the kernel's map of RAM, built at the first memory call
	 * (before it the image's text is mapped read-only, and only there). */
	if (!k_physmap_on || !enabled() || ret < SBX_USER_ADDR + 8)
		return;
	/* Form A: the 7 bytes before the return address, its immediate the call's number; form
	 * B: the `syscall` just before it. */
	if (form_at(ret - 7, &len, &imm) == 'A' && imm == (uint32_t)nr)
		site = ret - 7, form = 'A';
	else if (form_at(ret - 2, &len, &imm) == 'B')
		site = ret - 2, form = 'B';
	if (!form || install(site, len, form, imm) < 0)
		return;
	/* Form B's compare is inside the new bytes: this call returns through the record too. */
	if (form == 'B')
		f->rcx = (uint64_t)record(k_patch_used - 1)->code + SBX_PATCH_B_RET;
}

/* Whether the kernel can patch at all, as it found at the point, in its own context: the park
 * loop runs at the program's level, which under a CPL0 kernel may be CPL3. */
static int k_patch_works;

void k_patch_note_level(void)
{
	k_patch_works = enabled();
}

/* A site an earlier run from the same snapshot patched (exec.c): patched again before this run
 * if its bytes still have a form, so that its first call needs no trap. */
int k_patch_again(uint64_t site)
{
	unsigned len;
	uint32_t nr;
	uint8_t form;
	if (!k_physmap_on || !k_patch_works || k_nthreads > 1 || site < SBX_USER_ADDR + 8 ||
	    !(form = form_at(site, &len, &nr)))
		return -1;
	return install(site, len, form, nr);
}

/* The bytes at [va, va + n) of the program's code, read through the map of RAM: -1 unless
 * they are in one present page of RAM (not a shared file's window above it). Nothing is
 * faulted in. */
static int peek(uint64_t va, uint8_t *out, unsigned n)
{
	uint64_t size = 0, *e = k_pt_leaf(va, &size);
	if (!e || !(*e & SBX_PTE_P) || (va & (size - 1)) + n > size)
		return -1;
	uint64_t gpa = (*e & SBX_PTE_ADDR & ~(size - 1)) + (va & (size - 1));
	if (gpa >= BOOT->mem_size || BOOT->mem_size - gpa < n)
		return -1;
	k_memcpy(out, k_phys(gpa), n);
	return 0;
}

void k_patch_returning(uint64_t rip)
{
	uint32_t i = K_CPU->index;
	if (i >= K_PATCH_CPUS)
		return;
	k_ret_rip[i] = rip;
	if (i >= k_ret_hi)
		k_ret_hi = i + 1;
}

uint64_t k_patch_moved(uint64_t rip)
{
	if (!k_patch_used || rip < SBX_USER_ADDR + 8)
		return rip;
	/* Form A's site starts 5 bytes before (its `syscall` was at rip), form B's 2 (rip is
	 * after its `syscall`): [rip - 5, rip + 5) holds both, read at once where it can be. */
	uint8_t b[10];
	int whole = peek(rip - 5, b, sizeof(b)) == 0;
	for (unsigned back = 2; back <= 5; back += 3) {
		uint8_t own[7];
		const uint8_t *p = whole ? b + 5 - back : own;
		uint64_t site = rip - back;
		if ((!whole && peek(site, own, sizeof(own)) < 0) || p[0] != 0xff || p[1] != 0x24 ||
		    p[2] != 0x25)
			continue;
		uint64_t a = le32(p + 3);
		if (a < SBX_PATCH_ADDR || (a - SBX_PATCH_ADDR) % SBX_PATCH_REC ||
		    (a - SBX_PATCH_ADDR) / SBX_PATCH_REC >= k_patch_used)
			continue;
		const struct sbx_patch_rec *r = (const struct sbx_patch_rec *)a;
		if (r->code[0] == SBX_PATCH_FORM_CPUID)
			continue;
		int form_a = r->code[0] == SBX_PATCH_FORM_MOV;
		if (r->site == site && form_a == (back == 5))
			return (uint64_t)r->code + (form_a ? K_PATCH_A_SYSCALL : SBX_PATCH_B_RET);
	}
	return rip;
}

/* The entry KVM answers (function, index) from, or NULL. */
static volatile struct sbx_cpuid_ent *cpuid_find(volatile struct sbx_cpuid_table *t, uint32_t n,
						 uint32_t leaf, uint32_t sub)
{
	for (uint32_t i = 0; i < n; i++) {
		volatile struct sbx_cpuid_ent *e = &t->e[i];
		if (e->function == leaf &&
		    (!(e->flags & SBX_CPUID_SIGNIFICANT_INDEX) || e->index == sub))
			return e;
	}
	return NULL;
}

/* What cpuid answers, for a patched cpuid site (k_cpuid_entry): the monitor's copy of the
 * vCPU's table, looked up as KVM does (kvm_cpuid). A basic or extended leaf up to its range's
 * highest, with no entry for it or for the subleaf, is zeros (leaves 0xb and 0x1f keep the
 * subleaf in %cl and the x2APIC id in %edx), the same in every KVM since 5.x; anything else
 * outside the table is asked of the host: a real cpuid (KVM's out-of-range rules differ by
 * vendor and version). So a loop over subleaves never leaves the program's code for long,
 * where signals come (monitor/core/signal.c). */
void k_cpuid(uint32_t leaf, uint32_t sub, uint32_t out[4])
{
	volatile struct sbx_cpuid_table *t = (volatile struct sbx_cpuid_table *)SBX_CPUID_ADDR;
	for (int tries = 0; tries < 1000; tries++) {
		/* A sequence lock: the monitor rewrites it when XCR0 changes, while other vCPUs
		 * may be reading. */
		uint32_t seq = __atomic_load_n(&t->seq, __ATOMIC_ACQUIRE);
		if (seq & 1)
			continue;
		uint32_t n = t->n < SBX_CPUID_ENTS ? t->n : SBX_CPUID_ENTS, r[4] = {0};
		volatile struct sbx_cpuid_ent *e = cpuid_find(t, n, leaf, sub), *range = NULL;
		int known = e != NULL;
		if (e) {
			r[0] = e->eax, r[1] = e->ebx, r[2] = e->ecx, r[3] = e->edx;
		} else if (leaf < 0x40000000 || (leaf >= 0x80000000 && leaf < 0xc0000000)) {
			range = cpuid_find(t, n, leaf & 0x80000000, 0);
			known = range && leaf <= range->eax;
			volatile struct sbx_cpuid_ent *one = known && (leaf == 0xb || leaf == 0x1f)
								 ? cpuid_find(t, n, leaf, 1)
								 : NULL;
			if (one)
				r[2] = sub & 0xff, r[3] = one->edx;
		}
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		if (__atomic_load_n(&t->seq, __ATOMIC_RELAXED) != seq)
			continue;
		if (!known)
			break;
		out[0] = r[0], out[1] = r[1], out[2] = r[2], out[3] = r[3];
		return;
	}
	__asm__ volatile("cpuid"
			 : "=a"(out[0]), "=b"(out[1]), "=c"(out[2]), "=d"(out[3])
			 : "a"(leaf), "c"(sub));
}
