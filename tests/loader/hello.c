/* A tiny program with text, initialised data and a large bss: built static (glibc, musl) and
 * static-PIE so the loader tests see what real toolchains produce. */
#include <stdio.h>

static char zeroes[200000];
int counter = 7;
const char message[] = "hello from the loader test";

int main(int argc, char **argv)
{
	zeroes[argc] = (char)counter;
	printf("%s: %s\n", argc > 0 ? argv[0] : "?", message);
	return zeroes[argc] - 7;
}
