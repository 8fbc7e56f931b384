/* The extended state a signal frame carries, as Linux gives it: a handler on an alternate
 * stack of exactly AT_MINSIGSTKSZ bytes writes nothing outside it; the frame's XSAVE area is
 * described by its software words; vector registers the handler clobbers are back after it
 * returns; AMX is off until arch_prctl(ARCH_REQ_XCOMP_PERM) asks for it. Every line printed is
 * the same natively and in the sandbox, on any x86-64 host. */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#ifndef AT_MINSIGSTKSZ
#define AT_MINSIGSTKSZ 51
#endif
#define ARCH_GET_XCOMP_SUPP 0x1021
#define ARCH_GET_XCOMP_PERM 0x1022
#define ARCH_REQ_XCOMP_PERM 0x1023
#ifndef FP_XSTATE_MAGIC1
#define FP_XSTATE_MAGIC1 0x46505853u
#endif
#ifndef FP_XSTATE_MAGIC2
#define FP_XSTATE_MAGIC2 0x46505845u
#endif
#define CANARY 0x5a

static volatile int frame_ok, handled;
static volatile uint32_t frame_bytes;

static void on_usr1(int sig, siginfo_t *si, void *ctx)
{
	(void)sig;
	(void)si;
	ucontext_t *uc = ctx;
	const uint8_t *fp = (const uint8_t *)uc->uc_mcontext.fpregs;
	/* struct _fpx_sw_bytes at byte 464 of the FXSAVE area. */
	uint32_t magic1, extended, size;
	memcpy(&magic1, fp + 464, 4);
	memcpy(&extended, fp + 468, 4);
	memcpy(&size, fp + 480, 4);
	uint32_t magic2 = 0;
	if (magic1 == FP_XSTATE_MAGIC1)
		memcpy(&magic2, fp + size, 4);
	frame_bytes = extended;
	frame_ok = fp && (uintptr_t)fp % 64 == 0 && magic1 == FP_XSTATE_MAGIC1 &&
		   extended == size + 4 && size >= 576 && magic2 == FP_XSTATE_MAGIC2;
	/* Clobber the vector registers the interrupted code was using. */
	__asm__ volatile("pxor %%xmm8, %%xmm8\n\tpcmpeqd %%xmm9, %%xmm9" ::: "xmm8", "xmm9");
	handled++;
}

static int avx_enabled(void)
{
	uint32_t lo, hi;
	__asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
	return (lo & 6) == 6;
}

static void on_usr2(int sig)
{
	(void)sig;
	if (avx_enabled())
		__asm__ volatile("vpcmpeqd %%ymm10, %%ymm10, %%ymm10" ::: "xmm10");
	handled++;
}

/* SIGUSR1 sent by a raw syscall while xmm8/xmm9 hold known values: they must be intact after
 * the handler ran, as they are natively. */
static int xmm_survive_a_handler(void)
{
	uint64_t in[4] = {0x0123456789abcdefull, 0xfedcba9876543210ull, 0x1111222233334444ull,
			  0x5555666677778888ull};
	uint64_t out[4];
	long pid = getpid();
	__asm__ volatile("movdqu (%[in]), %%xmm8\n\t"
			 "movdqu 16(%[in]), %%xmm9\n\t"
			 "mov $62, %%eax\n\t"
			 "mov %[pid], %%rdi\n\t"
			 "mov $10, %%esi\n\t"
			 "syscall\n\t"
			 "movdqu %%xmm8, (%[out])\n\t"
			 "movdqu %%xmm9, 16(%[out])"
			 :
			 : [in] "r"(in), [out] "r"(out), [pid] "r"(pid)
			 : "rax", "rdi", "rsi", "rcx", "r11", "xmm8", "xmm9", "memory");
	return memcmp(in, out, 32) == 0;
}

static int ymm_survive_a_handler(void)
{
	uint64_t in[4] = {1, 2, 3, 4}, out[4];
	long pid = getpid();
	__asm__ volatile("vmovdqu (%[in]), %%ymm10\n\t"
			 "mov $62, %%eax\n\t"
			 "mov %[pid], %%rdi\n\t"
			 "mov $12, %%esi\n\t"
			 "syscall\n\t"
			 "vmovdqu %%ymm10, (%[out])"
			 :
			 : [in] "r"(in), [out] "r"(out), [pid] "r"(pid)
			 : "rax", "rdi", "rsi", "rcx", "r11", "xmm10", "memory");
	return memcmp(in, out, 32) == 0;
}

static const char *err_name(long r)
{
	if (r == 0)
		return "0";
	return errno == EINVAL	     ? "EINVAL"
	       : errno == EOPNOTSUPP ? "EOPNOTSUPP"
	       : errno == ENOSPC     ? "ENOSPC"
	       : errno == EFAULT     ? "EFAULT"
				     : "other";
}

