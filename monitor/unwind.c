/* The backtrace: libdw unwinds with the program's DWARF CFI (.eh_frame), reading the stack
 * from guest RAM through the checked accessor; where CFI gives out (no .eh_frame, a frame
 * without CFI) the %rbp chain takes over. Guest memory is hostile here too: every read is
 * bounds-checked and the walk is capped. */
#include <elfutils/libdwfl.h>
#include <string.h>

#include "report.h"
#include "vm.h"

struct unwind_ctx {
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
	return sbx_copy_from_guest(c->vm, result, addr, sizeof(*result)) == 0;
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
	if (!dwfl_frame_pc(state, &pc, &activation) || c->n >= c->max || pc == 0)
		return DWARF_CB_ABORT; /* pc 0: the outermost frame's made-up return address */
	add_frame(c, pc, activation);
	return DWARF_CB_OK;
}

/* Frame pointers: [rbp] is the caller's rbp, [rbp+8] the return address. */
static void walk_rbp(struct unwind_ctx *c, uint64_t rbp)
{
	uint64_t lo = c->f->r[SBX_R_RSP];
	while (c->n < c->max && rbp >= lo && (rbp & 7) == 0) {
		uint64_t pair[2];
		if (sbx_copy_from_guest(c->vm, pair, rbp, sizeof(pair)) < 0 || pair[1] == 0)
			break;
		add_frame(c, pair[1], 0);
		if (pair[0] <= rbp)
			break;
		rbp = pair[0];
	}
}

int sbx_unwind(struct sbx_vm *vm, struct sbx_symbols *s, const struct sbx_fault *f,
	       struct sbx_frame *frames, int max)
{
	struct unwind_ctx c = {.vm = vm, .f = f, .syms = s, .frames = frames, .max = max};
	Dwfl *dwfl = sbx_sym_dwfl(s);
	if (dwfl && dwfl_attach_state(dwfl, NULL, 1, &sbx_thread_callbacks, &c))
		dwfl_getthread_frames(dwfl, 1, frame_cb, &c);
	if (c.n <= 1) {
		/* No CFI for the faulting code: its own frame, then the rbp chain. */
		c.n = 0;
		add_frame(&c, f->r[SBX_R_RIP], 1);
		walk_rbp(&c, f->r[SBX_R_RBP]);
	}
	return c.n;
}
