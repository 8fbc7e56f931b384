/* A program that runs into each limit of the policy: `limits spin|sleep|flood|files|write FILE|
 * memory|stdin`. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static volatile unsigned long counter;
static char *volatile keep;

int main(int argc, char **argv)
{
	const char *what = argc > 1 ? argv[1] : "";
	static char buf[65536];
	memset(buf, 'x', sizeof(buf));
	if (!strcmp(what, "spin")) {
		for (;;)
			counter++;
	} else if (!strcmp(what, "sleep")) {
		sleep(3600);
	} else if (!strcmp(what, "flood")) {
		for (;;)
			if (write(1, buf, sizeof(buf)) < 0)
				return 1;
	} else if (!strcmp(what, "files")) {
		for (int n = 0;; n++)
			if (dup(1) < 0) {
				printf("dup failed after %d: %s\n", n, strerror(errno));
				return 1;
			}
	} else if (!strcmp(what, "write") && argc > 2) {
		int fd = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fd < 0)
			return 2;
		for (;;)
			if (write(fd, buf, sizeof(buf)) < 0)
				return 1;
	} else if (!strcmp(what, "memory")) {
		size_t mib = 0;
		char *p;
		/* Touch each block and keep it reachable, so no compiler elides the allocation. */
		while ((p = malloc(1 << 20))) {
			p[0] = 1;
			keep = p;
			mib++;
		}
		printf("malloc failed after %s\n", mib > 16 ? "more than 16 MiB" : "less");
		return 0;
	} else if (!strcmp(what, "stdin")) {
		char c;
		ssize_t n = read(0, &c, 1);
		printf("read stdin: %s\n", n < 0 ? strerror(errno) : "ok");
		return 0;
	}
	fprintf(stderr, "usage: limits spin|sleep|flood|files|write FILE|memory|stdin\n");
	return 2;
}
