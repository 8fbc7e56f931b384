/* serve_iso: isolation between requests. Reports what the previous request left (a global, a
 * heap object, a file in /tmp (a --tmp mount), an environment variable), fresh random bytes
 * (getrandom) and AT_RANDOM, then leaves its own secret ("?secret=S") in all four places, and
 * then ends as asked: "&then=crash" (a null write), "&then=hang", or normally. */
#include <fcntl.h>
#include <sys/auxv.h>
#include <sys/random.h>

#include "serve_req.h"

static char g_secret[64];

static void hex(char *out, const unsigned char *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", b[i]);
}

int main(void)
{
	struct req q;
	if (req_read(&q) < 0)
		return 1;
	char secret[48], then[16];
	req_param(&q, "secret", secret, sizeof(secret));
	req_param(&q, "then", then, sizeof(then));
	if (!secret[0])
		strcpy(secret, "s3cret");

	char *heap = malloc(4096);
	char file[64] = "none";
	int fd = open("/tmp/iso-secret", O_RDONLY);
	if (fd >= 0) {
		ssize_t n = read(fd, file, sizeof(file) - 1);
		file[n > 0 ? n : 0] = 0;
		close(fd);
	}
	const char *env = getenv("ISO_SECRET");
	unsigned char rnd[16] = {0};
	char rhex[33], ahex[33] = "none";
	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		memset(rnd, 0, sizeof(rnd));
	hex(rhex, rnd, sizeof(rnd));
	const unsigned char *at = (const unsigned char *)getauxval(AT_RANDOM);
	if (at)
		hex(ahex, at, 16);
	printf("Content-Type: text/plain\n\n"
	       "global=%s heap=%s file=%s env=%s random=%s at_random=%s\n",
	       g_secret[0] ? g_secret : "none",
	       heap && memcmp(heap, "SECRET:", 7) == 0 ? heap + 7 : "none", file,
	       env ? env : "none", rhex, ahex);
	fflush(stdout);

	snprintf(g_secret, sizeof(g_secret), "%s", secret);
	if (heap)
		snprintf(heap, 4096, "SECRET:%s", secret);
	fd = open("/tmp/iso-secret", O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd >= 0) {
		ssize_t w = write(fd, secret, strlen(secret));
		(void)w;
		close(fd);
	}
	setenv("ISO_SECRET", secret, 1);
	if (strcmp(then, "crash") == 0) {
		volatile int *volatile p = NULL; /* the compiler cannot see the NULL */
		*p = 1;
	}
	if (strcmp(then, "hang") == 0)
		for (volatile unsigned long i = 0;; i++)
			;
	return 0;
}
