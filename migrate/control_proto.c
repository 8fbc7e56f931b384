/* The control socket's messages (control_proto.h): one line, a descriptor attached or not. */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "control_proto.h"
#include "mig_internal.h"

int mig_ctl_addr(const char *path, struct mig_addr *a, char *err, size_t errlen)
{
	char spec[PATH_MAX + 8];
	snprintf(spec, sizeof(spec), "unix:%s", path);
	return mig_addr_parse(spec, a, err, errlen);
}

int mig_ctl_send(int c, int fd, const char *fmt, ...)
{
	char line[MIG_CTL_LINE_MAX];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -EINVAL;
	if ((size_t)n > sizeof(line) - 2)
		n = (int)sizeof(line) - 2;
	line[n++] = '\n';
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(sizeof(int))];
	} ctl;
	struct iovec iov = {.iov_base = line, .iov_len = (size_t)n};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
	if (fd >= 0) {
		memset(&ctl, 0, sizeof(ctl));
		mh.msg_control = ctl.b;
		mh.msg_controllen = sizeof(ctl.b);
		struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	}
	return sendmsg(c, &mh, MSG_NOSIGNAL) < 0 ? -errno : 0;
}

long mig_ctl_recv(int c, char *buf, size_t len, int *fdp, int timeout_ms)
{
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(sizeof(int))];
	} ctl;
	struct iovec iov = {.iov_base = buf, .iov_len = len - 1};
	struct msghdr mh = {.msg_iov = &iov,
			    .msg_iovlen = 1,
			    .msg_control = ctl.b,
			    .msg_controllen = sizeof(ctl.b)};
	struct pollfd p = {.fd = c, .events = POLLIN};
	int fd = -1;
	if (fdp)
		*fdp = -1;
	int r = poll(&p, 1, timeout_ms);
	if (r <= 0)
		return r == 0 ? -ETIMEDOUT : -errno;
	ssize_t n = recvmsg(c, &mh, MSG_CMSG_CLOEXEC);
	if (n <= 0)
		return n == 0 ? -EPIPE : -errno;
	buf[n] = 0;
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm))
		if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS &&
		    cm->cmsg_len == CMSG_LEN(sizeof(int)) && fd < 0)
			memcpy(&fd, CMSG_DATA(cm), sizeof(int));
	if (fdp)
		*fdp = fd;
	else if (fd >= 0)
		close(fd);
	return (long)n;
}

int mig_ctl_is(const char *line, const char *word)
{
	return strncmp(line, word, strlen(word)) == 0;
}
