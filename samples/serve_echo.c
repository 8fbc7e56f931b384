/* serve_echo: a CGI handler that prints what it was given, for the conformance tests and the
 * load test: "token=" the query's token, every CGI variable it sees (sorted), the body's length,
 * then "--body--" and the body itself. */
#include "serve_req.h"

extern char **environ;

static int cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(void)
{
	struct req q;
	if (req_read(&q) < 0) {
		fputs("Status: 400 Bad Request\nContent-Type: text/plain\n\nbad framing\n", stdout);
		return 0;
	}
	char tok[128];
	req_param(&q, "token", tok, sizeof(tok));
	printf("Content-Type: text/plain\r\nX-Echo-Token: %s\r\n\r\n", tok);
	printf("token=%s\n", tok);
	/* The variables: the environment (CGI) or the framing (warm). */
	char *vars[1024];
	size_t n = 0;
	if (!q.warm) {
		for (char **e = environ; *e && n < 1024; e++)
			vars[n++] = *e;
	} else {
		for (size_t o = 0; o < q.meta_len && n < 1024; o += strlen(q.meta + o) + 1)
			vars[n++] = q.meta + o;
	}
	qsort(vars, n, sizeof(vars[0]), cmp);
	for (size_t i = 0; i < n; i++)
		printf("env %s\n", vars[i]);
	printf("body_len=%zu\n--body--\n", q.body_len);
	fflush(stdout);
	for (size_t o = 0; o < q.body_len;) {
		ssize_t w = write(1, q.body + o, q.body_len - o);
		if (w <= 0)
			return 1;
		o += (size_t)w;
	}
	return 0;
}
