/* rawcall MODE: a guest that brings no kernel of its own use: it writes hypercall requests
 * straight into the ring and rings the doorbell, as a hostile guest could. Freestanding.
 *   rawcall garbage [N] - hostile arguments; each must come back as the right error code,
 *                      then N valid calls (a million); prints "rawcall: N checks passed", exit 0
 *   rawcall noabi    - a request before the ABI handshake: the monitor must end the run
 *   rawcall unknown  - an unknown call number: the monitor must end the run
 *   rawcall overrun  - a ring head far past the tail: the monitor must end the run
 *   rawcall exit V   - SBX_CALL_EXIT with status V as it is (decimal, or hex with 0x): the
 *                      monitor must end the run with V's meaning, or as an ABI violation
 *   rawcall calls NR [ARG] - every argument kind for call NR (rawcall_calls.c) */
#include "rawcall.h"
#define EFAULT 14
#define EBADF 9
#define EINVAL 22
#define ENAMETOOLONG 36
#define ENOENT 2

static int failures, checks;

static void expect(const char *what, int64_t got, int64_t want)
{
	checks++;
	if (got == want)
		return;
	failures++;
	rawcall_say("FAIL ");
	rawcall_say(what);
	rawcall_say(": got ");
	rawcall_say_num(got);
	rawcall_say(", want ");
	rawcall_say_num(want);
	rawcall_say("\n");
}

static int streq(const char *a, const char *b)
{
	while (*a && *a == *b)
		a++, b++;
	return *a == *b;
}

static char path_buf[8192];
static struct sbx_iovec bad_iov[4];

static void garbage(int calls)
{
	uint64_t ram_end = BOOT->mem_size;
	/* Buffers outside RAM, wrapping, and past its end. */
	expect("write outside RAM", rawcall_call(SBX_CALL_WRITE, 1, ram_end + 4096, 16, 0, 0),
	       -EFAULT);
	expect("write wrapping", rawcall_call(SBX_CALL_WRITE, 1, ~0ull - 8, 64, 0, 0), -EFAULT);
	expect("write past the end", rawcall_call(SBX_CALL_WRITE, 1, ram_end - 8, 64, 0, 0),
	       -EFAULT);
	expect("read huge length", rawcall_call(SBX_CALL_READ, 0, 0x400000, ~0ull, 0, 0), -EFAULT);
	/* Handles the guest never got. */
	expect("read unknown fd", rawcall_call(SBX_CALL_READ, 999, 0x400000, 1, 0, 0), -EBADF);
	expect("read negative fd", rawcall_call(SBX_CALL_READ, 0xffffffff, 0x400000, 1, 0, 0),
	       -EBADF);
	expect("close unknown", rawcall_call(SBX_CALL_CLOSE, 1u << 31, 0, 0, 0, 0), -EBADF);
	expect("getdents unknown", rawcall_call(SBX_CALL_GETDENTS, 77, 0x400000, 4096, 0, 0),
	       -EBADF);
	/* Paths: unterminated past RAM, over-long, with a NUL inside, empty. struct sbx_path:
	 * a0 = dirfd | flags << 32, a1 = path, a2 = path_len | mode << 32. */
	uint64_t cwd = (uint32_t)SBX_AT_FDCWD;
	expect("path past RAM", rawcall_call(SBX_CALL_OPEN, cwd, ram_end - 4, 64, 0, 0), -EFAULT);
	expect("path over-long", rawcall_call(SBX_CALL_OPEN, cwd, 0x400000, 1u << 30, 0, 0),
	       -ENAMETOOLONG);
	path_buf[0] = '/';
	path_buf[1] = 'a';
	path_buf[2] = 0;
	path_buf[3] = 'b';
	expect("path with NUL", rawcall_call(SBX_CALL_OPEN, cwd, (uint64_t)path_buf, 4, 0, 0),
	       -EINVAL);
	expect("empty path", rawcall_call(SBX_CALL_OPEN, cwd, (uint64_t)path_buf, 0, 0, 0),
	       -ENOENT);
	for (int i = 0; i < 8190; i++)
		path_buf[i] = '/';
	expect("path beyond PATH_MAX",
	       rawcall_call(SBX_CALL_OPEN, cwd, (uint64_t)path_buf, 8190, 0, 0), -ENAMETOOLONG);
	/* Vectors: too many entries, an entry outside RAM, lengths that overflow the total. */
	expect("writev too many", rawcall_call(SBX_CALL_WRITEV, 1, (uint64_t)bad_iov, 100000, 0, 0),
	       -EINVAL);
	bad_iov[0].base = ram_end + 4096;
	bad_iov[0].len = 8;
	expect("writev entry outside", rawcall_call(SBX_CALL_WRITEV, 1, (uint64_t)bad_iov, 1, 0, 0),
	       -EFAULT);
	bad_iov[0].base = 0x400000;
	bad_iov[0].len = ~0ull - 2;
	bad_iov[1].base = 0x400000;
	bad_iov[1].len = 8;
	expect("writev overflowing total",
	       rawcall_call(SBX_CALL_WRITEV, 1, (uint64_t)bad_iov, 2, 0, 0), -EINVAL);
	expect("poll too many", rawcall_call(SBX_CALL_POLL, 0x400000, 1u << 20, 0, 0, 0), -EINVAL);
	expect("discard the kernel", rawcall_call(SBX_CALL_DISCARD, SBX_RING_ADDR, 4096, 0, 0, 0),
	       -EINVAL);
	expect("discard unaligned", rawcall_call(SBX_CALL_DISCARD, 0x400001, 4096, 0, 0, 0),
	       -EINVAL);
	expect("stat into the void", rawcall_call(SBX_CALL_FSTAT, 1, 0, 0, ram_end, 144), -EFAULT);
	/* Many valid calls (a million by default): the monitor stays correct. */
	static char cwdbuf[64];
	int bad = 0;
	for (int i = 0; i < calls; i++)
		bad +=
		    rawcall_call(SBX_CALL_GETCWD, 0, (uint64_t)cwdbuf, sizeof(cwdbuf), 0, 0) != 2;
	expect("many getcwd calls", bad, 0);
	rawcall_say("rawcall: ");
	rawcall_say_num(checks);
	rawcall_say(" checks, ");
	rawcall_say_num(failures);
	rawcall_say(" failed\n");
	rawcall_leave(failures ? 1 : 0);
}

