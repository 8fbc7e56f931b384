/* The monitor's side of the kernel's syscall-site patching (guest-abi/kernel/patch.c). A
 * patched site of the `mov $nr, %eax; syscall` form leaves its `syscall`'s two bytes as 0x37 0x00,
 * an invalid instruction: code that jumps straight to the `syscall` (with its own %eax) traps
 * there, and is made to enter the kernel as that `syscall` would have. The site also gets its
 * own bytes back: code that jumps there would otherwise pay this exit (26-85 us) on every call,
 * where the `syscall` traps for 1-21 us; the kernel never patches a site twice. The records live in
 * guest RAM, which the program can write: they are only believed about what they claim (this
 * site was patched), and all they can do is run the program's own syscall entry with its own
 * registers, which a `syscall` instruction could do anyway. */
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "loader.h"
#include "vm.h"

/* What a program's own flags can hold (CF PF AF ZF SF TF IF DF OF AC ID): the frame is guest
 * memory, and no VM, VIF, VIP, IOPL, NT or reserved bit of it may reach the vCPU. */
#define RFLAGS_USER 0x240fd5ull

int sbx_patch_record_at(struct sbx_vm *vm, uint64_t va, struct sbx_patch_rec *rec)
{
	uint8_t b[7];
	if (sbx_gva_read(vm, sbx_guest_root(vm), va, b, sizeof(b)) < 0 || b[0] != 0xff ||
	    b[1] != 0x24 || b[2] != 0x25)
		return -1;
	uint64_t a =
	    (uint64_t)b[3] | (uint64_t)b[4] << 8 | (uint64_t)b[5] << 16 | (uint64_t)b[6] << 24;
	if (a < SBX_PATCH_ADDR || a >= SBX_PATCH_ADDR + SBX_PATCH_BYTES ||
	    (a - SBX_PATCH_ADDR) % SBX_PATCH_REC ||
	    sbx_copy_from_guest(vm, rec, a, sizeof(*rec)) < 0 || rec->site != va)
		return -1;
	return 0;
}

int sbx_patch_write(struct sbx_vm *vm, uint64_t gpa, const void *bytes, size_t n, uint64_t from,
		    uint64_t to)
{
	if (n > LOADER_CPUID_SITE_MAX || !sbx_gptr_ro(vm, gpa, n))
		return -EFAULT;
	/* Another vCPU could be fetching these bytes, or stopped inside the old instructions:
	 * none runs the guest meanwhile, and the KVM_RUN each enters next serializes it. */
	int others = sbx_threads_count(vm) > 0;
	if (others)
		sbx_threads_hold(vm);
	/* Marked dirty after the write too (a migration round may be copying meanwhile). */
	sbx_copy_to_guest(vm, gpa, bytes, n);
	if (others && from)
		sbx_threads_move_rip(vm, from, to);
	if (others)
		sbx_threads_release(vm);
	return 0;
}

/* The vCPU back in the program with the registers f shows, but rip, rcx and the flags. */
static int resume_at(struct sbx_vm *vm, const struct sbx_fault *f, uint64_t rip, uint64_t rcx,
		     uint64_t rflags)
{
	struct kvm_regs r = {
	    .rax = f->r[SBX_R_RAX],
	    .rbx = f->r[SBX_R_RBX],
	    .rcx = rcx,
	    .rdx = f->r[SBX_R_RDX],
	    .rsi = f->r[SBX_R_RSI],
	    .rdi = f->r[SBX_R_RDI],
	    .rsp = f->r[SBX_R_RSP],
	    .rbp = f->r[SBX_R_RBP],
	    .r8 = f->r[SBX_R_R8],
	    .r9 = f->r[SBX_R_R9],
	    .r10 = f->r[SBX_R_R10],
	    .r11 = f->r[SBX_R_R11],
	    .r12 = f->r[SBX_R_R12],
	    .r13 = f->r[SBX_R_R13],
	    .r14 = f->r[SBX_R_R14],
	    .r15 = f->r[SBX_R_R15],
	    .rip = rip,
	    .rflags = rflags,
	};
	if (sbx_x86_resume(vm, &r) < 0)
		return 0;
	vm->stats.patch_resumes++;
	return 1;
}

