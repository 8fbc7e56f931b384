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

/* How --strace prints each call's arguments (sbx_syscalls.h). */
#define SBX_SYSCALL(nr, name, args, handler) [nr] = args,
static const char *const k_trace_kinds[SBX_MAX_SYSCALL] = {
#include "sbx_syscalls.h"
};
#undef SBX_SYSCALL

/* --strace: the monitor prints the bytes of path and buffer arguments from the addresses it is
 * given, which are guest-physical; it gets kernel copies of them (256 bytes, more than it
 * shows), the other arguments as the program passed them. */
static void trace(uint64_t nr, long ret, const struct k_frame *f)
{
	static char copy[6][257]; /* one thread: a static is safe */
	uint64_t args[6] = {f->rdi, f->rsi, f->rdx, f->r10, f->r8, f->r9};
	const char *k = nr < SBX_MAX_SYSCALL ? k_trace_kinds[nr] : 0;
	for (int i = 0; k && k[i] && i < 6; i++) {
		if (k[i] != 's' && k[i] != 'w' && (k[i] != 'r' || ret < 0))
			continue;
		uint64_t n = k_user_span(args[i], 256, K_READ);
		if (!n)
			continue;
		k_memcpy(copy[i], (const void *)args[i], n);
		copy[i][n] = 0;
		args[i] = (uint64_t)copy[i];
	}
	uint64_t t[3] = {nr, (uint64_t)ret, k_kaddr((uint64_t)args)};
	k_call(SBX_CALL_TRACE, t, 3);
}

/* trapped: the call came by a `syscall` instruction (its site may be patched), not through a
 * patched site's record. */
long k_syscall(uint64_t nr, struct k_frame *f, int trapped);
long k_syscall(uint64_t nr, struct k_frame *f, int trapped)
{
	long ret;
	k_lock();
	if (trapped)
		k_patch_site(nr, f);
	if ((BOOT->flags & SBX_BOOT_STRACE) && (nr == 60 || nr == 231))
		trace(nr, 0, f); /* exit never returns: trace it on the way in */
	k_mem_syscall(nr);
	if (__builtin_expect(k_vfork_child != 0, 0))
		k_vfork_mapping(nr);
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
	if (__builtin_expect(ret == -K_ERESTARTSYS, 0)) {
		/* Back to the `syscall` with its number, which the handler's return (or the
		 * return itself, if the signal went meanwhile) makes again: the instruction, or
		 * the place in its site's record that makes it (a form B record's two bytes
		 * before its return point jump back to its start). */
		f->rcx = k_patch_moved(f->rcx - 2);
		ret = (long)nr;
	} else if (trapped) {
		/* Trapped at a site another thread patched meanwhile (this one waited in the
		 * call, or for the lock): form B's return point is inside the new bytes. */
		f->rcx = k_patch_moved(f->rcx);
	}
	if (BOOT->flags & SBX_BOOT_STRACE)
		trace(nr, ret, f);
	k_signal_exit(f, ret);
	k_patch_returning(f->rcx);
	k_unlock();
	return ret;
}
