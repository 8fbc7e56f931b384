/* dirty N: touches a 64 MiB buffer, writes one line and sleeps 50 ms (where the reset benchmark
 * takes its snapshot), then writes one byte into each of N pages of the buffer and exits. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 100;
	size_t size = 64u << 20;
	if (n < 0 || (size_t)n > size / 4096)
		return 2;
	volatile char *buf = malloc(size);
	if (!buf)
		return 1;
	memset((char *)buf, 1, size);
	if (write(1, "ready\n", 6) != 6)
		return 1;
	/* Time for the benchmark to pause here; a reset comes back to after the sleep. */
	usleep(50000);
	for (long i = 0; i < n; i++)
		buf[(size_t)i * 4096]++;
	_exit(0);
}
