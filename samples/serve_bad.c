/* serve_bad: a CGI handler that misbehaves as the query asks ("?mode=M"): crash (a null write),
 * abort, hang (spins), slow (200 ms, then a response), gate (waits until /gate/open exists, then
 * answers: a request that stays in flight until a test lets it go), noheaders (a body without
 * headers), invalid (a malformed header), infinite (headers, then output without end), empty
 * (no output at all), exit3 (a good response, then exit status 3), stderr (768 KiB to stderr,
 * then a good response of 512 KiB); anything else answers "ok". */
#include <time.h>
#include <unistd.h>

#include "serve_req.h"

int main(void)
{
	struct req q;
	if (req_read(&q) < 0)
		return 1;
	char mode[32];
	req_param(&q, "mode", mode, sizeof(mode));
	if (strcmp(mode, "crash") == 0) {
		volatile int *volatile p = NULL; /* the compiler cannot see the NULL */
		*p = 1;
	}
	if (strcmp(mode, "abort") == 0)
		abort();
	if (strcmp(mode, "hang") == 0)
		for (volatile unsigned long i = 0;; i++)
			;
	if (strcmp(mode, "slow") == 0) {
		struct timespec ts = {0, 200 * 1000000};
		nanosleep(&ts, NULL);
	}
	while (strcmp(mode, "gate") == 0 && access("/gate/open", F_OK) != 0) {
		struct timespec ts = {0, 1000000};
		nanosleep(&ts, NULL);
	}
	if (strcmp(mode, "noheaders") == 0) {
		fputs("just a body, no headers\n", stdout);
		return 0;
	}
	if (strcmp(mode, "invalid") == 0) {
		fputs("Content-Type: text/plain\nBad Header Name: x\n\nbody\n", stdout);
		return 0;
	}
	if (strcmp(mode, "infinite") == 0) {
		static char line[4096];
		memset(line, 'x', sizeof(line));
		fputs("Content-Type: text/plain\n\n", stdout);
		for (;;)
			if (fwrite(line, 1, sizeof(line), stdout) != sizeof(line))
				return 1;
	}
	if (strcmp(mode, "empty") == 0)
		return 0;
	if (strcmp(mode, "stderr") == 0) {
		static char line[4096];
		memset(line, 'e', sizeof(line));
		for (int i = 0; i < 192; i++)
			if (fwrite(line, 1, sizeof(line), stderr) != sizeof(line))
				return 1;
		fputs("Content-Type: text/plain\n\nok\n", stdout);
		memset(line, 'x', sizeof(line) - 1);
		line[sizeof(line) - 1] = '\n';
		for (int i = 0; i < 128; i++)
			if (fwrite(line, 1, sizeof(line), stdout) != sizeof(line))
				return 1;
		return 0;
	}
	fputs("Content-Type: text/plain\n\nok\n", stdout);
	return strcmp(mode, "exit3") == 0 ? 3 : 0;
}
