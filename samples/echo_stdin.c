/* echo_stdin: copies stdin to stdout in read(2)s of 1000 bytes and prints the byte count to
 * stderr ("echo_stdin: N bytes"). Shows short reads from pipes and files. */
#include <stdio.h>
#include <unistd.h>
#include "errname.h"

int main(void)
{
	char buf[1000];
	unsigned long long total = 0;
	for (;;) {
		ssize_t n = read(0, buf, sizeof(buf));
		if (n == 0)
			break;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "echo_stdin: read: %s\n", errname(errno));
			return 1;
		}
		for (ssize_t off = 0; off < n;) {
			ssize_t w = write(1, buf + off, (size_t)(n - off));
			if (w < 0) {
				if (errno == EINTR)
					continue;
				fprintf(stderr, "echo_stdin: write: %s\n", errname(errno));
				return 1;
			}
			off += w;
		}
		total += (unsigned long long)n;
	}
	fprintf(stderr, "echo_stdin: %llu bytes\n", total);
	return 0;
}
