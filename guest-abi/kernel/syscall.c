/* The Linux syscall personality: a table from x86-64 syscall numbers to handlers, made from
 * sbx_syscalls.h. Anything without a handler returns -ENOSYS and is counted in the boot page for
 * the monitor's summary. */
#include "kernel.h"

/* One entry per line of sbx_syscalls.h: a handler named there, or none (ENOSYS). */
#define k_sys_nosys 0
#define SBX_SYSCALL(nr, name, args, handler) [nr] = k_sys_##handler,
static const k_syscall_fn k_table[SBX_MAX_SYSCALL] = {
#include "sbx_syscalls.h"
};
#undef SBX_SYSCALL
_Static_assert(SBX_SYSCALL_LAST < SBX_MAX_SYSCALL, "every syscall number fits the tables");

long k_syscall(uint64_t nr, struct k_frame *f);
long k_syscall(uint64_t nr, struct k_frame *f)
{
	long ret;
	if ((BOOT->flags & SBX_BOOT_STRACE) && (nr == 60 || nr == 231)) {
		/* exit never returns: trace it on the way in. */
		uint64_t args[6] = {f->rdi, f->rsi, f->rdx, f->r10, f->r8, f->r9};
		uint64_t t[3] = {nr, 0, (uint64_t)args};
		k_call(SBX_CALL_TRACE, t, 3);
	}
	if (nr < SBX_MAX_SYSCALL && k_table[nr]) {
		ret = k_table[nr](f);
	} else if (nr == SBX_SYS_EXEC) {
		ret = k_sys_exec(f);
	} else {
		if (nr < SBX_MAX_SYSCALL)
			BOOT->nosys_count[nr]++;
		ret = -ENOSYS;
	}
	k_pt_commit();
	if (BOOT->flags & SBX_BOOT_STRACE) {
		uint64_t args[6] = {f->rdi, f->rsi, f->rdx, f->r10, f->r8, f->r9};
		uint64_t t[3] = {nr, (uint64_t)ret, (uint64_t)args};
		k_call(SBX_CALL_TRACE, t, 3);
	}
	return ret;
}
