/* Capstone disassembly around the faulting instruction. x86 has no fixed instruction size, so
 * the window starts at the function's symbol when it is near, else at the nearest earlier
 * offset whose decoding lands exactly on RIP. */
#include <capstone/capstone.h>
#include <stddef.h>
#include <sys/ioctl.h>
#include <stdio.h>
#include <string.h>

#include "report.h"
#include "vm.h"

#define BEFORE 6
#define AFTER 4
#define WINDOW 96

/* Decodes from start; returns how many instructions end exactly at rip, or -1. */
static int lands_on(csh h, const uint8_t *code, size_t len, uint64_t start, uint64_t rip)
{
	cs_insn *insn;
	size_t n = cs_disasm(h, code, len, start, 0, &insn);
	int hit = -1;
	for (size_t i = 0; i < n; i++) {
		if (insn[i].address == rip) {
			hit = (int)i;
			break;
		}
		if (insn[i].address > rip)
			break;
	}
	if (n)
		cs_free(insn, n);
	return hit;
}

static void branch_target(csh h, cs_insn *in, struct sbx_symbols *s, char *out, size_t len)
{
	out[0] = 0;
	if (!in->detail ||
	    (!cs_insn_group(h, in, CS_GRP_JUMP) && !cs_insn_group(h, in, CS_GRP_CALL)))
		return;
	cs_x86 *x = &in->detail->x86;
	if (x->op_count != 1 || x->operands[0].type != X86_OP_IMM)
		return;
	struct sbx_frame f;
	sbx_sym_lookup(s, (uint64_t)x->operands[0].imm, &f);
	if (f.func[0] && f.off)
		snprintf(out, len, "<%s+0x%llx>", f.func, (unsigned long long)f.off);
	else if (f.func[0])
		snprintf(out, len, "<%s>", f.func);
}

int sbx_disasm_around(struct sbx_vm *vm, uint64_t root, struct sbx_symbols *s, uint64_t rip,
		      struct sbx_insn *out, int max, int *fault_index)
{
	csh h;
	*fault_index = -1;
	if (cs_open(CS_ARCH_X86, CS_MODE_64, &h) != CS_ERR_OK)
		return 0;
	cs_option(h, CS_OPT_DETAIL, CS_OPT_ON);
	/* The readable bytes around rip, as the program's page tables map them: from the
	 * earliest mapped start within WINDOW before it to the first unmapped byte after. */
	uint8_t code[WINDOW + 64];
	uint64_t lo = rip > WINDOW ? rip - WINDOW : 0;
	uint64_t after = sbx_gva_read_max(vm, root, rip, code + WINDOW, 64);
	if (after == 0) {
		cs_close(&h);
		return 0;
	}
	while (lo < rip && sbx_gva_read(vm, root, lo, code + WINDOW - (rip - lo), rip - lo) < 0)
		lo = (lo | (SBX_PAGE_SIZE - 1)) + 1 < rip ? (lo | (SBX_PAGE_SIZE - 1)) + 1 : rip;
	uint64_t hi = rip + after;
	const uint8_t *code_at = code + WINDOW - (rip - lo);
	struct sbx_frame sym;
	sbx_sym_lookup(s, rip, &sym);
	uint64_t start = rip;
	if (sym.func[0] && sym.off <= rip - lo &&
	    lands_on(h, code_at + (rip - sym.off - lo), hi - (rip - sym.off), rip - sym.off, rip) >=
		0) {
		start = rip - sym.off;
	} else {
		for (uint64_t a = lo; a < rip; a++) {
			if (lands_on(h, code_at + (a - lo), hi - a, a, rip) >= 0) {
				start = a;
				break;
			}
		}
	}
	cs_insn *insn;
	size_t n = cs_disasm(h, code_at + (start - lo), hi - start, start, 0, &insn);
	int at = -1;
	for (size_t i = 0; i < n; i++)
		if (insn[i].address == rip)
			at = (int)i;
	int first = at > BEFORE ? at - BEFORE : 0, count = 0;
	if (at < 0)
		first = 0;
	for (size_t i = (size_t)first; i < n && count < max; i++) {
		if (at >= 0 && (int)i > at + AFTER)
			break;
		struct sbx_insn *o = &out[count];
		o->addr = insn[i].address;
		o->len =
		    (uint8_t)(insn[i].size > sizeof(o->bytes) ? sizeof(o->bytes) : insn[i].size);
		memcpy(o->bytes, insn[i].bytes, o->len);
		snprintf(o->text, sizeof(o->text), "%s %s", insn[i].mnemonic, insn[i].op_str);
		branch_target(h, &insn[i], s, o->target, sizeof(o->target));
		if ((int)i == at)
			*fault_index = count;
		count++;
	}
	if (n)
		cs_free(insn, n);
	cs_close(&h);
	return count;
}

