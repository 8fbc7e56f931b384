/* Status flags on inherited descriptors: O_APPEND set on stdout makes writes go to the end
 * (after a seek back), F_GETFL shows it, and O_NONBLOCK on stdin makes an empty pipe answer
 * EAGAIN. In the sandbox none of it may reach the file descriptions the user handed in. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(void)
{
	write(1, "hello\n", 6);
	int fl = fcntl(1, F_GETFL);
	if (fcntl(1, F_SETFL, fl | O_APPEND) < 0)
		perror("F_SETFL");
	lseek(1, 0, SEEK_SET);
	write(1, "world\n", 6);
	char line[80];
	int n = snprintf(line, sizeof(line), "stdout O_APPEND after F_SETFL: %s\n",
			 fcntl(1, F_GETFL) & O_APPEND ? "yes" : "no");
	write(1, line, (size_t)n);
	int d = dup(1);
	n = snprintf(line, sizeof(line), "a dup shares it: %s\n",
		     fcntl(d, F_GETFL) & O_APPEND ? "yes" : "no");
	write(1, line, (size_t)n);
	fcntl(0, F_SETFL, fcntl(0, F_GETFL) | O_NONBLOCK);
	char c;
	ssize_t r = read(0, &c, 1);
	n = snprintf(line, sizeof(line), "read of an empty stdin pipe with O_NONBLOCK: %s\n",
		     r < 0 && errno == EAGAIN ? "EAGAIN" : "something else");
	write(1, line, (size_t)n);
	return 0;
}
