/* The allowlist's seccomp program (confine_bpf.c) decides every call as libseccomp's program for
 * the same rules does (the monitor's filter before confine_bpf.c), and as the rules themselves
 * say. Both programs run in a small classic-BPF interpreter here, on the numbers and arguments
 * each rule names, their neighbours, and random ones; no filter is installed. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/kvm.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "confine_priv.h"
#include "helpers.h"
#include "vm.h"

#define BAD 0xdeadbeefu

/* Classic BPF as seccomp runs it: A, X, 16 words of scratch, loads from seccomp_data. */
static uint32_t bpf_run(const struct sock_filter *p, size_t n, const struct seccomp_data *d)
{
	uint32_t a = 0, x = 0, mem[16] = {0};
	const uint8_t *data = (const uint8_t *)d;
	for (size_t pc = 0; pc < n; pc++) {
		const struct sock_filter *in = &p[pc];
		uint32_t k = in->k, src = BPF_SRC(in->code) == BPF_X ? x : k;
		switch (BPF_CLASS(in->code)) {
		case BPF_LD:
			if (in->code == (BPF_LD | BPF_W | BPF_ABS)) {
				if (k > sizeof(*d) - 4 || k % 4)
					return BAD;
				memcpy(&a, data + k, 4);
			} else if (in->code == (BPF_LD | BPF_IMM)) {
				a = k;
			} else if (in->code == (BPF_LD | BPF_MEM) && k < 16) {
				a = mem[k];
			} else {
				return BAD;
			}
			break;
		case BPF_LDX:
			if (in->code == (BPF_LDX | BPF_IMM))
				x = k;
			else if (in->code == (BPF_LDX | BPF_MEM) && k < 16)
				x = mem[k];
			else
				return BAD;
			break;
		case BPF_ST:
			if (k >= 16)
				return BAD;
			mem[k] = a;
			break;
		case BPF_STX:
			if (k >= 16)
				return BAD;
			mem[k] = x;
			break;
		case BPF_ALU:
			switch (BPF_OP(in->code)) {
			case BPF_AND:
				a &= src;
				break;
			case BPF_OR:
				a |= src;
				break;
			case BPF_ADD:
				a += src;
				break;
			case BPF_SUB:
				a -= src;
				break;
			default:
				return BAD;
			}
			break;
		case BPF_JMP: {
			int t;
			switch (BPF_OP(in->code)) {
			case BPF_JA:
				if (pc + 1 + (size_t)k >= n)
					return BAD;
				pc += k;
				continue;
			case BPF_JEQ:
				t = a == src;
				break;
			case BPF_JGT:
				t = a > src;
				break;
			case BPF_JGE:
				t = a >= src;
				break;
			case BPF_JSET:
				t = (a & src) != 0;
				break;
			default:
				return BAD;
			}
			size_t off = t ? in->jt : in->jf;
			if (pc + 1 + off >= n)
				return BAD;
			pc += off;
			break;
		}
		case BPF_RET:
			return BPF_RVAL(in->code) == BPF_A ? a : k;
		case BPF_MISC:
			if (BPF_MISCOP(in->code) == BPF_TAX)
				x = a;
			else
				a = x;
			break;
		default:
			return BAD;
		}
	}
	return BAD; /* fell off the end */
}

/* What the kernel checks before it takes a program (and more): every jump lands inside it, loads
 * are aligned words of seccomp_data, and it ends in a return. */
static void assert_well_formed(const struct sock_filter *p, size_t n)
{
	cr_assert(n > 0 && n <= BPF_MAXINSNS, "%zu instructions", n);
	cr_assert_eq(BPF_CLASS(p[n - 1].code), BPF_RET, "the last instruction is no return");
	for (size_t pc = 0; pc < n; pc++) {
		const struct sock_filter *in = &p[pc];
		if (in->code == (BPF_LD | BPF_W | BPF_ABS))
			cr_assert(in->k % 4 == 0 && in->k <= sizeof(struct seccomp_data) - 4,
				  "load of offset %u at %zu", in->k, pc);
		if (BPF_CLASS(in->code) != BPF_JMP)
			continue;
		if (BPF_OP(in->code) == BPF_JA)
			cr_assert_lt(pc + 1 + (size_t)in->k, n, "ja out of the program at %zu", pc);
		else
			cr_assert(pc + 1 + in->jt < n && pc + 1 + in->jf < n,
				  "a conditional jump out of the program at %zu", pc);
	}
}

