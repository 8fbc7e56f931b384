/* bigbss: a static program whose .bss (80 MiB) and .data (2 MiB) are large, as a table built at
 * start-up makes them (a sieve, a lookup table). Checks that every page of .bss reads zero and
 * .data holds its initial bytes, writes a pattern over both, then reads it back, also from a
 * fork's child. Prints "bigbss ok" and exits 0; exits 1 at the first wrong byte. */
#include <stdint.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#define BSS_BYTES (80u << 20)
#define DATA_BYTES (2u << 20)
#define PAGE 4096u

static uint8_t bss[BSS_BYTES];
static uint8_t data[DATA_BYTES] = {[0] = 1, [DATA_BYTES / 2] = 2, [DATA_BYTES - 1] = 3};

static uint8_t pat(uint32_t i)
{
	return (uint8_t)((i * 2654435761u) >> 13);
}

static uint8_t data_pat(uint32_t i)
{
	return (uint8_t)((i * 2246822519u) >> 11);
}

/* The pattern at every 4 KiB and at each page's last byte. */
static int check(const char *who)
{
	for (uint32_t i = 0; i < BSS_BYTES; i += PAGE)
		if (bss[i] != pat(i) || bss[i + PAGE - 1] != pat(i + PAGE - 1)) {
			printf("%s: bss byte %u wrong\n", who, i);
			return 1;
		}
	for (uint32_t i = 0; i < DATA_BYTES; i += PAGE)
		if (data[i] != data_pat(i)) {
			printf("%s: data byte %u wrong\n", who, i);
			return 1;
		}
	return 0;
}

int main(void)
{
	for (uint32_t i = 0; i < BSS_BYTES; i += PAGE / 4)
		if (bss[i]) {
			printf("bss byte %u is %u, not 0\n", i, bss[i]);
			return 1;
		}
	if (data[0] != 1 || data[DATA_BYTES / 2] != 2 || data[DATA_BYTES - 1] != 3 || data[PAGE]) {
		printf("data lost its initial bytes\n");
		return 1;
	}
	for (uint32_t i = 0; i < BSS_BYTES; i += PAGE) {
		bss[i] = pat(i);
		bss[i + PAGE - 1] = pat(i + PAGE - 1);
	}
	for (uint32_t i = 0; i < DATA_BYTES; i += PAGE)
		data[i] = data_pat(i);
	if (check("parent"))
		return 1;
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0)
		_exit(check("child"));
	int st = 0;
	if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st)) {
		printf("the child saw another memory (status %d)\n", st);
		return 1;
	}
	printf("bigbss ok\n");
	return 0;
}
