/* Sizes and durations as the limits flags take them. */
#define _XOPEN_SOURCE 700
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "policy.h"

/* The digits a size or duration starts with; *end points at its unit. */
static int leading_number(const char *s, uint64_t *v, const char **end)
{
	char *e;
	if (!s || *s < '0' || *s > '9')
		return -EINVAL; /* strtoull would take spaces and signs */
	errno = 0;
	unsigned long long n = strtoull(s, &e, 10);
	if (errno)
		return -EINVAL;
	*v = n;
	*end = e;
	return 0;
}

int policy_parse_size(const char *s, uint64_t *out)
{
	const char *end;
	uint64_t v;
	if (leading_number(s, &v, &end) < 0)
		return -EINVAL;
	unsigned shift = 0;
	switch (*end) {
	case 'k':
	case 'K':
		shift = 10;
		end++;
		break;
	case 'm':
	case 'M':
		shift = 20;
		end++;
		break;
	case 'g':
	case 'G':
		shift = 30;
		end++;
		break;
	}
	if (*end == 'i' && end[1] == 'B')
		end += 2;
	else if (*end == 'B')
		end++;
	if (*end || (shift && v > (~0ull >> shift)))
		return -EINVAL;
	*out = v << shift;
	return 0;
}

int policy_parse_duration(const char *s, uint64_t *ms)
{
	const char *end;
	uint64_t v;
	if (leading_number(s, &v, &end) < 0)
		return -EINVAL;
	uint64_t mul;
	if (!strcmp(end, "ms"))
		mul = 1;
	else if (!strcmp(end, "s") || !*end)
		mul = 1000;
	else if (!strcmp(end, "m"))
		mul = 60000;
	else if (!strcmp(end, "h"))
		mul = 3600000;
	else
		return -EINVAL;
	if (v > ~0ull / mul)
		return -EINVAL;
	*ms = v * mul;
	return 0;
}