/* What the rules say, read directly. */
static uint32_t rules_eval(const struct sbx_confine_rule *r, size_t n, const struct seccomp_data *d)
{
	if (d->arch != AUDIT_ARCH_X86_64 || ((uint32_t)d->nr >= 0x40000000u && d->nr != -1))
		return SECCOMP_RET_KILL_PROCESS;
	for (size_t i = 0; i < n; i++) {
		if (r[i].nr != d->nr)
			continue;
		int ok = 1;
		for (unsigned j = 0; j < r[i].nargs; j++) {
			uint64_t v = d->args[r[i].a[j].arg];
			switch (r[i].a[j].cmp) {
			case SBX_CONFINE_MASKED_EQ:
				ok &= (v & r[i].a[j].mask) == r[i].a[j].val;
				break;
			case SBX_CONFINE_EQ:
				ok &= v == r[i].a[j].val;
				break;
			case SBX_CONFINE_NE:
				ok &= v != r[i].a[j].val;
				break;
			}
		}
		if (ok)
			return r[i].action;
	}
	return SECCOMP_RET_TRAP;
}

/* libseccomp's program for the same rules, as the monitor built it before. */
static struct sock_filter *libseccomp_prog(const struct sbx_confine_rule *r, size_t n, size_t *len)
{
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_TRAP);
	cr_assert_not_null(ctx);
	cr_assert_eq(seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS), 0);
	for (size_t i = 0; i < n; i++) {
		struct scmp_arg_cmp c[SBX_CONFINE_MAX_ARGS];
		for (unsigned j = 0; j < r[i].nargs; j++) {
			const struct sbx_confine_arg *a = &r[i].a[j];
			c[j] = (struct scmp_arg_cmp){.arg = a->arg};
			if (a->cmp == SBX_CONFINE_MASKED_EQ) {
				c[j].op = SCMP_CMP_MASKED_EQ;
				c[j].datum_a = a->mask;
				c[j].datum_b = a->val;
			} else {
				c[j].op = a->cmp == SBX_CONFINE_EQ ? SCMP_CMP_EQ : SCMP_CMP_NE;
				c[j].datum_a = a->val;
			}
		}
		uint32_t act = r[i].action == SECCOMP_RET_ALLOW ? SCMP_ACT_ALLOW
			       : (r[i].action & SECCOMP_RET_ACTION_FULL) == SECCOMP_RET_ERRNO
				   ? SCMP_ACT_ERRNO(r[i].action & SECCOMP_RET_DATA)
				   : r[i].action;
		cr_assert_eq(seccomp_rule_add_array(ctx, act, r[i].nr, r[i].nargs, c), 0,
			     "libseccomp refused rule %zu (syscall %d)", i, r[i].nr);
	}
	int fd = memfd_create("bpf", 0);
	cr_assert_geq(fd, 0);
	cr_assert_eq(seccomp_export_bpf(ctx, fd), 0);
	seccomp_release(ctx);
	off_t size = lseek(fd, 0, SEEK_END);
	cr_assert_gt(size, 0);
	struct sock_filter *p = malloc((size_t)size);
	cr_assert_eq(pread(fd, p, (size_t)size, 0), size);
	close(fd);
	*len = (size_t)size / sizeof(*p);
	return p;
}

static uint64_t rnd64(void)
{
	return ((uint64_t)(uint32_t)random() << 33) ^ ((uint64_t)(uint32_t)random() << 11) ^
	       (uint64_t)(uint32_t)random();
}

struct check {
	const struct sbx_confine_rule *r;
	size_t n;
	struct sbx_confine_prog mine;
	struct sock_filter *theirs;
	size_t ntheirs;
	unsigned checked;
};

static void check_one(struct check *c, const struct seccomp_data *d)
{
	uint32_t want = rules_eval(c->r, c->n, d);
	uint32_t mine = bpf_run(c->mine.ins, c->mine.n, d);
	uint32_t theirs = bpf_run(c->theirs, c->ntheirs, d);
	cr_assert_eq(mine, want,
		     "syscall %d arch 0x%x args %llx %llx %llx: program says 0x%x, rules 0x%x",
		     d->nr, d->arch, (unsigned long long)d->args[0], (unsigned long long)d->args[1],
		     (unsigned long long)d->args[2], mine, want);
	cr_assert_eq(theirs, want,
		     "syscall %d args %llx %llx %llx: libseccomp's program says 0x%x, rules 0x%x",
		     d->nr, (unsigned long long)d->args[0], (unsigned long long)d->args[1],
		     (unsigned long long)d->args[2], theirs, want);
	c->checked++;
}