/* Decimal, or hexadecimal after 0x. */
static uint64_t number(const char *p)
{
	uint64_t v = 0;
	if (p[0] == '0' && p[1] == 'x') {
		for (p += 2;; p++) {
			int d = *p >= '0' && *p <= '9'	 ? *p - '0'
				: *p >= 'a' && *p <= 'f' ? *p - 'a' + 10
							 : -1;
			if (d < 0)
				return v;
			v = v * 16 + (uint64_t)d;
		}
	}
	for (; *p >= '0' && *p <= '9'; p++)
		v = v * 10 + (uint64_t)(*p - '0');
	return v;
}

void rawcall_main(uint64_t *sp);
void rawcall_main(uint64_t *sp)
{
	int argc = (int)sp[0];
	const char *mode = argc > 1 ? (const char *)sp[2] : "";
	if (streq(mode, "noabi")) {
		rawcall_call(SBX_CALL_WRITE, 1, (uint64_t) "x", 1, 0, 0); /* no handshake */
		rawcall_leave(0);
	}
	RING->abi_version = SBX_ABI_VERSION;
	if (streq(mode, "garbage"))
		garbage((int)number(argc > 2 ? (const char *)sp[3] : "1000000"));
	if (streq(mode, "exit") && argc > 2)
		rawcall_leave(number((const char *)sp[3]));
	if (streq(mode, "calls") && argc > 2)
		rawcall_calls((uint32_t)number((const char *)sp[3]),
			      argc > 3 ? number((const char *)sp[4]) : 0);
	if (streq(mode, "unknown"))
		rawcall_call(9999, 0, 0, 0, 0, 0);
	if (streq(mode, "overrun")) {
		__atomic_store_n(&RING->head, RING->head + 100, __ATOMIC_SEQ_CST);
		for (;;)
			rawcall_doorbell();
	}
	rawcall_say("rawcall: unknown mode\n");
	rawcall_leave(2);
}

__asm__(".globl _start\n_start:\n\tmov %rsp, %rdi\n\tand $-16, %rsp\n\tcall rawcall_main\n\tud2\n");
