/* sandbox-serve's CGI layer: the environment, warm mode's framing, the response parser. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <errno.h>
#include <string.h>

#include "serve.h"

Test(env, set_replace_and_get)
{
	struct serve_env e;
	serve_env_init(&e);
	cr_assert_eq(serve_env_set(&e, "A", "1"), 0);
	cr_assert_eq(serve_env_set(&e, "B", ""), 0);
	cr_assert_eq(serve_env_set(&e, "A", "2"), 0);
	cr_assert_eq(e.n, 2);
	cr_assert_str_eq(serve_env_get(&e, "A"), "2");
	cr_assert_str_eq(serve_env_get(&e, "B"), "");
	cr_assert_null(serve_env_get(&e, "AB"));
	cr_assert_null(e.v[2]);
	serve_env_free(&e);
}

Test(env, headers_become_http_vars)
{
	struct serve_env e;
	serve_env_init(&e);
	/* skipped: CONTENT_* are set already, Proxy is httpoxy, "_" and "." are outside
	 * [A-Za-z0-9-]. */
	static const struct {
		const char *name, *value;
		int skipped;
	} headers[] = {
	    {"X-Token-Id", "abc", 0},	{"accept", "text/html", 0}, {"Accept", "*/*", 0},
	    {"Content-Length", "5", 1}, {"content-type", "a/b", 1}, {"Proxy", "http://evil", 1},
	    {"X_Under", "u", 1},	{"X.Dot", "d", 1},
	};
	for (size_t i = 0; i < sizeof(headers) / sizeof(headers[0]); i++)
		cr_assert_eq(serve_env_header(&e, headers[i].name, headers[i].value),
			     headers[i].skipped, "%s", headers[i].name);
	cr_assert_str_eq(serve_env_get(&e, "HTTP_X_TOKEN_ID"), "abc");
	cr_assert_str_eq(serve_env_get(&e, "HTTP_ACCEPT"), "text/html, */*");
	cr_assert_null(serve_env_get(&e, "HTTP_CONTENT_LENGTH"));
	cr_assert_null(serve_env_get(&e, "HTTP_PROXY"));
	serve_env_free(&e);
}

Test(env, size_cap)
{
	struct serve_env e;
	serve_env_init(&e);
	static char big[SERVE_ENV_MAX_BYTES];
	memset(big, 'x', sizeof(big) - 1);
	cr_assert_eq(serve_env_set(&e, "BIG", big), -E2BIG);
	big[1000] = 0;
	int r = 0;
	for (int i = 0; i < 1000 && r == 0; i++)
		r = serve_env_header(&e, "X-Big", big);
	cr_assert_eq(r, -E2BIG);
	serve_env_free(&e);
}

Test(env, frame)
{
	struct serve_env e;
	serve_env_init(&e);
	serve_env_set(&e, "REQUEST_METHOD", "GET");
	serve_env_set(&e, "PATH_INFO", "/a\nb\rc");
	size_t n = serve_env_frame_len(&e);
	char buf[256];
	cr_assert_lt(n, sizeof(buf));
	size_t w = serve_env_frame(&e, buf, sizeof(buf));
	cr_assert_eq(w, n);
	cr_assert_eq(memcmp(buf, "REQUEST_METHOD=GET\nPATH_INFO=/a b c\n\n", w), 0);
	cr_assert_eq(serve_env_frame(&e, buf, 5), 5);
	serve_env_free(&e);
}

static int parse(const char *s, struct serve_cgi_resp *r)
{
	return serve_cgi_parse(s, strlen(s), r);
}

Test(cgi, content_type_only)
{
	struct serve_cgi_resp r;
	const char *s = "Content-Type: text/plain\r\n\r\nhello\n";
	cr_assert_eq(parse(s, &r), 0);
	cr_assert_eq(r.status, 200);
	cr_assert_eq(r.nhdr, 1);
	cr_assert_eq(r.hdr[0].name_len, 12);
	cr_assert_eq(strncmp(r.hdr[0].value, "text/plain", r.hdr[0].value_len), 0);
	cr_assert_str_eq(s + r.body_off, "hello\n");
}

Test(cgi, status_location_and_passthrough)
{
	struct serve_cgi_resp r;
	cr_assert_eq(parse("Status: 404 Not Found\nContent-Type: x/y\nX-A:  1 \n\n", &r), 0);
	cr_assert_eq(r.status, 404);
	cr_assert_eq(r.nhdr, 2);
	cr_assert_eq(r.hdr[1].value_len, 1);
	cr_assert_eq(parse("Location: http://example.com/\n\n", &r), 0);
	cr_assert_eq(r.status, 302);
	cr_assert_eq(parse("Status: 201\nLocation: /x\n\nbody", &r), 0);
	cr_assert_eq(r.status, 201);
	cr_assert_eq(parse("Content-Type: a/b\nContent-Length: 99\nConnection: x\n\n", &r), 0);
	cr_assert_eq(r.nhdr, 1, "framing headers are the server's");
}

/* Arrays, not pointers: Criterion may run each case in a re-executed process. */
struct bad {
	char out[48];
	char why[24];
};

ParameterizedTestParameters(cgi, rejected)
{
	static struct bad cases[] = {
	    {"", "no output"},
	    {"hello world\n", "not a header"},
	    {"Content-Type: text/plain\n", "no end"},
	    {"Content-Type: text/plain", "no end of line"},
	    {"X-Only: 1\n\nbody", "none of"},
	    {"Bad Header: 1\n\n", "not a header"},
	    {": v\n\n", "not a header"},
	    {"Content-Type: a\x01\n\n", "control"},
	    {"Status: 099 Low\n\n", "out of 100..599"},
	    {"Status: 600\n\n", "out of 100..599"},
	    {"Status: 2000\n\n", "NNN reason"},
	    {"Status: abc\n\n", "NNN reason"},
	    {"Status: 200\nStatus: 201\n\n", "second Status"},
	    {"Content-Type: a\nContent-Type: b\n\n", "second Content-Type"},
	    {"Location:\n\n", "empty Location"},
	};
	return cr_make_param_array(struct bad, cases, sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct bad *b, cgi, rejected)
{
	struct serve_cgi_resp r;
	cr_assert_eq(parse(b->out, &r), -EBADMSG, "accepted: %s", b->out);
	cr_assert(strstr(r.why, b->why), "%s: why is '%s'", b->out, r.why);
}

Test(cgi, header_block_cap_and_count)
{
	static char big[SERVE_CGI_MAX_HEADER_BYTES + 100];
	memset(big, 'a', sizeof(big));
	memcpy(big, "X-A: ", 5);
	big[sizeof(big) - 1] = '\n';
	struct serve_cgi_resp r;
	cr_assert_eq(serve_cgi_parse(big, sizeof(big), &r), -EBADMSG);
	char many[SERVE_CGI_MAX_HEADERS * 8 + 64] = "Content-Type: a\n";
	for (int i = 0; i < SERVE_CGI_MAX_HEADERS; i++)
		strcat(many, "X-B: 1\n");
	strcat(many, "\n");
	cr_assert_eq(parse(many, &r), -EBADMSG);
	cr_assert(strstr(r.why, "more than"));
}
