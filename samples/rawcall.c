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

/* The compiler may turn fill loops and struct copies into calls to these; there is no libc. */
void *memset(void *d, int c, unsigned long n)
{
	volatile unsigned char *p = d;
	while (n--)
		*p++ = (unsigned char)c;
	return d;
}

void *memcpy(void *d, const void *s, unsigned long n)
{
	volatile unsigned char *p = d;
	const volatile unsigned char *q = s;
	while (n--)
		*p++ = *q++;
	return d;
}

static uint64_t seq;
static int failures, checks;

static void doorbell(void)
{
	if (BOOT->flags & SBX_BOOT_CPL0)
		__asm__ volatile("outb %%al, %0" ::"i"(SBX_PORT_DOORBELL), "a"(0) : "memory");
	else
		*(volatile uint8_t *)SBX_DOORBELL_VA = 0;
}

int64_t rawcall7(uint32_t nr, const uint64_t a[7])
{
	volatile struct sbx_slot *s = &RING->slots[RING->head % SBX_RING_SLOTS];
	s->nr = nr;
	s->pad = 0;
	for (int i = 0; i < 7; i++)
		s->u.a[i] = a[i];
	s->seq = ++seq;
	__atomic_store_n(&RING->head, RING->head + 1, __ATOMIC_SEQ_CST);
	if (__atomic_load_n(&RING->flags, __ATOMIC_SEQ_CST) & SBX_RING_NEED_WAKEUP)
		doorbell();
	/* A polling monitor answers within microseconds: spin before asking for an exit. */
	for (int spin = 0; spin < 200000 && __atomic_load_n(&s->done, __ATOMIC_ACQUIRE) != seq;
	     spin++)
		__asm__ volatile("pause");
	while (__atomic_load_n(&s->done, __ATOMIC_ACQUIRE) != seq)
		doorbell();
	return s->ret;
}

static int64_t call(uint32_t nr, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4)
{
	const uint64_t a[7] = {a0, a1, a2, a3, a4, 0, 0};
	return rawcall7(nr, a);
}

static uint64_t len(const char *s)
{
	uint64_t n = 0;
	while (s[n])
		n++;
	return n;
}

int rawcall_out = 1;

void rawcall_say(const char *s)
{
	/* struct sbx_rw: fd and pad share a[0] */
	call(SBX_CALL_WRITE, (uint32_t)rawcall_out, (uint64_t)s, len(s), 0, 0);
}

