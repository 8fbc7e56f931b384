/* The backtrace: libdw unwinds with the program's DWARF CFI (.eh_frame), reading the stack
 * from guest RAM through the checked accessor; where CFI gives out (no .eh_frame, a frame
 * without CFI) the %rbp chain takes over. Guest memory is hostile here too: every read is
 * bounds-checked and the walk is capped. */
#include <elfutils/libdwfl.h>
#include <string.h>
#include <sys/mman.h>

#include "report.h"
#include "vm.h"

struct unwind_ctx {
	int truncated;
	struct sbx_vm *vm;
	const struct sbx_fault *f;
	struct sbx_symbols *syms;
	struct sbx_frame *frames;
	int n, max;
};

static pid_t next_thread(Dwfl *dwfl, void *arg, void **thread_argp)
{
	(void)dwfl;
	if (*thread_argp)
		return 0;
	*thread_argp = arg;
	return 1;
}

static bool memory_read(Dwfl *dwfl, Dwarf_Addr addr, Dwarf_Word *result, void *arg)
{
	(void)dwfl;
	struct unwind_ctx *c = arg;
	return sbx_gva_read(c->vm, c->f->cr3, addr, result, sizeof(*result)) == 0;
}

static bool set_initial_registers(Dwfl_Thread *thread, void *arg)
{
	struct unwind_ctx *c = arg;
	Dwarf_Word regs[SBX_NREGS];
	for (int i = 0; i < SBX_NREGS; i++)
		regs[i] = c->f->r[i];
	return dwfl_thread_state_registers(thread, 0, SBX_NREGS, regs);
}

static const Dwfl_Thread_Callbacks sbx_thread_callbacks = {
    .next_thread = next_thread,
    .memory_read = memory_read,
    .set_initial_registers = set_initial_registers,
};

/* Code of the program, its vDSO, or one of its shared objects. */
static int in_code(struct unwind_ctx *c, uint64_t pc)
{
	return sbx_pc_in_code(c->vm, pc) || sbx_sym_covers(c->syms, pc);
}

static void add_frame(struct unwind_ctx *c, uint64_t pc, int activation)
{
	struct sbx_frame *fr = &c->frames[c->n++];
	/* A return address points after the call: look up the call itself. */
	sbx_sym_lookup(c->syms, activation || pc == 0 ? pc : pc - 1, fr);
	fr->pc = pc;
	if (!activation && fr->func[0])
		fr->off++;
}

static int frame_cb(Dwfl_Frame *state, void *arg)
{
	struct unwind_ctx *c = arg;
	Dwarf_Addr pc;
	bool activation;
	if (!dwfl_frame_pc(state, &pc, &activation) || pc == 0)
		return DWARF_CB_ABORT; /* pc 0: the outermost frame's made-up return address */
	if (c->n > 0 && !in_code(c, pc))
		return DWARF_CB_ABORT; /* a frame without unwind info gave garbage: stop here */
	if (c->n >= c->max) {
		c->truncated = 1;
		return DWARF_CB_ABORT;
	}
	uint64_t ret;
	if (c->n == 1 && !in_code(c, c->frames[0].pc) &&
	    sbx_gva_read(c->vm, c->f->cr3, c->f->r[SBX_R_RSP], &ret, sizeof(ret)) == 0 &&
	    ret != pc && in_code(c, ret))
		add_frame(c, ret, 0); /* a call through a bad pointer: its caller comes first */
	add_frame(c, pc, activation);
	return DWARF_CB_OK;
}

/* Frame pointers: [rbp] is the caller's rbp, [rbp+8] the return address. */
static void walk_rbp(struct unwind_ctx *c, uint64_t rbp)
{
	uint64_t lo = c->f->r[SBX_R_RSP];
	while (rbp >= lo && (rbp & 7) == 0) {
		uint64_t pair[2];
		if (sbx_gva_read(c->vm, c->f->cr3, rbp, pair, sizeof(pair)) < 0 ||
		    !in_code(c, pair[1]))
			break;
		if (c->n >= c->max) {
			c->truncated = 1;
			break;
		}
		add_frame(c, pair[1], 0);
		if (pair[0] <= rbp)
			break;
		rbp = pair[0];
	}
}

/* Only addresses in the program's executable segments or the vDSO can be return addresses. */
int sbx_pc_in_code(struct sbx_vm *vm, uint64_t pc)
{
	if (pc >= SBX_VDSO_ADDR && pc < SBX_VDSO_END)
		return 1;
	for (unsigned i = 0; i < vm->proc.image.img.nsegs; i++)
		if ((vm->proc.image.img.segs[i].prot & PROT_EXEC) &&
		    pc >= vm->proc.image.img.segs[i].start && pc < vm->proc.image.img.segs[i].end)
			return 1;
	return 0;
}

int sbx_unwind(struct sbx_vm *vm, struct sbx_symbols *s, const struct sbx_fault *f,
	       struct sbx_frame *frames, int max, int *truncated)
{
	struct unwind_ctx c = {.vm = vm, .f = f, .syms = s, .frames = frames, .max = max};
	Dwfl *dwfl = sbx_sym_dwfl(s);
	if (dwfl && dwfl_attach_state(dwfl, NULL, 1, &sbx_thread_callbacks, &c))
		dwfl_getthread_frames(dwfl, 1, frame_cb, &c);
	if (c.n <= 1) {
		/* No CFI for the faulting code: its own frame, then (if it is not code at all: a
		 * call through a bad pointer) the return address on top of the stack, then the
		 * rbp chain. */
		c.n = 0;
		add_frame(&c, f->r[SBX_R_RIP], 1);
		uint64_t ret;
		if (!in_code(&c, f->r[SBX_R_RIP]) &&
		    sbx_gva_read(vm, f->cr3, f->r[SBX_R_RSP], &ret, sizeof(ret)) == 0 &&
		    in_code(&c, ret))
			add_frame(&c, ret, 0);
		walk_rbp(&c, f->r[SBX_R_RBP]);
	}
	*truncated = c.truncated;
	return c.n;
}
