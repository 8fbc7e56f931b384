/* Inside confine/: the allowlist as rules, and the seccomp program written from them here
 * rather than by libseccomp, which made confinement 0.36 ms slower at each sandbox-run start
 * (docs/confinement.md). tests/confine/test_confine_bpf.c checks the program against
 * libseccomp's for the same rules. */
#ifndef SBX_CONFINE_PRIV_H
#define SBX_CONFINE_PRIV_H

#include <linux/filter.h>
#include <stddef.h>
#include <stdint.h>

enum sbx_confine_cmp {
	SBX_CONFINE_MASKED_EQ, /* (arg & mask) == val, all 64 bits */
	SBX_CONFINE_EQ,	       /* arg == val */
	SBX_CONFINE_NE,	       /* arg != val */
};

struct sbx_confine_arg {
	uint8_t arg; /* 0..5 */
	uint8_t cmp; /* enum sbx_confine_cmp */
	uint64_t mask, val;
};

/* One alternative for a syscall: all of its argument tests hold, and the action is taken. */
#define SBX_CONFINE_MAX_ARGS 3
struct sbx_confine_rule {
	int nr;
	uint32_t action; /* a SECCOMP_RET_* value */
	unsigned nargs;
	struct sbx_confine_arg a[SBX_CONFINE_MAX_ARGS];
};

struct sbx_confine_prog {
	struct sock_filter *ins;
	size_t n, cap;
};

/* The program for x86-64: another architecture, or an x32 syscall number (but -1), gets
 * bad_arch; a syscall takes the action of the first of its rules whose tests hold (in the order
 * given), and dflt if none does. 0, -ENOMEM, -E2BIG (over BPF_MAXINSNS) or -EINVAL (a negative
 * syscall number, more than SBX_CONFINE_MAX_ARGS tests, an argument past the sixth); the
 * caller frees p->ins. */
int sbx_confine_bpf_build(const struct sbx_confine_rule *r, size_t n, uint32_t dflt,
			  uint32_t bad_arch, struct sbx_confine_prog *p);

/* Makes room in arr (*cap elements of size bytes) for element n, doubling it when full: the
 * array, moved or not, or NULL (arr left as it was) without memory. */
void *sbx_confine_grow(void *arr, size_t *cap, size_t n, size_t size);

struct sbx_vm;
/* confine.c: the allowlist of vm's monitor as rules (a malloc'ed array the caller frees); a
 * call none of them matches gets the program's default action. 0 or -ENOMEM. */
int sbx_confine_rules(const struct sbx_vm *vm, struct sbx_confine_rule **out, size_t *n);

#endif