/* Puts a site's own bytes back (guest-virtual va, n bytes): 0 or -1. */
static int restore_site(struct sbx_vm *vm, uint64_t va, const uint8_t *orig, size_t n)
{
	uint64_t gpa, span;
	if (sbx_gva_translate(vm, sbx_guest_root(vm), va, 0, &gpa, &span) < 0 || span < n ||
	    sbx_patch_write(vm, gpa, orig, n, 0, 0) < 0)
		return -1;
	struct sbx_image *im = &vm->proc.image;
	unsigned slot = im->nrestored++ % (sizeof(im->restored) / sizeof(im->restored[0]));
	im->restored[slot].va = va;
	im->restored[slot].len = (uint32_t)n;
	memcpy(im->restored[slot].bytes, orig, n);
	return 0;
}

/* A #UD at an instruction start inside a site whose bytes came back after it was taken: two
 * vCPUs jumped into the same rewritten site, and the other one's report put them back
 * before this one's came (reports are served one at a time). While the site still holds
 * exactly those bytes and rip is where one of its instructions starts (decoded: the finder's
 * and the kernel's sites hold only instructions that do not trap), run it. Anything else is
 * the program's own #UD: a jump to the middle of one of its instructions, code written over
 * the site since, its first byte. */
static int restored_resume(struct sbx_vm *vm, const struct sbx_fault *f)
{
	const struct sbx_image *im = &vm->proc.image;
	uint64_t rip = f->r[SBX_R_RIP];
	unsigned n = sizeof(im->restored) / sizeof(im->restored[0]);
	for (unsigned i = 0; i < n && i < im->nrestored; i++) {
		uint8_t now[LOADER_CPUID_SITE_MAX];
		uint32_t len = im->restored[i].len;
		if (rip <= im->restored[i].va || rip - im->restored[i].va >= len ||
		    len > sizeof(now) ||
		    !(loader_insn_starts(im->restored[i].bytes, len) >> (rip - im->restored[i].va) &
		      1) ||
		    sbx_gva_read(vm, sbx_guest_root(vm), im->restored[i].va, now, len) < 0 ||
		    memcmp(now, im->restored[i].bytes, len))
			continue;
		return resume_at(vm, f, rip, f->r[SBX_R_RCX],
				 (f->rflags & RFLAGS_USER) | SBX_RFLAGS_IF | 0x2);
	}
	return 0;
}

/* A #UD inside a cpuid site the monitor rewrote: code jumped into the middle of it, to an
 * instruction the decoding did not see as a target (every such start traps: cpuid_sites.c).
 * The site gets its bytes back and the vCPU goes on at rip, now that instruction again. */
static int cpuid_resume(struct sbx_vm *vm, const struct sbx_fault *f)
{
	uint64_t rip = f->r[SBX_R_RIP];
	for (unsigned d = 3; d < LOADER_CPUID_SITE_MAX && d <= rip; d++) {
		struct sbx_patch_rec rec;
		if (sbx_patch_record_at(vm, rip - d, &rec) < 0 ||
		    rec.code[0] != SBX_PATCH_FORM_CPUID)
			continue;
		unsigned pre = rec.code[1], len = rec.code[2];
		if (len != pre + 2u || d >= len || len > LOADER_CPUID_SITE_MAX ||
		    SBX_PATCH_CPUID_CODE + pre > sizeof(rec.code))
			return 0;
		uint8_t orig[LOADER_CPUID_SITE_MAX];
		memcpy(orig, rec.code + SBX_PATCH_CPUID_CODE, pre);
		orig[pre] = 0x0f, orig[pre + 1] = 0xa2;
		if (restore_site(vm, rip - d, orig, len) < 0)
			return 0;
		return resume_at(vm, f, rip, f->r[SBX_R_RCX],
				 (f->rflags & RFLAGS_USER) | SBX_RFLAGS_IF | 0x2);
	}
	return restored_resume(vm, f);
}

