/* args: prints argc, each argv[i], then every environment entry, one per line, and the entries
 * again as /proc/self/environ has them (what a sanitizer's runtime reads before the C library is
 * up). Shows the initial stack the loader builds. */
#include <stdio.h>
#include <string.h>

extern char **environ;

int main(int argc, char **argv)
{
	printf("argc=%d\n", argc);
	for (int i = 0; i < argc; i++)
		printf("argv[%d]=%s\n", i, argv[i]);
	for (char **e = environ; *e; e++)
		printf("env=%s\n", *e);
	FILE *f = fopen("/proc/self/environ", "r");
	static char b[65536];
	size_t n = f ? fread(b, 1, sizeof(b) - 1, f) : 0;
	if (f)
		fclose(f);
	for (size_t i = 0; i < n; i += strlen(b + i) + 1)
		printf("/proc/self/environ: %s\n", b + i);
	return 0;
}
