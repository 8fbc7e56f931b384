/* rawcall's side of the ring: one request, the doorbell, output and exit. Freestanding: the
 * compiler's memset and memcpy are here too. */
#include "rawcall.h"

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

void rawcall_doorbell(void)
{
	if (BOOT->flags & SBX_BOOT_CPL0)
		__asm__ volatile("outb %%al, %0" ::"i"(SBX_PORT_DOORBELL), "a"(0) : "memory");
	else
		*(volatile uint8_t *)SBX_DOORBELL_VA = 0;
}

int64_t rawcall7(uint32_t nr, const uint64_t a[7])
{
	return rawcall7_pad(nr, 0, a);
}

int64_t rawcall7_pad(uint32_t nr, uint32_t pad, const uint64_t a[7])
{
	volatile struct sbx_slot *s = &RING->slots[RING->head % SBX_RING_SLOTS];
	s->nr = nr;
	s->pad = pad;
	for (int i = 0; i < 7; i++)
		s->u.a[i] = a[i];
	s->seq = ++seq;
	__atomic_store_n(&RING->head, RING->head + 1, __ATOMIC_SEQ_CST);
	if (__atomic_load_n(&RING->flags, __ATOMIC_SEQ_CST) & SBX_RING_NEED_WAKEUP)
		rawcall_doorbell();
	/* A polling monitor answers within microseconds: spin before asking for an exit. */
	for (int spin = 0; spin < 200000 && __atomic_load_n(&s->done, __ATOMIC_ACQUIRE) != seq;
	     spin++)
		__asm__ volatile("pause");
	while (__atomic_load_n(&s->done, __ATOMIC_ACQUIRE) != seq)
		rawcall_doorbell();
	return s->ret;
}

int64_t rawcall_call(uint32_t nr, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4)
{
	const uint64_t a[7] = {a0, a1, a2, a3, a4, 0, 0};
	return rawcall7(nr, a);
}

uint64_t rawcall_len(const char *s)
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
	rawcall_call(SBX_CALL_WRITE, (uint32_t)rawcall_out, (uint64_t)s, rawcall_len(s), 0, 0);
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

void rawcall_leave(uint64_t status)
{
	rawcall_call(SBX_CALL_EXIT, status, 0, 0, 0, 0);
	for (;;)
		rawcall_doorbell();
}