int sbx_patch_resume(struct sbx_vm *vm, const struct sbx_fault *f)
{
	uint64_t rip = f->r[SBX_R_RIP];
	struct sbx_patch_rec rec;
	if (f->vector != 6 || !f->from_cpu || rip < 5)
		return 0;
	if (sbx_patch_record_at(vm, rip - 5, &rec) < 0 || rec.code[0] != SBX_PATCH_FORM_MOV)
		return cpuid_resume(vm, f);
	/* The site's own bytes back: mov $nr, %eax (nr from the record); syscall. */
	uint8_t orig[7] = {SBX_PATCH_FORM_MOV, rec.code[1], rec.code[2], rec.code[3],
			   rec.code[4],	       0x0f,	    0x05};
	if (restore_site(vm, rip - 5, orig, sizeof(orig)) < 0)
		return 0;
	uint64_t flags = f->rflags & RFLAGS_USER;
	/* What `syscall` puts in rcx and r11: the next instruction, the flags. */
	struct sbx_fault g = *f;
	g.r[SBX_R_R11] = flags;
	return resume_at(vm, &g, vm->proc.image.khdr.syscall_entry, rip + 2,
			 (flags & ~SBX_SFMASK_BITS) | SBX_RFLAGS_IF | 0x2);
}

/* A cpuid site's record: what the site's instructions before the cpuid did, then onto this
 * vCPU's syscall stack (the program's %rsp and flags kept there, its red zone untouched; %rbx
 * is free, cpuid writes it) to call the kernel's answer, and back after the site. The bytes
 * written at *c (the record's code, at guest address at); 0 when they do not fit. */
static size_t cpuid_code(uint8_t *c, size_t room, uint64_t at, const struct loader_cpuid_site *s,
			 uint64_t entry)
{
	uint8_t b[80], *p = b;
	*p++ = SBX_PATCH_FORM_CPUID, *p++ = s->pre, *p++ = s->len;
	memcpy(p, s->orig, s->pre);
	p += s->pre;
	const uint8_t enter[] = {0x48, 0x89, 0xe3, 0x48, 0xbc}; /* mov %rsp,%rbx; movabs $,%rsp */
	memcpy(p, enter, sizeof(enter));
	p += sizeof(enter);
	/* Below the last syscall's saved registers, which reports of a program that ended
	 * itself read (struct sbx_syscall_frame). */
	uint64_t top = SBX_WINDOW_VA + SBX_SYSCALL_FRAME_ADDR;
	memcpy(p, &top, 8);
	p += 8;
	*p++ = 0x53, *p++ = 0x9c; /* push %rbx; pushfq */
	int32_t rel = (int32_t)(entry - (at + (uint64_t)(p - b) + 5));
	*p++ = 0xe8; /* call k_cpuid_entry */
	memcpy(p, &rel, 4);
	p += 4;
	*p++ = 0x9d, *p++ = 0x5c; /* popfq; pop %rsp */
	uint64_t back = s->site + s->len, next = at + (uint64_t)(p - b) + 5;
	int64_t d = (int64_t)(back - next);
	if (d == (int32_t)d) {
		rel = (int32_t)d;
		*p++ = 0xe9;
		memcpy(p, &rel, 4);
		p += 4;
	} else {
		const uint8_t far[] = {0xff, 0x25, 0, 0, 0, 0}; /* jmp *0(%rip), then the address */
		memcpy(p, far, sizeof(far));
		p += sizeof(far);
		memcpy(p, &back, 8);
		p += 8;
	}
	size_t n = (size_t)(p - b);
	if (n > room)
		return 0;
	memcpy(c, b, n);
	memset(c + n, 0xcc, room - n);
	return n;
}

/* The record for a site that needs one at 0x37XX40 (loader_cpuid_site.special), or for any
 * other at the top of the window: its index, or -1. used[] marks those taken. */
static int cpuid_record_index(const struct loader_cpuid_site *s, uint8_t *used, unsigned nrec)
{
	static const uint8_t special[] = LOADER_CPUID_SPECIAL;
	if (s->special) {
		for (unsigned k = 0; k < sizeof(special); k++) {
			unsigned i = (special[k] * 256u + 0x40) / SBX_PATCH_REC;
			if (i < nrec && !used[i])
				return (int)i;
		}
		return -1;
	}
	/* From the top down, at most a quarter of the window: the kernel's syscall sites take
	 * the rest from the bottom up. */
	for (unsigned i = nrec; i-- > nrec - nrec / 4;) {
		int reserved = 0;
		for (unsigned k = 0; k < sizeof(special); k++)
			reserved |= i == (special[k] * 256u + 0x40) / SBX_PATCH_REC;
		if (!used[i] && !reserved)
			return (int)i;
	}
	return -1;
}

