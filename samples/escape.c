/* Tries to leave its mount: `escape DIR` where DIR is the guest path of a mount holding a
 * symlink `abs` -> /etc/passwd, `root` -> /, and `up` -> ../../../../etc/passwd. Prints what
 * each attempt gave; every one must fail. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void try(const char *what, const char *path, int flags)
{
	int fd = open(path, flags, 0644);
	printf("%-28s %s\n", what, fd >= 0 ? "OPENED (escape!)" : strerror(errno));
	if (fd >= 0)
		close(fd);
}

int main(int argc, char **argv)
{
	char p[8192];
	const char *d = argc > 1 ? argv[1] : "/data";
	snprintf(p, sizeof(p), "%s/../../../../etc/shadow", d);
	try("dot-dot", p, O_RDONLY);
	try("absolute", "/etc/passwd", O_RDONLY);
	snprintf(p, sizeof(p), "%s/abs", d);
	try("absolute symlink", p, O_RDONLY);
	snprintf(p, sizeof(p), "%s/root/etc/passwd", d);
	try("symlink to /", p, O_RDONLY);
	snprintf(p, sizeof(p), "%s/up", d);
	try("relative symlink out", p, O_RDONLY);
	try("/proc/self/root", "/proc/self/root/etc/passwd", O_RDONLY);
	snprintf(p, sizeof(p), "%s/abs", d);
	try("write through symlink", p, O_WRONLY | O_TRUNC);
	memset(p, 'a', sizeof(p) - 1);
	p[0] = '/';
	p[sizeof(p) - 1] = 0;
	try("path longer than PATH_MAX", p, O_RDONLY);
	snprintf(p, sizeof(p), "%s/new-file", d);
	try("create on a read-only mount", p, O_WRONLY | O_CREAT);
	return 0;
}
