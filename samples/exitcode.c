/* exitcode N: exits with status N.
 * exitcode abort: calls abort() (dies with SIGABRT).
 * exitcode signal N: raise(N) (dies with signal N, unless it is ignored by default). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: exitcode N | abort | signal N\n");
		return 2;
	}
	if (strcmp(argv[1], "abort") == 0)
		abort();
	if (strcmp(argv[1], "signal") == 0) {
		if (argc < 3) {
			fprintf(stderr, "usage: exitcode signal N\n");
			return 2;
		}
		raise(atoi(argv[2]));
		return 0; /* a signal whose default action is to ignore it */
	}
	return atoi(argv[1]);
}
