/* cat [FILE...]: copies each FILE (stdin without arguments, or for "-") to stdout with read(2) and
 * write(2). An error prints "cat: PATH: ENAME" to stderr; the other files are still copied and
 * the exit status is 1. */
#include <fcntl.h>
#include <unistd.h>
#include "errname.h"

static int copy(int fd)
{
	static char buf[65536];
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n == 0)
			return 0;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		for (ssize_t off = 0; off < n;) {
			ssize_t w = write(1, buf + off, (size_t)(n - off));
			if (w < 0) {
				if (errno == EINTR)
					continue;
				return -1;
			}
			off += w;
		}
	}
}

int main(int argc, char **argv)
{
	int status = 0;
	if (argc < 2) {
		if (copy(0) < 0) {
			fprintf(stderr, "cat: -: %s\n", errname(errno));
			status = 1;
		}
		return status;
	}
	for (int i = 1; i < argc; i++) {
		const char *path = argv[i];
		int fd = 0;
		if (path[0] != '-' || path[1] != '\0')
			fd = open(path, O_RDONLY);
		if (fd < 0 || copy(fd) < 0) {
			fprintf(stderr, "cat: %s: %s\n", path, errname(errno));
			status = 1;
		}
		if (fd > 0)
			close(fd);
	}
	return status;
}
