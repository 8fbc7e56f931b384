/* crash KIND: prints "crash: KIND", then crashes in a small named function reached through
 * main -> run_case -> level2 -> do_<kind> (all noinline, with volatile side effects around the
 * calls so that none is inlined, cloned, folded or turned into a tail call). The line that faults
 * ends in the marker comment followed by a comment naming the kind, so that tests can find it
 * with grep -n (see README.md). Unknown KIND: usage on stderr, exit 2. */

/* assert() must stay in, whatever the build type says (RelWithDebInfo adds -DNDEBUG) */
#undef NDEBUG
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__clang__)
#define NOINLINE __attribute__((noinline))
#else
#define NOINLINE __attribute__((noinline, noclone))
#endif

volatile int sink;
volatile int volatile_zero = 0;

/* .rodata: a const global */
const char ro_data[] = "crash: read-only data";

/* .data (writable, not executable): 0xc3 is `ret`, harmless if it ever ran */
unsigned char data_code[16] = {0xc3};

NOINLINE void do_null_read(void)
{
	volatile int *volatile p = NULL;
	sink = 1;
	sink = *p; /* CRASH-LINE */ /* null-read */
}

NOINLINE void do_null_write(void)
{
	volatile int *volatile p = NULL;
	sink = 1;
	*p = 42; /* CRASH-LINE */ /* null-write */
}

NOINLINE void do_ro_write(void)
{
	char *volatile p = (char *)ro_data;
	sink = 1;
	p[0] = 'X'; /* CRASH-LINE */ /* ro-write */
}

/* the marked line is the call; the fault itself is at data_code (the fetch of its first byte) */
NOINLINE void do_exec_data(void)
{
	void (*volatile fn)(void) = (void (*)(void))(void *)data_code;
	sink = 1;
	fn(); /* CRASH-LINE */ /* exec-data */
	sink = 2;
}

/* every frame writes the lowest byte of its array first, so the first touch below the stack
 * limit is almost always that store (rarely the call's push of the return address) */
NOINLINE void do_stack_overflow(void)
{
	volatile char buf[2048];
	buf[0] = (char)sink; /* CRASH-LINE */ /* stack-overflow */
	buf[sizeof(buf) - 1] = (char)sink;
	sink++;
	if (volatile_zero == 0) /* always: the condition only silences -Winfinite-recursion */
		do_stack_overflow();
	sink = buf[sink & (sizeof(buf) - 1)];
}

NOINLINE void do_div_zero(void)
{
	volatile int a = 42;
	sink = 1;
	sink = a / volatile_zero; /* CRASH-LINE */ /* div-zero */
}

NOINLINE void do_ud2(void)
{
	sink = 1;
	__asm__ volatile("ud2"); /* CRASH-LINE */ /* ud2 */
	sink = 2;
}

/* int3 is a trap: the reported pc is the byte after the int3; the nop keeps that byte on the
 * marked line */
NOINLINE void do_int3(void)
{
	sink = 1;
	__asm__ volatile("int3\n\tnop"); /* CRASH-LINE */ /* int3 */
	sink = 2;
}

/* SIGABRT is raised inside libc (abort -> raise); this is the outermost frame of crash.c */
NOINLINE void do_abort(void)
{
	sink = 1;
	abort(); /* CRASH-LINE */ /* abort */
}

NOINLINE void do_assert(void)
{
	sink = 1;
	assert(volatile_zero == 1); /* CRASH-LINE */ /* assert */
	sink = 2;
}

/* the marked line is the call; the fault is the fetch at 0x1234567890 (canonical, unmapped) */
NOINLINE void do_garbage_jump(void)
{
	void (*volatile fn)(void) = (void (*)(void))0x1234567890UL;
	sink = 1;
	fn(); /* CRASH-LINE */ /* garbage-jump */
	sink = 2;
}

struct kind {
	const char *name;
	void (*fn)(void);
};

static const struct kind kinds[] = {
    {"null-read", do_null_read},
    {"null-write", do_null_write},
    {"ro-write", do_ro_write},
    {"exec-data", do_exec_data},
    {"stack-overflow", do_stack_overflow},
    {"div-zero", do_div_zero},
    {"ud2", do_ud2},
    {"int3", do_int3},
    {"abort", do_abort},
    {"assert", do_assert},
    {"garbage-jump", do_garbage_jump},
};

/* an indirect call: the compiler cannot see which do_<kind> runs, so it cannot treat the call
 * as noreturn and move it to a .cold part */
NOINLINE void level2(const struct kind *k)
{
	sink = 2;
	k->fn();
	sink = 3;
}

NOINLINE void run_case(const struct kind *k)
{
	sink = 1;
	level2(k);
	sink = 4;
}

static void usage(void)
{
	fprintf(stderr, "usage: crash KIND\nkinds:");
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		fprintf(stderr, " %s", kinds[i].name);
	fprintf(stderr, "\n");
}

int main(int argc, char **argv)
{
	const struct kind *k = NULL;
	if (argc == 2) {
		for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
			if (strcmp(argv[1], kinds[i].name) == 0)
				k = &kinds[i];
		}
	}
	if (k == NULL) {
		usage();
		return 2;
	}
	printf("crash: %s\n", k->name);
	fflush(stdout);
	run_case(k);
	fprintf(stderr, "crash: %s did not crash\n", k->name);
	return 1;
}
