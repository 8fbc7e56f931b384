/* The loopback's address rules (monitor/calls/inet.c), without a VM: what a guest's sockaddr
 * must look like, which addresses are the sandbox's own, and that a handle's address reads
 * back as it was given. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "calls.h"

/* An address of family (by its text) and port. */
static union sbx_inaddr addr(int family, const char *text, uint16_t port)
{
	union sbx_inaddr a;
	memset(&a, 0, sizeof(a));
	a.sa.sa_family = (sa_family_t)family;
	a.v4.sin_port = htons(port); /* the same place in both families */
	void *x = family == AF_INET ? (void *)&a.v4.sin_addr : (void *)&a.v6.sin6_addr;
	cr_assert_eq(inet_pton(family, text, x), 1, "%s", text);
	return a;
}

static union sbx_inaddr v4(const char *text, uint16_t port)
{
	return addr(AF_INET, text, port);
}

static union sbx_inaddr v6(const char *text, uint16_t port)
{
	return addr(AF_INET6, text, port);
}

Test(inet, a_guest_address_must_have_its_family_and_length)
{
	union sbx_inaddr in = v4("127.0.0.1", 80), in6 = v6("::1", 80), out;
	cr_assert_eq(sbx_inet_parse(AF_INET, &in, sizeof(in.v4), &out), 0);
	cr_assert_eq(sbx_inet_port(&out), 80);
	cr_assert_eq(sbx_inet_parse(AF_INET, &in, sizeof(in.v4) - 1, &out), -EINVAL);
	cr_assert_eq(sbx_inet_parse(AF_INET, &in, 1, &out), -EINVAL);
	cr_assert_eq(sbx_inet_parse(AF_INET, &in6, sizeof(in6.v6), &out), -EAFNOSUPPORT);
	cr_assert_eq(sbx_inet_parse(AF_INET6, &in, sizeof(in.v4), &out), -EINVAL);
	/* RFC 2133's shorter sockaddr_in6 (no scope id) is taken, as by Linux. */
	cr_assert_eq(sbx_inet_parse(AF_INET6, &in6, 24, &out), 0);
	cr_assert_eq(sbx_inet_parse(AF_INET6, &in6, 23, &out), -EINVAL);
	/* AF_UNSPEC passes, for a datagram socket's disconnect. */
	union sbx_inaddr un;
	memset(&un, 0, sizeof(un));
	cr_assert_eq(sbx_inet_parse(AF_INET6, &un, sizeof(sa_family_t), &out), 0);
	cr_assert_eq(out.sa.sa_family, AF_UNSPEC);
	/* A longer buffer than the union is read no further than it. */
	char big[200];
	memset(big, 0, sizeof(big));
	memcpy(big, &in, sizeof(in.v4));
	cr_assert_eq(sbx_inet_parse(AF_INET, big, sizeof(big), &out), 0);
}

Test(inet, only_the_wildcard_and_the_loopback_are_the_sandbox_s)
{
	static const char *const local4[] = {"0.0.0.0", "127.0.0.1", "127.1.2.3",
					     "127.255.255.255"};
	static const char *const off4[] = {"10.0.0.1", "192.0.2.1", "128.0.0.1", "255.255.255.255",
					   "126.255.255.255"};
	static const char *const local6[] = {"::", "::1", "::ffff:127.0.0.1", "::ffff:0.0.0.0"};
	static const char *const off6[] = {"2001:db8::1", "::2", "fe80::1", "::ffff:10.0.0.1",
					   "::127.0.0.1"};
	for (size_t i = 0; i < sizeof(local4) / sizeof(local4[0]); i++) {
		union sbx_inaddr a = v4(local4[i], 1);
		cr_assert(sbx_inet_local(&a), "%s", local4[i]);
	}
	for (size_t i = 0; i < sizeof(off4) / sizeof(off4[0]); i++) {
		union sbx_inaddr a = v4(off4[i], 1);
		cr_assert(!sbx_inet_local(&a), "%s", off4[i]);
	}
	for (size_t i = 0; i < sizeof(local6) / sizeof(local6[0]); i++) {
		union sbx_inaddr a = v6(local6[i], 1);
		cr_assert(sbx_inet_local(&a), "%s", local6[i]);
	}
	for (size_t i = 0; i < sizeof(off6) / sizeof(off6[0]); i++) {
		union sbx_inaddr a = v6(off6[i], 1);
		cr_assert(!sbx_inet_local(&a), "%s", off6[i]);
	}
	union sbx_inaddr un;
	memset(&un, 0, sizeof(un));
	cr_assert(!sbx_inet_local(&un));
}

/* What bind or connect kept reads back byte for byte, and an unbound socket's name is its
 * family's zero address of the full length. */
Test(inet, a_handle_s_address_reads_back_as_given)
{
	struct sbx_handle h;
	memset(&h, 0, sizeof(h));
	union sbx_inaddr addrs[] = {v4("127.0.0.9", 4242), v6("::ffff:127.0.0.1", 65535),
				    v6("::1", 1)};
	for (size_t i = 0; i < sizeof(addrs) / sizeof(addrs[0]); i++) {
		h.family = addrs[i].sa.sa_family;
		struct sbx_sun *g = sbx_inet_sun(&addrs[i]);
		cr_assert(g);
		union sbx_inaddr back;
		size_t n = sbx_inet_name(&h, g, &back);
		cr_assert_eq(n, h.family == AF_INET ? sizeof(back.v4) : sizeof(back.v6));
		cr_assert_eq(memcmp(&back, &addrs[i], n), 0);
		free(g);
	}
	h.family = AF_INET6;
	union sbx_inaddr zero, want;
	memset(&want, 0, sizeof(want));
	want.sa.sa_family = AF_INET6;
	cr_assert_eq(sbx_inet_name(&h, NULL, &zero), sizeof(zero.v6));
	cr_assert_eq(memcmp(&zero, &want, sizeof(zero.v6)), 0);
	cr_assert(sbx_is_inet(&h));
	h.family = 0;
	cr_assert(!sbx_is_inet(&h));
}
