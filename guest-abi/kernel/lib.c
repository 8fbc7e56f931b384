/* The few library routines the kernel needs. Plain loops on purpose: under PVM's CPL0
 * emulator `rep` string instructions run a byte at a time and SSE is not emulated. */
#include "kernel.h"

void *k_memset(void *d, int c, size_t n)
{
	unsigned char *p = d;
	uint64_t w = (uint8_t)c * 0x0101010101010101ull;
	while (n && ((uintptr_t)p & 7)) {
		*p++ = (unsigned char)c;
		n--;
	}
	for (; n >= 8; n -= 8, p += 8)
		*(volatile uint64_t *)p = w;
	while (n--)
		*p++ = (unsigned char)c;
	return d;
}

/* The compiler may emit calls to these for struct copies and initialisers. */
void *memset(void *d, int c, size_t n);
void *memcpy(void *d, const void *s, size_t n);
void *memset(void *d, int c, size_t n)
{
	return k_memset(d, c, n);
}
void *memcpy(void *d, const void *s, size_t n)
{
	return k_memcpy(d, s, n);
}

void *k_memcpy(void *d, const void *s, size_t n)
{
	unsigned char *dp = d;
	const unsigned char *sp = s;
	if ((((uintptr_t)dp | (uintptr_t)sp) & 7) == 0) {
		for (; n >= 8; n -= 8, dp += 8, sp += 8)
			*(volatile uint64_t *)dp = *(const uint64_t *)sp;
	}
	while (n--)
		*dp++ = *sp++;
	return d;
}

size_t k_strlen(const char *s)
{
	size_t n = 0;
	while (s[n])
		n++;
	return n;
}

int k_streq(const char *a, const char *b)
{
	while (*a && *a == *b) {
		a++;
		b++;
	}
	return *a == *b;
}
