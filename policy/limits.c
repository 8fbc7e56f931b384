/* Sizes and durations as the limits flags take them: digits, then a unit from a table. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy.h"

struct unit {
	const char *name;
	uint64_t mul;
};

/* Tried in order: the first unit the text goes on with, followed by one of the tails, wins
 * (so "" comes last). A size may end in "B" or "iB" ("64KiB", "4096B"). */
static const struct unit size_units[] = {{"k", 1ull << 10},
					 {"K", 1ull << 10},
					 {"m", 1ull << 20},
					 {"M", 1ull << 20},
					 {"g", 1ull << 30},
					 {"G", 1ull << 30},
					 {"", 1}};
static const char *const size_tails[] = {"", "B", "iB", NULL};
/* A bare number is seconds. */
static const struct unit duration_units[] = {
    {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"", 1000}};
static const char *const duration_tails[] = {"", NULL};

static int is_tail(const char *s, const char *const *tails)
{
	for (; *tails; tails++)
		if (!strcmp(s, *tails))
			return 1;
	return 0;
}

static int parse(const char *s, const struct unit *units, size_t nunits, const char *const *tails,
		 uint64_t *out)
{
	char *end;
	if (!s || *s < '0' || *s > '9')
		return -EINVAL; /* strtoull would take spaces and signs */
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno)
		return -EINVAL;
	for (size_t i = 0; i < nunits; i++) {
		size_t l = strlen(units[i].name);
		if (strncmp(end, units[i].name, l) || !is_tail(end + l, tails))
			continue;
		if (v > UINT64_MAX / units[i].mul)
			return -EINVAL;
		*out = v * units[i].mul;
		return 0;
	}
	return -EINVAL;
}

int policy_parse_size(const char *s, uint64_t *out)
{
	return parse(s, size_units, sizeof(size_units) / sizeof(size_units[0]), size_tails, out);
}

int policy_parse_duration(const char *s, uint64_t *ms)
{
	return parse(s, duration_units, sizeof(duration_units) / sizeof(duration_units[0]),
		     duration_tails, ms);
}