int main(void)
{
	unsigned long auxmin = getauxval(AT_MINSIGSTKSZ), min = auxmin;
	printf("AT_MINSIGSTKSZ present: %s\n", auxmin ? "yes" : "no");
	if (min < MINSIGSTKSZ)
		min = MINSIGSTKSZ; /* sigaltstack's own floor */
	size_t size = (min + 15) & ~(size_t)15;
	/* The alternate stack with 4 KiB of canary on each side. */
	uint8_t *block = malloc(size + 8192);
	memset(block, CANARY, size + 8192);
	stack_t ss = {.ss_sp = block + 4096, .ss_size = size};
	if (sigaltstack(&ss, NULL) < 0) {
		perror("sigaltstack");
		return 1;
	}
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_usr1;
	sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
	sigaction(SIGUSR1, &sa, NULL);
	sa.sa_handler = on_usr2;
	sa.sa_flags = SA_ONSTACK;
	sigaction(SIGUSR2, &sa, NULL);

	printf("xmm8/xmm9 survive a handler that clobbers them: %s\n",
	       xmm_survive_a_handler() ? "yes" : "no");
	printf("the frame's XSAVE area is described (magic, sizes, 64-byte aligned): %s\n",
	       frame_ok ? "yes" : "no");
	printf("AT_MINSIGSTKSZ covers the frame (its XSAVE area and the ucontext): %s\n",
	       auxmin >= frame_bytes + 440 ? "yes" : "no"); /* 440: the kernel's rt_sigframe */
	if (avx_enabled())
		printf("ymm10 survives a handler that clobbers it: %s\n",
		       ymm_survive_a_handler() ? "yes" : "no");
	else
		printf("ymm10 survives a handler that clobbers it: yes\n");
	int clean = 1;
	for (size_t i = 0; i < 4096; i++)
		clean &= block[i] == CANARY && block[4096 + size + i] == CANARY;
	printf("handlers on an AT_MINSIGSTKSZ alternate stack wrote nothing outside it: %s\n",
	       clean ? "yes" : "no");
	printf("handlers run: %d\n", handled);

	uint64_t supp = 0, perm = 0;
	long r = syscall(SYS_arch_prctl, ARCH_GET_XCOMP_SUPP, &supp);
	printf("ARCH_GET_XCOMP_SUPP: %s, x87 and SSE listed: %s\n", err_name(r),
	       (supp & 3) == 3 ? "yes" : "no");
	r = syscall(SYS_arch_prctl, ARCH_GET_XCOMP_PERM, &perm);
	printf("ARCH_GET_XCOMP_PERM: %s, AMX tile data permitted before asking: %s\n", err_name(r),
	       perm >> 18 & 1 ? "yes" : "no");
	r = syscall(SYS_arch_prctl, ARCH_GET_XCOMP_SUPP, (void *)8);
	printf("ARCH_GET_XCOMP_SUPP into a bad address: %s\n", err_name(r));
	r = syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, 17);
	printf("ARCH_REQ_XCOMP_PERM(XTILECFG): %s\n", err_name(r));
	r = syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, 64);
	printf("ARCH_REQ_XCOMP_PERM(64): %s\n", err_name(r));
	/* AMX where the host offers it, EOPNOTSUPP where not (each line says which held, so the
	 * output is the same on both): a small alternate stack refuses the larger frames first. */
	/* Whether AMX is offered shows in this answer, not in XCOMP_SUPP: a host kernel was
	 * seen to grant tile data that its XCOMP_SUPP did not list (bit 17 without 18), and
	 * one whose AT_MINSIGSTKSZ already counts the tiles grants it on this stack. */
	r = syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, 18);
	int e = errno, amx = r == 0 || e == ENOSPC;
	printf("ARCH_REQ_XCOMP_PERM(XTILEDATA) with a small alternate stack: %s\n",
	       r == 0 || e == ENOSPC || e == EOPNOTSUPP ? "as Linux" : "wrong");
	ss.ss_flags = SS_DISABLE;
	sigaltstack(&ss, NULL);
	r = syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, 18);
	e = errno;
	perm = 0;
	syscall(SYS_arch_prctl, ARCH_GET_XCOMP_PERM, &perm);
	int granted = r == 0 && (perm >> 18 & 1);
	printf("ARCH_REQ_XCOMP_PERM(XTILEDATA): %s\n",
	       amx ? (granted ? "as Linux" : "wrong")
		   : (r < 0 && e == EOPNOTSUPP && !(perm >> 18 & 1) ? "as Linux" : "wrong"));
	/* Frames as large as the state now is: a handler still runs and returns. */
	handled = 0;
	raise(SIGUSR2);
	printf("a handler after the request: %s\n", handled == 1 ? "ran" : "did not run");
	return 0;
}
