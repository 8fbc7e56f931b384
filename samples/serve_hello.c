/* serve_hello: the smallest CGI handler for sandbox-serve (CGI or warm mode) and the
 * benchmark's baselines: reads the request, answers "hello, world". */
#include "serve_req.h"

int main(void)
{
	struct req q;
	if (req_read(&q) < 0)
		return 1;
	fputs("Content-Type: text/plain\r\n\r\nhello, world\n", stdout);
	return 0;
}
