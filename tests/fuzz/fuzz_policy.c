/* libFuzzer target for JSON policies: any bytes go through policy_load_json_text into a fresh
 * policy. Whatever loads must also write, and what it writes must load again to the same text
 * (the round trip the tests check on the fixtures). Mount hosts are real host paths: the loader
 * only resolves and opens them read-only (O_PATH). */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *dump(const struct policy *p)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	if (!f)
		__builtin_trap();
	if (policy_write_json(p, f) < 0) {
		fclose(f);
		free(buf);
		return NULL; /* e.g. a host path that is not UTF-8 */
	}
	fclose(f);
	return buf;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct policy p;
	char err[512];

	policy_init(&p);
	err[0] = 0;
	int r = policy_load_json_text(&p, (const char *)data, size, "fuzz.json", err, sizeof(err));
	if (r < 0 && (!err[0] || strchr(err, '\n')))
		__builtin_trap(); /* every failure says why, on one line */
	if (r == 0) {
		char *a = dump(&p);
		if (a) {
			struct policy q;
			policy_init(&q);
			if (policy_load_json_text(&q, a, strlen(a), "again.json", err, sizeof(err)))
				__builtin_trap();
			char *b = dump(&q);
			if (!b || strcmp(a, b) != 0)
				__builtin_trap();
			free(b);
			policy_free(&q);
			free(a);
		}
	}
	policy_free(&p);
	return 0;
}