void rawcall_say_num(int64_t v)
{
	static char buf[24];
	int i = 23, neg = v < 0;
	uint64_t u = neg ? (uint64_t)-v : (uint64_t)v;
	buf[i] = 0;
	do {
		buf[--i] = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	if (neg)
		buf[--i] = '-';
	rawcall_say(buf + i);
}

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

void rawcall_leave(uint64_t status)
{
	call(SBX_CALL_EXIT, status, 0, 0, 0, 0);
	for (;;)
		doorbell();
}

static int streq(const char *a, const char *b)
{
	while (*a && *a == *b)
		a++, b++;
	return *a == *b;
}

static char path_buf[8192];
static struct sbx_iovec iov[4];

static void garbage(int calls)
{
	uint64_t top = BOOT->mem_size;
	/* Buffers outside RAM, wrapping, and past its end. */
	expect("write outside RAM", call(SBX_CALL_WRITE, 1, top + 4096, 16, 0, 0), -EFAULT);
	expect("write wrapping", call(SBX_CALL_WRITE, 1, ~0ull - 8, 64, 0, 0), -EFAULT);
	expect("write past the end", call(SBX_CALL_WRITE, 1, top - 8, 64, 0, 0), -EFAULT);
	expect("read huge length", call(SBX_CALL_READ, 0, 0x400000, ~0ull, 0, 0), -EFAULT);
	/* Handles the guest never got. */
	expect("read unknown fd", call(SBX_CALL_READ, 999, 0x400000, 1, 0, 0), -EBADF);
	expect("read negative fd", call(SBX_CALL_READ, 0xffffffff, 0x400000, 1, 0, 0), -EBADF);
	expect("close unknown", call(SBX_CALL_CLOSE, 1u << 31, 0, 0, 0, 0), -EBADF);
	expect("getdents unknown", call(SBX_CALL_GETDENTS, 77, 0x400000, 4096, 0, 0), -EBADF);
	/* Paths: unterminated past RAM, over-long, with a NUL inside, empty. struct sbx_path:
	 * a0 = dirfd | flags << 32, a1 = path, a2 = path_len | mode << 32. */
	uint64_t cwd = (uint32_t)SBX_AT_FDCWD;
	expect("path past RAM", call(SBX_CALL_OPEN, cwd, top - 4, 64, 0, 0), -EFAULT);
	expect("path over-long", call(SBX_CALL_OPEN, cwd, 0x400000, 1u << 30, 0, 0), -ENAMETOOLONG);
	path_buf[0] = '/';
	path_buf[1] = 'a';
	path_buf[2] = 0;
	path_buf[3] = 'b';
	expect("path with NUL", call(SBX_CALL_OPEN, cwd, (uint64_t)path_buf, 4, 0, 0), -EINVAL);
	expect("empty path", call(SBX_CALL_OPEN, cwd, (uint64_t)path_buf, 0, 0, 0), -ENOENT);
	for (int i = 0; i < 8190; i++)
		path_buf[i] = '/';
	expect("path beyond PATH_MAX", call(SBX_CALL_OPEN, cwd, (uint64_t)path_buf, 8190, 0, 0),
	       -ENAMETOOLONG);
	/* Vectors: too many entries, an entry outside RAM, lengths that overflow the total. */
	expect("writev too many", call(SBX_CALL_WRITEV, 1, (uint64_t)iov, 100000, 0, 0), -EINVAL);
	iov[0].base = top + 4096;
	iov[0].len = 8;
	expect("writev entry outside", call(SBX_CALL_WRITEV, 1, (uint64_t)iov, 1, 0, 0), -EFAULT);
	iov[0].base = 0x400000;
	iov[0].len = ~0ull - 2;
	iov[1].base = 0x400000;
	iov[1].len = 8;
	expect("writev overflowing total", call(SBX_CALL_WRITEV, 1, (uint64_t)iov, 2, 0, 0),
	       -EINVAL);
	expect("poll too many", call(SBX_CALL_POLL, 0x400000, 1u << 20, 0, 0, 0), -EINVAL);
	expect("discard the kernel", call(SBX_CALL_DISCARD, SBX_RING_ADDR, 4096, 0, 0, 0), -EINVAL);
	expect("discard unaligned", call(SBX_CALL_DISCARD, 0x400001, 4096, 0, 0, 0), -EINVAL);
	expect("stat into the void", call(SBX_CALL_FSTAT, 1, 0, 0, top, 144), -EFAULT);
	/* Many valid calls (a million by default): the monitor stays correct. */
	static char cwdbuf[64];
	int bad = 0;
	for (int i = 0; i < calls; i++)
		bad += call(SBX_CALL_GETCWD, 0, (uint64_t)cwdbuf, sizeof(cwdbuf), 0, 0) != 2;
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
		call(SBX_CALL_WRITE, 1, (uint64_t) "x", 1, 0, 0); /* no handshake */
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
		call(9999, 0, 0, 0, 0, 0);
	if (streq(mode, "overrun")) {
		__atomic_store_n(&RING->head, RING->head + 100, __ATOMIC_SEQ_CST);
		for (;;)
			doorbell();
	}
	rawcall_say("rawcall: unknown mode\n");
	rawcall_leave(2);
}

__asm__(".globl _start\n_start:\n\tmov %rsp, %rdi\n\tand $-16, %rsp\n\tcall rawcall_main\n\tud2\n");