/* Arguments that meet rule i's tests (each other argument random), and then each tested
 * argument changed in one bit, low or high, and set to 0. */
static void around_rule(struct check *c, const struct sbx_confine_rule *r)
{
	struct seccomp_data d = {.nr = r->nr, .arch = AUDIT_ARCH_X86_64};
	for (int round = 0; round < 4; round++) {
		for (int a = 0; a < 6; a++)
			d.args[a] = round & 1 ? rnd64() : (uint64_t)(random() % 4);
		for (unsigned j = 0; j < r->nargs; j++) {
			const struct sbx_confine_arg *t = &r->a[j];
			uint64_t free_bits = t->cmp == SBX_CONFINE_MASKED_EQ ? ~t->mask : 0;
			d.args[t->arg] = t->cmp == SBX_CONFINE_NE
					     ? t->val ^ (1ull << (random() % 64))
					     : t->val | (d.args[t->arg] & free_bits);
		}
		check_one(c, &d);
		for (unsigned j = 0; j < r->nargs; j++) {
			struct seccomp_data e = d;
			int arg = r->a[j].arg;
			for (int bit = 0; bit < 64; bit += (round & 2) ? 1 : 13) {
				e.args[arg] = d.args[arg] ^ (1ull << bit);
				check_one(c, &e);
			}
			e.args[arg] = 0;
			check_one(c, &e);
			e.args[arg] = r->a[j].val;
			check_one(c, &e);
		}
	}
}

static void check_rules(const struct sbx_confine_rule *r, size_t n)
{
	struct check c = {.r = r, .n = n};
	cr_assert_eq(
	    sbx_confine_bpf_build(r, n, SECCOMP_RET_TRAP, SECCOMP_RET_KILL_PROCESS, &c.mine), 0);
	assert_well_formed(c.mine.ins, c.mine.n);
	c.theirs = libseccomp_prog(r, n, &c.ntheirs);
	for (size_t i = 0; i < n; i++)
		around_rule(&c, &r[i]);
	/* Every syscall number, with arguments of each kind; the x32 range; other arches. */
	for (int nr = -2; nr < 500; nr++) {
		struct seccomp_data d = {.nr = nr, .arch = AUDIT_ARCH_X86_64};
		for (int k = 0; k < 6; k++)
			d.args[k] = k % 2 ? rnd64() : (uint64_t)(random() % 8);
		check_one(&c, &d);
		d.nr = nr + 0x40000000;
		check_one(&c, &d);
		d.nr = nr;
		d.arch = AUDIT_ARCH_I386;
		check_one(&c, &d);
	}
	cr_log_info("%u calls decided alike; %zu instructions here, %zu by libseccomp", c.checked,
		    c.mine.n, c.ntheirs);
	free(c.mine.ins);
	free(c.theirs);
}

/* The rules of t's monitor as a confined sandbox-run has them: a vCPU (fd 11), its VM (12) and
 * /dev/kvm (13). The bare VM owns none of these numbers; they go back to -1 at once. */
static void rules_with_kvm(struct test_vm *t, struct sbx_confine_rule **r, size_t *n)
{
	t->vm->proc.vcpu.fd = 11;
	t->vm->proc.kvm.vm_fd = 12;
	t->vm->proc.kvm.kvm_fd = 13;
	cr_assert_eq(sbx_confine_rules(t->vm, r, n), 0);
	t->vm->proc.vcpu.fd = t->vm->proc.kvm.vm_fd = t->vm->proc.kvm.kvm_fd = -1;
}

Test(confine_bpf, the_monitors_allowlist_decides_as_libseccomp_and_the_rules)
{
	struct test_vm t;
	test_vm_setup(&t);
	struct sbx_confine_rule *r;
	size_t n;
	rules_with_kvm(&t, &r, &n);
	srandom(1);
	check_rules(r, n);
	/* A bare VM (the fuzzers' and the hypercall tests'): no KVM ioctls at all. */
	free(r);
	cr_assert_eq(sbx_confine_rules(t.vm, &r, &n), 0);
	check_rules(r, n);
	free(r);
	test_vm_teardown(&t);
}