/* A 64-bit general register's value (capstone's name for it), or 0 for none. */
static int reg_value(const struct kvm_regs *r, uint64_t rip_next, x86_reg reg, uint64_t *v)
{
	static const struct {
		x86_reg reg;
		size_t off;
	} regs[] = {
	    {X86_REG_RAX, offsetof(struct kvm_regs, rax)},
	    {X86_REG_RBX, offsetof(struct kvm_regs, rbx)},
	    {X86_REG_RCX, offsetof(struct kvm_regs, rcx)},
	    {X86_REG_RDX, offsetof(struct kvm_regs, rdx)},
	    {X86_REG_RSI, offsetof(struct kvm_regs, rsi)},
	    {X86_REG_RDI, offsetof(struct kvm_regs, rdi)},
	    {X86_REG_RSP, offsetof(struct kvm_regs, rsp)},
	    {X86_REG_RBP, offsetof(struct kvm_regs, rbp)},
	    {X86_REG_R8, offsetof(struct kvm_regs, r8)},
	    {X86_REG_R9, offsetof(struct kvm_regs, r9)},
	    {X86_REG_R10, offsetof(struct kvm_regs, r10)},
	    {X86_REG_R11, offsetof(struct kvm_regs, r11)},
	    {X86_REG_R12, offsetof(struct kvm_regs, r12)},
	    {X86_REG_R13, offsetof(struct kvm_regs, r13)},
	    {X86_REG_R14, offsetof(struct kvm_regs, r14)},
	    {X86_REG_R15, offsetof(struct kvm_regs, r15)},
	};
	if (reg == X86_REG_INVALID) {
		*v = 0;
		return 0;
	}
	if (reg == X86_REG_RIP) {
		*v = rip_next;
		return 0;
	}
	for (size_t i = 0; i < sizeof(regs) / sizeof(regs[0]); i++) {
		if (regs[i].reg == reg) {
			memcpy(v, (const uint8_t *)r + regs[i].off, sizeof(*v));
			return 0;
		}
	}
	return -1; /* a 32-bit address: not worth decoding */
}

int sbx_mem_operand(struct sbx_vm *vm, uint64_t lo, uint64_t hi, uint64_t *addr)
{
	struct kvm_regs r;
	struct kvm_sregs sr;
	uint8_t code[16];
	if (ioctl(vm->proc.vcpu.fd, KVM_GET_REGS, &r) < 0 ||
	    ioctl(vm->proc.vcpu.fd, KVM_GET_SREGS, &sr) < 0 ||
	    sbx_copy_from_guest(vm, code, r.rip, sizeof(code)) < 0)
		return -1;
	csh h;
	if (cs_open(CS_ARCH_X86, CS_MODE_64, &h) != CS_ERR_OK)
		return -1;
	cs_option(h, CS_OPT_DETAIL, CS_OPT_ON);
	cs_insn *in;
	int ret = -1;
	if (cs_disasm(h, code, sizeof(code), r.rip, 1, &in) == 1) {
		const cs_x86 *x = &in->detail->x86;
		for (unsigned i = 0; i < x->op_count && ret < 0; i++) {
			const cs_x86_op *op = &x->operands[i];
			uint64_t base, index, a;
			if (op->type != X86_OP_MEM ||
			    reg_value(&r, r.rip + in->size, op->mem.base, &base) < 0 ||
			    reg_value(&r, r.rip + in->size, op->mem.index, &index) < 0)
				continue;
			a = base + index * (uint64_t)op->mem.scale + (uint64_t)op->mem.disp;
			a += op->mem.segment == X86_REG_FS   ? sr.fs.base
			     : op->mem.segment == X86_REG_GS ? sr.gs.base
							     : 0;
			/* An access across the end: the first byte past it faults. */
			uint64_t last = a + (op->size ? op->size : 1) - 1;
			if (a < hi && last >= lo) {
				*addr = a > lo ? a : lo;
				ret = 0;
			}
		}
		cs_free(in, 1);
	}
	cs_close(&h);
	return ret;
}
