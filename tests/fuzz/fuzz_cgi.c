/* libFuzzer: sandbox-serve's parser of a CGI handler's response (untrusted: the guest wrote
 * it), and the environment builder with header names and values from the input. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <stdlib.h>

#include "serve.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct serve_cgi_resp r;
	if (serve_cgi_parse((const char *)data, size, &r) == 0) {
		if (r.body_off > size || r.status < 100 || r.status > 599 ||
		    r.nhdr > SERVE_CGI_MAX_HEADERS)
			abort();
		for (size_t i = 0; i < r.nhdr; i++)
			if (r.hdr[i].name < (const char *)data ||
			    r.hdr[i].value + r.hdr[i].value_len > (const char *)data + size)
				abort();
	}
	/* The same bytes as "name\0value" pairs for the environment and its framing. */
	struct serve_env e;
	serve_env_init(&e);
	char *copy = malloc(size + 2);
	if (!copy)
		return 0;
	memcpy(copy, data, size);
	copy[size] = copy[size + 1] = 0;
	for (size_t o = 0; o < size;) {
		const char *name = copy + o;
		o += strlen(name) + 1;
		const char *value = o <= size ? copy + o : "";
		o += strlen(value) + 1;
		serve_env_header(&e, name, value);
	}
	size_t n = serve_env_frame_len(&e);
	char *f = malloc(n);
	if (f && serve_env_frame(&e, f, n) != n)
		abort();
	free(f);
	free(copy);
	serve_env_free(&e);
	return 0;
}