/* The verdict of the monitor's own program on one call. */
static uint32_t verdict(const struct sbx_confine_prog *p, int nr, uint64_t a0, uint64_t a1,
			uint64_t a2)
{
	struct seccomp_data d = {.nr = nr, .arch = AUDIT_ARCH_X86_64, .args = {a0, a1, a2}};
	return bpf_run(p->ins, p->n, &d);
}

/* The table as the monitor means it, call by call: what the comparison with libseccomp cannot
 * see (both programs come from the same rules, so a wrong argument number or mask in
 * confine.c's conversion would pass it). */
Test(confine_bpf, the_allowlist_allows_refuses_and_traps_what_its_table_says)
{
	struct test_vm t;
	test_vm_setup(&t);
	struct sbx_confine_rule *r;
	size_t n;
	rules_with_kvm(&t, &r, &n);
	struct sbx_confine_prog p;
	cr_assert_eq(sbx_confine_bpf_build(r, n, SECCOMP_RET_TRAP, SECCOMP_RET_KILL_PROCESS, &p),
		     0);
	free(r);
	const uint32_t allow = SECCOMP_RET_ALLOW, trap = SECCOMP_RET_TRAP;
	uint64_t me = (uint64_t)getpid();
	cr_expect_eq(verdict(&p, SYS_read, 0, 0, 0), allow);
	cr_expect_eq(verdict(&p, SYS_execve, 0, 0, 0), trap);
	cr_expect_eq(verdict(&p, SYS_ptrace, 0, 0, 0), trap);
	cr_expect_eq(verdict(&p, SYS_mmap, 0, 4096, PROT_READ | PROT_WRITE), allow);
	cr_expect_eq(verdict(&p, SYS_mmap, 0, 4096, PROT_READ | PROT_EXEC),
		     SECCOMP_RET_ERRNO | EPERM);
	cr_expect_eq(verdict(&p, SYS_mprotect, 0, 4096, PROT_EXEC), SECCOMP_RET_ERRNO | EPERM);
	cr_expect_eq(verdict(&p, SYS_clone, CLONE_VM | CLONE_THREAD, 0, 0), allow);
	cr_expect_eq(verdict(&p, SYS_clone, CLONE_VM | SIGCHLD, 0, 0), trap);
	cr_expect_eq(verdict(&p, SYS_clone3, 0, 0, 0), SECCOMP_RET_ERRNO | ENOSYS);
	cr_expect_eq(verdict(&p, SYS_socket, AF_UNIX, SOCK_STREAM, 0), allow);
	cr_expect_eq(verdict(&p, SYS_socket, AF_INET, SOCK_STREAM, 0), SECCOMP_RET_ERRNO | EACCES);
	cr_expect_eq(verdict(&p, SYS_socket, AF_UNIX | (1ull << 32), SOCK_STREAM, 0),
		     SECCOMP_RET_ERRNO | EACCES);
	cr_expect_eq(verdict(&p, SYS_socketpair, AF_UNIX, SOCK_STREAM, 0), allow);
	cr_expect_eq(verdict(&p, SYS_socketpair, AF_INET, SOCK_STREAM, 0), trap);
	cr_expect_eq(verdict(&p, SYS_tgkill, me, 5, SIGUSR1), allow);
	cr_expect_eq(verdict(&p, SYS_tgkill, me + 1, 5, SIGUSR1), trap);
	cr_expect_eq(verdict(&p, SYS_kill, 0, SIGSTOP, 0), allow);
	cr_expect_eq(verdict(&p, SYS_kill, 1, SIGKILL, 0), trap);
	cr_expect_eq(verdict(&p, SYS_sched_setaffinity, 0, 8, 0), allow);
	cr_expect_eq(verdict(&p, SYS_sched_setaffinity, 1, 8, 0), trap);
	cr_expect_eq(verdict(&p, SYS_fcntl, 3, F_SETFL, 0), allow);
	cr_expect_eq(verdict(&p, SYS_fcntl, 3, F_SETOWN, 0), trap);
	cr_expect_eq(verdict(&p, SYS_ioctl, 11, KVM_RUN, 0), allow);
	cr_expect_eq(verdict(&p, SYS_ioctl, 1, TCGETS, 0), allow);
	cr_expect_eq(verdict(&p, SYS_ioctl, 1, TIOCSTI, 0), trap);
	cr_expect_eq(verdict(&p, SYS_ioctl, 12, KVM_SET_USER_MEMORY_REGION, 0), allow);
	cr_expect_eq(verdict(&p, SYS_ioctl, 13, KVM_CREATE_VM, 0), allow);
	cr_expect_eq(verdict(&p, SYS_ioctl, 5, KVM_CREATE_VM, 0), trap);
	cr_expect_eq(verdict(&p, SYS_ioctl, 13 | (7ull << 32), KVM_CREATE_VM, 0), allow,
		     "an fd is an int: its high bits are not looked at");
	cr_expect_eq(verdict(&p, SYS_landlock_create_ruleset, 0, 0, 1), allow);
	cr_expect_eq(verdict(&p, SYS_landlock_create_ruleset, 0x1000, 16, 0), trap);
	cr_expect_eq(verdict(&p, SYS_landlock_restrict_self, 3, 0, 0), trap);
	free(p.ins);
	test_vm_teardown(&t);
}

