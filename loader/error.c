/* Error messages: one line, no program name, untrusted bytes escaped. */
#include <stdio.h>
#include <string.h>

#include "loader_priv.h"

int loader_fail(char *err, size_t errlen, int rc, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return rc;
}

void loader_escape(char *out, size_t outlen, const uint8_t *s, size_t len, size_t max)
{
	size_t o = 0;
	size_t i;
	int cut = 0;

	if (outlen == 0)
		return;
	for (i = 0; i < len && s[i] != 0; i++) {
		char tmp[5];
		size_t n;

		if (i == max) {
			cut = 1;
			break;
		}
		if (s[i] >= 0x20 && s[i] < 0x7f && s[i] != '\\')
			n = (size_t)snprintf(tmp, sizeof(tmp), "%c", s[i]);
		else
			n = (size_t)snprintf(tmp, sizeof(tmp), "\\x%02x", s[i]);
		if (o + n >= outlen) {
			cut = 1;
			break;
		}
		memcpy(out + o, tmp, n);
		o += n;
	}
	out[o] = 0;
	/* A cut string must never look complete. */
	if (cut && outlen >= 4) {
		if (o + 3 >= outlen)
			o = outlen - 4;
		memcpy(out + o, "...", 4);
	}
}
