/* The native AFL++ baseline: a classic forkserver target (afl-clang-fast, one fork per input)
 * that reads its input from stdin and calls the same LLVMFuzzerTestOneInput. */
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int main(void)
{
	static uint8_t buf[1 << 20];
	size_t n = 0;
	ssize_t k;
	while (n < sizeof(buf) && (k = read(0, buf + n, sizeof(buf) - n)) > 0)
		n += (size_t)k;
	uint8_t *copy = malloc(n ? n : 1);
	for (size_t i = 0; i < n; i++)
		copy[i] = buf[i];
	LLVMFuzzerTestOneInput(copy, n);
	free(copy);
	return 0;
}
