/* writefile DIR: the write side of the file system, one step per line. DIR must exist, be
 * writable and not contain "sub". Creates DIR/sub/a.txt, writes it (write, pwrite past the end,
 * fsync, ftruncate), reads it back, renames it to b.txt, then removes everything it made. Prints
 * only paths relative to DIR, so the output does not depend on where DIR is. Exits 0 when every
 * step gave the expected result, 1 otherwise. */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "step.h"

static void print_escaped(const char *label, const char *buf, size_t n)
{
	printf("%s: \"", label);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)buf[i];
		if (c == '\n')
			printf("\\n");
		else if (c == '\\' || c == '"')
			printf("\\%c", c);
		else if (c < 32 || c > 126)
			printf("\\x%02x", c);
		else
			putchar(c);
	}
	printf("\"\n");
}

int main(int argc, char **argv)
{
	char sub[4096], a[4096], b[4096];
	if (argc != 2) {
		fprintf(stderr, "usage: writefile DIR\n");
		return 2;
	}
	snprintf(sub, sizeof(sub), "%s/sub", argv[1]);
	snprintf(a, sizeof(a), "%s/sub/a.txt", argv[1]);
	snprintf(b, sizeof(b), "%s/sub/b.txt", argv[1]);

	if (!step("mkdir sub", mkdir(sub, 0755) == 0))
		return 1;

	int fd = open(a, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (!step("open sub/a.txt O_RDWR|O_CREAT|O_TRUNC", fd >= 0))
		return 1;
	const char *text = "hello, file\n";
	ssize_t n = write(fd, text, strlen(text));
	printf("write: %zd\n", n);
	if (n != (ssize_t)strlen(text))
		step_failures++;
	/* past the end: leaves a hole of zero bytes at 12..19 */
	n = pwrite(fd, "XYZ", 3, 20);
	printf("pwrite 3 bytes at 20: %zd\n", n);
	if (n != 3)
		step_failures++;
	/* pwrite must not move the file offset */
	off_t pos = lseek(fd, 0, SEEK_CUR);
	printf("offset after pwrite: %lld\n", (long long)pos);
	if (pos != 12)
		step_failures++;
	step("fsync", fsync(fd) == 0);
	step("ftruncate 22", ftruncate(fd, 22) == 0);
	step("close", close(fd) == 0);

	fd = open(a, O_RDONLY);
	if (!step("reopen sub/a.txt O_RDONLY", fd >= 0))
		return 1;
	char buf[256];
	n = read(fd, buf, sizeof(buf));
	printf("read: %zd\n", n);
	if (n != 22)
		step_failures++;
	if (n > 0)
		print_escaped("content", buf, (size_t)n);
	n = read(fd, buf, sizeof(buf));
	printf("read at end: %zd\n", n);
	if (n != 0)
		step_failures++;
	struct stat st;
	if (step("fstat", fstat(fd, &st) == 0)) {
		printf("fstat size: %lld\n", (long long)st.st_size);
		printf("fstat regular file: %s\n", S_ISREG(st.st_mode) ? "yes" : "no");
		if (st.st_size != 22 || !S_ISREG(st.st_mode))
			step_failures++;
	}
	pos = lseek(fd, 0, SEEK_END);
	printf("lseek SEEK_END: %lld\n", (long long)pos);
	if (pos != 22)
		step_failures++;
	step("close", close(fd) == 0);

	step("rename sub/a.txt sub/b.txt", rename(a, b) == 0);
	int ra = stat(a, &st);
	printf("stat sub/a.txt: %s\n", ra == 0 ? "exists" : errname(errno));
	if (ra == 0 || errno != ENOENT)
		step_failures++;
	int rb = stat(b, &st);
	printf("stat sub/b.txt: %s\n", rb == 0 ? "exists" : errname(errno));
	if (rb != 0)
		step_failures++;
	else if (st.st_size != 22)
		step_failures++;

	step("unlink sub/b.txt", unlink(b) == 0);
	step("rmdir sub", rmdir(sub) == 0);
	int rs = stat(sub, &st);
	printf("stat sub after rmdir: %s\n", rs == 0 ? "exists" : errname(errno));
	if (rs == 0)
		step_failures++;

	printf("%s\n", step_failures ? "FAILED" : "ok");
	return step_failures ? 1 : 0;
}
