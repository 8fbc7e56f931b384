/* The one table of Linux syscalls (guest-abi/include/sbx_syscalls.h), as the monitor sees it:
 * every call named, as the kernel's own header names it. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "sbx_syscalls.h"
#include "calls.h"
#include "confine.h"
#include "persist.h"

/* x86-64 leaves these numbers unassigned (kept in step with the other architectures). */
static int reserved(uint64_t nr)
{
	return nr >= 337 && nr <= 423;
}

Test(syscalls, every_number_up_to_the_last_has_a_name)
{
	for (uint64_t nr = 0; nr <= SBX_SYSCALL_LAST; nr++) {
		const char *n = sbx_syscall_name(nr);
		if (reserved(nr))
			cr_expect_null(n, "reserved number %llu is named %s",
				       (unsigned long long)nr, n);
		else
			cr_expect(n && n[0], "syscall %llu has no name", (unsigned long long)nr);
	}
	for (uint64_t nr = SBX_SYSCALL_LAST + 1; nr < SBX_MAX_SYSCALL + 8; nr++)
		cr_expect_null(sbx_syscall_name(nr));
	cr_expect_null(sbx_syscall_name(~0ull));
}

Test(syscalls, the_names_the_summaries_used_to_lack)
{
	cr_assert_str_eq(sbx_syscall_name(93), "fchown");
	cr_assert_str_eq(sbx_syscall_name(29), "shmget");
	cr_assert_str_eq(sbx_syscall_name(68), "msgget");
	cr_assert_str_eq(sbx_syscall_name(435), "clone3");
	cr_assert_str_eq(sbx_syscall_name(0), "read");
	cr_assert_str_eq(sbx_syscall_name(SBX_SYSCALL_LAST), "file_setattr");
	cr_assert_str_eq(sbx_syscall_args(93), "ddd");
}

Test(syscalls, argument_kinds_are_ones_strace_prints)
{
	for (uint64_t nr = 0; nr <= SBX_SYSCALL_LAST; nr++) {
		const char *a = sbx_syscall_args(nr);
		if (!a)
			continue;
		cr_expect(strlen(a) <= 6, "%s: %zu arguments", sbx_syscall_name(nr), strlen(a));
		cr_expect(strspn(a, "duxpsDwr") == strlen(a), "%s: kinds \"%s\"",
			  sbx_syscall_name(nr), a);
		/* A write buffer's length is the next argument. */
		const char *w = strchr(a, 'w');
		cr_expect(!w || w[1] == 'u', "%s: \"%s\"", sbx_syscall_name(nr), a);
	}
}

/* The kernel's own header, where this machine has it: same numbers, same names. */
Test(syscalls, names_agree_with_asm_unistd_64)
{
	FILE *f = fopen("/usr/include/x86_64-linux-gnu/asm/unistd_64.h", "r");
	if (!f)
		f = fopen("/usr/include/asm/unistd_64.h", "r");
	if (!f)
		cr_skip_test("no <asm/unistd_64.h> here");
	char line[256], name[128];
	unsigned long nr;
	int seen = 0;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "#define __NR_%127s %lu", name, &nr) != 2)
			continue;
		seen++;
		const char *ours = sbx_syscall_name(nr);
		cr_expect(ours && strcmp(ours, name) == 0, "__NR_%s is %lu, the table says %s",
			  name, nr, ours ? ours : "nothing");
	}
	fclose(f);
	cr_assert_gt(seen, 300, "only %d syscalls read from the header", seen);
}