/* Rules of shapes the allowlist does not have yet: 64-bit values, a mask over both words, NE
 * and EQ on the high word, several tests in one rule, long runs of values, an errno action. */
Test(confine_bpf, rules_of_every_shape)
{
	struct sbx_confine_rule r[600];
	size_t n = 0;
	srandom(7);
	for (int i = 0; i < 300; i++) /* a run longer than one `jeq` can jump over */
		r[n++] = (struct sbx_confine_rule){.nr = 16,
						   .action = SECCOMP_RET_ALLOW,
						   .nargs = 1,
						   .a = {{.arg = 1,
							  .cmp = SBX_CONFINE_MASKED_EQ,
							  .mask = 0xffffffffu,
							  .val = 1000u + 7u * (unsigned)i}}};
	r[n++] = (struct sbx_confine_rule){
	    .nr = 9,
	    .action = SECCOMP_RET_ERRNO | EPERM,
	    .nargs = 2,
	    .a = {{.arg = 2,
		   .cmp = SBX_CONFINE_MASKED_EQ,
		   .mask = 0xf0000000f0ull,
		   .val = 0x1000000010ull},
		  {.arg = 4, .cmp = SBX_CONFINE_NE, .val = 0x500000003ull}}};
	r[n++] = (struct sbx_confine_rule){
	    .nr = 9,
	    .action = SECCOMP_RET_ALLOW,
	    .nargs = 3,
	    .a = {{.arg = 0, .cmp = SBX_CONFINE_EQ, .val = 0x123456789abull},
		  {.arg = 1,
		   .cmp = SBX_CONFINE_MASKED_EQ,
		   .mask = 0xff00000000ull,
		   .val = 0x4200000000ull},
		  /* never with the rule above (0x10 there): which of two matching rules
		   * wins is not libseccomp's promise */
		  {.arg = 2, .cmp = SBX_CONFINE_MASKED_EQ, .mask = 0xf0, .val = 0x20}}};
	for (int nr = 100; nr < 360; nr += 3)
		r[n++] = (struct sbx_confine_rule){.nr = nr, .action = SECCOMP_RET_ALLOW};
	r[n++] = (struct sbx_confine_rule){.nr = 41,
					   .action = SECCOMP_RET_ALLOW,
					   .nargs = 1,
					   .a = {{.arg = 0, .cmp = SBX_CONFINE_EQ, .val = 1}}};
	r[n++] = (struct sbx_confine_rule){.nr = 41,
					   .action = SECCOMP_RET_ERRNO | EACCES,
					   .nargs = 1,
					   .a = {{.arg = 0, .cmp = SBX_CONFINE_NE, .val = 1}}};
	check_rules(r, n);
}

Test(confine_bpf, no_rules_at_all_is_the_default_for_every_call)
{
	struct sbx_confine_prog p;
	cr_assert_eq(sbx_confine_bpf_build(NULL, 0, SECCOMP_RET_TRAP, SECCOMP_RET_KILL_PROCESS, &p),
		     0);
	struct seccomp_data d = {.nr = 1, .arch = AUDIT_ARCH_X86_64};
	cr_assert_eq(bpf_run(p.ins, p.n, &d), SECCOMP_RET_TRAP);
	d.arch = AUDIT_ARCH_I386;
	cr_assert_eq(bpf_run(p.ins, p.n, &d), SECCOMP_RET_KILL_PROCESS);
	free(p.ins);
}
