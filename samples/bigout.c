/* bigout [MIB]: writes MIB MiB (default 8) of deterministic pseudo-random printable lines to
 * stdout with fwrite() in chunks of varying size (1 byte to 64 KiB), then one line
 * "checksum HEX" (FNV-1a 64 of everything before it). Shows large and odd-sized writes. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t next(void)
{
	/* xorshift64* */
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return rng * 0x2545f4914f6cdd1dull;
}

int main(int argc, char **argv)
{
	long mib = argc > 1 ? atol(argv[1]) : 8;
	if (mib < 0) {
		fprintf(stderr, "usage: bigout [MIB]\n");
		return 2;
	}
	static char buf[65536];
	uint64_t total = (uint64_t)mib << 20, done = 0, hash = 0xcbf29ce484222325ull;
	unsigned col = 0;
	while (done < total) {
		/* chunk sizes spread over 1 B .. 64 KiB, log-uniformly */
		uint64_t r = next();
		size_t len = 1 + (size_t)((r >> 8) & ((1u << (r % 17)) - 1));
		if (len > total - done)
			len = (size_t)(total - done);
		for (size_t i = 0; i < len; i++) {
			char c;
			if (++col == 80) {
				c = '\n';
				col = 0;
			} else {
				c = (char)('!' + next() % 94);
			}
			buf[i] = c;
			hash = (hash ^ (unsigned char)c) * 0x100000001b3ull;
		}
		if (fwrite(buf, 1, len, stdout) != len) {
			perror("bigout: fwrite");
			return 1;
		}
		done += len;
	}
	printf("\nchecksum %016llx\n", (unsigned long long)hash);
	return fflush(stdout) == 0 ? 0 : 1;
}
