/* A dynamic program that crashes inside shared objects: `lib` in its own library (libsbxcrash),
 * `callback` in itself called back from that library, `qsort` in a comparator libc's qsort
 * calls, `strlen` inside libc. `maps` prints the paths of /proc/self/maps, one per line,
 * sorted and deduplicated by the caller. `hostile PATH` (a FIFO the test made) renames libc's
 * link-map entry to it and links the list's end back to its start, then crashes as `lib`. */
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "crashlib.h"

static int *volatile nowhere;

__attribute__((noinline)) static void store_through(int *p)
{
	*p = 7; /* CALLBACK-CRASH-LINE */
}

__attribute__((noinline)) static int compare(const void *a, const void *b)
{
	*nowhere = *(const int *)a; /* QSORT-CRASH-LINE */
	return *(const int *)a - *(const int *)b;
}

static int maps(void)
{
	FILE *f = fopen("/proc/self/maps", "r");
	if (!f)
		return 1;
	char line[512];
	while (fgets(line, sizeof(line), f)) {
		char *path = strchr(line, '/');
		if (path)
			fputs(path, stdout);
	}
	fclose(f);
	return 0;
}

static int wreck_link_map(const char *fifo)
{
	struct stat st;
	if (stat(fifo, &st) < 0)
		return 1;
	struct link_map *l = _r_debug.r_map, *first = l;
	for (; l->l_next; l = l->l_next)
		if (strstr(l->l_name, "libc.so"))
			l->l_name = (char *)fifo;
	l->l_next = first;
	return 0;
}

int main(int argc, char **argv)
{
	const char *how = argc > 1 ? argv[1] : "";
	if (!strcmp(how, "lib"))
		sbx_lib_store(nowhere, 1);
	else if (!strcmp(how, "callback"))
		sbx_lib_call(store_through, nowhere);
	else if (!strcmp(how, "qsort")) {
		int v[4] = {3, 1, 2, 0};
		qsort(v, 4, sizeof(v[0]), compare);
		printf("%d\n", v[0]);
	} else if (!strcmp(how, "strlen")) {
		printf("%zu\n", strlen((const char *)nowhere));
	} else if (!strcmp(how, "maps")) {
		return maps();
	} else if (!strcmp(how, "hostile") && argc > 2) {
		if (wreck_link_map(argv[2]))
			return 1;
		sbx_lib_store(nowhere, 1);
	} else {
		fprintf(stderr, "usage: crash-dyn lib|callback|qsort|strlen|maps|hostile FIFO\n");
		return 2;
	}
	return 0;
}
