/* A target that keeps state it should not: a global counter, a heap leak, a file written on
 * every input. Under the reset each input must see the very same world: it aborts when it
 * sees a trace of an earlier input. An input starting with 'E' calls exit(3), 'A' abort(),
 * 'L' loops forever, 'M' allocates without end, 'C' faults. */
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sbx_fuzz.h"

static int counter;
static void *leaked_last;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (counter != 0)
		abort(); /* an earlier input's global survived */
	counter++;
	void *p = malloc(4096);
	if (leaked_last && p != leaked_last)
		abort(); /* the heap moved on: an earlier input's leak survived */
	leaked_last = p;
	memset(p, 0x5a, 4096);
	int fd = open("/tmp/state.txt", O_WRONLY | O_CREAT | O_APPEND, 0600);
	if (fd >= 0) {
		if (lseek(fd, 0, SEEK_END) != 0)
			abort(); /* an earlier input's write survived */
		if (write(fd, "x", 1) != 1)
			abort();
		close(fd);
	}
	if (size > 0) {
		switch (data[0]) {
		case 'E':
			exit(3);
		case 'A':
			abort();
		case 'L':
			for (volatile int spin = 1; spin;)
				;
			break;
		case 'M':
			for (;;) {
				char *q = malloc(1 << 20);
				if (!q)
					abort();
				memset(q, 1, 1 << 20);
			}
		case 'C':
			*(volatile int *)(uintptr_t)(size * 0 + 8) = 1;
			break;
		}
	}
	return 0;
}