int sbx_cpuid_patch(struct sbx_vm *vm)
{
	const struct loader_image *img = &vm->proc.image.img;
	enum { NREC = SBX_PATCH_BYTES / SBX_PATCH_REC };
	uint8_t used[NREC] = {0};
	uint32_t n = 0, lowest = NREC;
	for (unsigned i = 0; i < img->ncpuid; i++) {
		const struct loader_cpuid_site *s = &img->cpuid[i];
		int idx = cpuid_record_index(s, used, NREC);
		if (idx < 0)
			continue;
		uint64_t ra = SBX_PATCH_ADDR + (uint64_t)idx * SBX_PATCH_REC;
		struct sbx_patch_rec rec;
		memset(&rec, 0, sizeof(rec));
		uint64_t code = ra + offsetof(struct sbx_patch_rec, code);
		if (s->len > LOADER_CPUID_SITE_MAX || s->pre + 2u != s->len ||
		    (s->pre != 5 && s->pre < 7) ||
		    (s->site & ~(SBX_PAGE_SIZE - 1)) !=
			((s->site + s->len - 1) & ~(SBX_PAGE_SIZE - 1)) ||
		    !cpuid_code(rec.code, sizeof(rec.code), code, s,
				vm->proc.image.khdr.cpuid_entry))
			continue;
		rec.code_addr = code + SBX_PATCH_CPUID_CODE;
		rec.site = s->site;
		/* jmp *disp32 through the record; the bytes an instruction of the site started at
		 * trap if jumped to: disp32's upper half (0x37), its low half for a record at
		 * 0x37XX40 (REX, then an invalid opcode), then 0x06, invalid in 64-bit mode. */
		uint8_t b[LOADER_CPUID_SITE_MAX] = {0xff, 0x24, 0x25};
		uint32_t a32 = (uint32_t)ra;
		memcpy(b + 3, &a32, 4);
		memset(b + 7, 0x06, sizeof(b) - 7);
		uint8_t *site = sbx_gptr(vm, s->site, s->len);
		if (!site || memcmp(site, s->orig, s->len) ||
		    sbx_copy_to_guest(vm, ra, &rec, sizeof(rec)) < 0)
			continue;
		memcpy(site, b, s->len);
		used[idx] = 1;
		if (!s->special && (uint32_t)idx < lowest)
			lowest = (uint32_t)idx;
		n++;
	}
	vm->proc.image.cpuid_patched = n;
	vm->proc.image.patch_limit = n ? lowest : 0;
	vm->proc.image.nrestored = 0;
	return (int)n;
}

uint64_t sbx_patch_site_of(struct sbx_vm *vm, uint64_t rip)
{
	if (rip < SBX_PATCH_ADDR || rip >= SBX_PATCH_ADDR + SBX_PATCH_BYTES)
		return rip;
	struct sbx_patch_rec rec;
	uint64_t a = rip - (rip - SBX_PATCH_ADDR) % SBX_PATCH_REC;
	if (sbx_copy_from_guest(vm, &rec, a, sizeof(rec)) < 0 || !rec.site)
		return rip;
	/* A cpuid site's record runs the site's own instructions first, byte for byte. */
	if (rec.code[0] == SBX_PATCH_FORM_CPUID) {
		uint64_t code = a + offsetof(struct sbx_patch_rec, code) + SBX_PATCH_CPUID_CODE;
		uint64_t pre = rec.code[1] < LOADER_CPUID_SITE_MAX ? rec.code[1] : 0;
		return rip >= code && rip < code + pre ? rec.site + (rip - code) : rec.site + pre;
	}
	/* A call of the second form returns after the site's `syscall`, as it would have. */
	if (rip == a + offsetof(struct sbx_patch_rec, code) + SBX_PATCH_B_RET &&
	    rec.code[0] != SBX_PATCH_FORM_MOV)
		return rec.site + 2;
	return rec.site;
}
