/* The list of record-lock holders (monitor/calls/lockowners.c) that F_GETLK names a process
 * from: a lock replaces its process's overlapping ranges, an unlock cuts them, a close or an
 * end drops them, and the holder named is another process whose range of that type meets the
 * range asked about. The e2e side: test_procs.c, file_locks_exclude_other_processes. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>

#include "calls/calls.h"

static struct sbx_lockreg *R;

static void setup(void)
{
	R = sbx_lockreg_new();
	cr_assert_not_null(R);
}

static void teardown(void)
{
	sbx_lockreg_free(R);
}

TestSuite(lockowners, .init = setup, .fini = teardown);

/* Who, other than `self`, holds a lock of `type` meeting [s, e) of file 1/1. */
static int32_t who(uint32_t self, int64_t s, int64_t e, int type)
{
	return sbx_lockreg_holder(R, self, 1, 1, s, e, type);
}

Test(lockowners, a_lock_names_its_process_to_the_others_only)
{
	sbx_lockreg_set(R, 7, 1, 1, 0, 10, F_WRLCK);
	cr_expect_eq(who(9, 5, 6, F_WRLCK), 7);
	cr_expect_eq(who(7, 5, 6, F_WRLCK), -1, "a process is not its own conflict");
	cr_expect_eq(who(9, 10, 11, F_WRLCK), -1, "past the range");
	cr_expect_eq(who(9, 5, 6, F_RDLCK), -1, "another type");
	cr_expect_eq(sbx_lockreg_holder(R, 9, 1, 2, 0, 10, F_WRLCK), -1, "another file");
}

Test(lockowners, an_unlock_in_the_middle_leaves_both_sides)
{
	sbx_lockreg_set(R, 7, 1, 1, 0, 10, F_WRLCK);
	sbx_lockreg_set(R, 7, 1, 1, 3, 6, F_UNLCK);
	cr_expect_eq(who(9, 1, 2, F_WRLCK), 7);
	cr_expect_eq(who(9, 4, 5, F_WRLCK), -1);
	cr_expect_eq(who(9, 7, 8, F_WRLCK), 7);
	cr_expect_eq(who(9, 3, 6, F_WRLCK), -1);
}

Test(lockowners, a_new_type_replaces_the_overlapped_part)
{
	sbx_lockreg_set(R, 7, 1, 1, 0, INT64_MAX, F_RDLCK);
	sbx_lockreg_set(R, 7, 1, 1, 100, 200, F_WRLCK);
	cr_expect_eq(who(9, 150, 151, F_WRLCK), 7);
	cr_expect_eq(who(9, 150, 151, F_RDLCK), -1);
	cr_expect_eq(who(9, 1000000, 1000001, F_RDLCK), 7, "to the end of the file");
	cr_expect_eq(who(9, 50, 51, F_RDLCK), 7);
}

Test(lockowners, readers_are_all_listed_and_the_exact_range_wins)
{
	sbx_lockreg_set(R, 7, 1, 1, 0, 100, F_RDLCK);
	sbx_lockreg_set(R, 8, 1, 1, 10, 20, F_RDLCK);
	cr_expect_eq(who(9, 10, 20, F_RDLCK), 8);
	cr_expect_eq(who(9, 0, 100, F_RDLCK), 7);
	cr_expect_eq(who(7, 15, 16, F_RDLCK), 8);
	cr_expect_eq(who(8, 15, 16, F_RDLCK), 7);
}

Test(lockowners, a_close_drops_one_file_and_an_end_every_file)
{
	sbx_lockreg_set(R, 7, 1, 1, 0, 10, F_WRLCK);
	sbx_lockreg_set(R, 7, 1, 2, 0, 10, F_WRLCK);
	sbx_lockreg_set(R, 8, 1, 1, 20, 30, F_WRLCK);
	uint64_t dev = 1, ino = 1;
	sbx_lockreg_drop(R, 7, &dev, &ino);
	cr_expect_eq(who(9, 0, 10, F_WRLCK), -1);
	cr_expect_eq(sbx_lockreg_holder(R, 9, 1, 2, 0, 10, F_WRLCK), 7);
	cr_expect_eq(who(9, 20, 30, F_WRLCK), 8, "another process's stay");
	sbx_lockreg_drop(R, 7, NULL, NULL);
	cr_expect_eq(sbx_lockreg_holder(R, 9, 1, 2, 0, 10, F_WRLCK), -1);
	cr_expect_eq(who(9, 20, 30, F_WRLCK), 8);
}

Test(lockowners, many_locks_and_unlocks_keep_the_list_exact)
{
	/* Every other byte of 0..2000 locked, then the odd hundreds unlocked again. */
	for (int64_t b = 0; b < 2000; b += 2)
		sbx_lockreg_set(R, 7, 1, 1, b, b + 1, F_WRLCK);
	for (int64_t h = 100; h < 2000; h += 200)
		sbx_lockreg_set(R, 7, 1, 1, h, h + 100, F_UNLCK);
	for (int64_t b = 0; b < 2000; b++) {
		int want = b % 2 == 0 && (b / 100) % 2 == 0;
		cr_expect_eq(who(9, b, b + 1, F_WRLCK), want ? 7 : -1, "byte %ld", (long)b);
	}
}

Test(lockowners, ranges_from_struct_flock_as_linux_counts_them)
{
	int64_t s, e;
	struct flock fl = {.l_start = 10, .l_len = 5};
	cr_expect_eq(sbx_lock_range(&fl, 100, &s, &e), 0);
	cr_expect(s == 110 && e == 115);
	fl.l_len = 0;
	cr_expect_eq(sbx_lock_range(&fl, 0, &s, &e), 0);
	cr_expect(s == 10 && e == INT64_MAX, "0: to the end of the file");
	fl.l_len = -5;
	cr_expect_eq(sbx_lock_range(&fl, 0, &s, &e), 0);
	cr_expect(s == 5 && e == 10, "a negative length counts back");
	fl.l_len = -11;
	cr_expect_eq(sbx_lock_range(&fl, 0, &s, &e), -EINVAL, "before the start of the file");
	fl.l_start = INT64_MAX;
	fl.l_len = 1;
	cr_expect_eq(sbx_lock_range(&fl, 1, &s, &e), -EOVERFLOW);
}
