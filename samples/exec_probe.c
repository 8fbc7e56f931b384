/* A program run many times from one snapshot (tests of sbx_exec): it prints what one run can
 * see of the others. Each run: argv, QUERY_STRING, its stdin, its AT_RANDOM bytes, a global
 * and a heap object it leaves behind, and whether it finds the previous run's secret in either.
 * With "warm" as argv[1] it first builds a table (its own initialisation), then reads stdin:
 * the snapshot point of sandbox-serve --warm. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <unistd.h>

static char secret[300];
static char *heap_secret;
static unsigned table[4096];

int main(int argc, char **argv)
{
	int warm = argc > 1 && !strcmp(argv[1], "warm");
	if (warm)
		for (unsigned i = 0; i < 4096; i++)
			table[i] = i * 2654435761u;
	char in[256];
	size_t n = fread(in, 1, sizeof(in) - 1, stdin);
	in[n] = 0;
	const unsigned char *r = (const unsigned char *)getauxval(AT_RANDOM);
	unsigned char rnd[8] = {0};
	if (getentropy(rnd, sizeof(rnd)) != 0)
		return 2;
	const char *qs = getenv("QUERY_STRING");
	printf("argc=%d argv1=%s qs=%s in=%s leak=%s%s table=%u\n", argc, argc > 1 ? argv[1] : "-",
	       qs ? qs : "-", in, secret[0] ? "global" : "none", heap_secret ? "+heap" : "",
	       table[4095]);
	printf("at_random=");
	for (int i = 0; i < 16; i++)
		printf("%02x", r[i]);
	printf(" getrandom=");
	for (int i = 0; i < 8; i++)
		printf("%02x", rnd[i]);
	printf("\n");
	snprintf(secret, sizeof(secret), "secret of %s", in);
	heap_secret = strdup(secret);
	setenv("SECRET", secret, 1);
	fflush(stdout);
	return 0;
}
