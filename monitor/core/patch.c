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

#include "vm.h"

/* What a program's own flags can hold (CF PF AF ZF SF TF IF DF OF AC ID): the frame is guest
 * memory, and no VM, VIF, VIP, IOPL, NT or reserved bit of it may reach the vCPU. */
#define RFLAGS_USER 0x240fd5ull

/* The record `jmp *disp32` at va names, when the 7 bytes there are such a jump into the window:
 * 0 and *rec filled, or -1. */
static int record_at(struct sbx_vm *vm, uint64_t va, struct sbx_patch_rec *rec)
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
	if (n > 8 || !sbx_gptr_ro(vm, gpa, n))
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

int sbx_patch_resume(struct sbx_vm *vm, const struct sbx_fault *f)
{
	uint64_t rip = f->r[SBX_R_RIP];
	struct sbx_patch_rec rec;
	if (f->vector != 6 || !f->from_cpu || rip < 5 || record_at(vm, rip - 5, &rec) < 0 ||
	    rec.code[0] != SBX_PATCH_FORM_MOV)
		return 0;
	/* The site's own bytes back: mov $nr, %eax (nr from the record); syscall. */
	uint8_t orig[7] = {SBX_PATCH_FORM_MOV, rec.code[1], rec.code[2], rec.code[3],
			   rec.code[4],	       0x0f,	    0x05};
	uint64_t gpa, span;
	if (sbx_gva_translate(vm, sbx_guest_root(vm), rip - 5, 0, &gpa, &span) < 0 ||
	    span < sizeof(orig) || sbx_patch_write(vm, gpa, orig, sizeof(orig), 0, 0) < 0)
		return 0;
	uint64_t flags = f->rflags & RFLAGS_USER;
	struct kvm_regs r = {
	    .rax = f->r[SBX_R_RAX],
	    .rbx = f->r[SBX_R_RBX],
	    .rcx = rip + 2, /* what `syscall` puts there: the next instruction */
	    .rdx = f->r[SBX_R_RDX],
	    .rsi = f->r[SBX_R_RSI],
	    .rdi = f->r[SBX_R_RDI],
	    .rsp = f->r[SBX_R_RSP],
	    .rbp = f->r[SBX_R_RBP],
	    .r8 = f->r[SBX_R_R8],
	    .r9 = f->r[SBX_R_R9],
	    .r10 = f->r[SBX_R_R10],
	    .r11 = flags,
	    .r12 = f->r[SBX_R_R12],
	    .r13 = f->r[SBX_R_R13],
	    .r14 = f->r[SBX_R_R14],
	    .r15 = f->r[SBX_R_R15],
	    .rip = vm->proc.image.khdr.syscall_entry,
	    .rflags = (flags & ~SBX_SFMASK_BITS) | SBX_RFLAGS_IF | 0x2,
	};
	if (sbx_x86_resume(vm, &r) < 0)
		return 0;
	vm->stats.patch_resumes++;
	return 1;
}

uint64_t sbx_patch_site_of(struct sbx_vm *vm, uint64_t rip)
{
	if (rip < SBX_PATCH_ADDR || rip >= SBX_PATCH_ADDR + SBX_PATCH_BYTES)
		return rip;
	struct sbx_patch_rec rec;
	uint64_t a = rip - (rip - SBX_PATCH_ADDR) % SBX_PATCH_REC;
	if (sbx_copy_from_guest(vm, &rec, a, sizeof(rec)) < 0 || !rec.site)
		return rip;
	/* A call of the second form returns after the site's `syscall`, as it would have. */
	if (rip == a + offsetof(struct sbx_patch_rec, code) + SBX_PATCH_B_RET &&
	    rec.code[0] != SBX_PATCH_FORM_MOV)
		return rec.site + 2;
	return rec.site;
}
