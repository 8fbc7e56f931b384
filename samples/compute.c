/* compute [N]: CPU-bound work with no system calls in the loop: a sieve of Eratosthenes over
 * N numbers (default 20,000,000), then ROUNDS of integer hash mixing over the primes found.
 * Prints the prime count and a checksum. Shows that guest code runs at native speed. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define ROUNDS 20

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 20000000;
	if (n < 2) {
		fprintf(stderr, "usage: compute [N>=2]\n");
		return 2;
	}
	unsigned char *composite = calloc((size_t)n + 1, 1);
	if (!composite) {
		fprintf(stderr, "compute: out of memory\n");
		return 1;
	}
	for (long i = 2; i * i <= n; i++)
		if (!composite[i])
			for (long j = i * i; j <= n; j += i)
				composite[j] = 1;

	uint64_t count = 0, h = 0x243f6a8885a308d3ull;
	for (int round = 0; round < ROUNDS; round++) {
		for (long i = 2; i <= n; i++) {
			if (composite[i])
				continue;
			if (round == 0)
				count++;
			/* splitmix64-style mixing of the running state with the prime */
			h += (uint64_t)i * 0x9e3779b97f4a7c15ull;
			h ^= h >> 30;
			h *= 0xbf58476d1ce4e5b9ull;
			h ^= h >> 27;
			h *= 0x94d049bb133111ebull;
			h ^= h >> 31;
		}
	}
	free(composite);
	printf("primes <= %ld: %llu\n", n, (unsigned long long)count);
	printf("checksum %016llx\n", (unsigned long long)h);
	return 0;
}
