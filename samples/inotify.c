/* inotify DIR: file watches as build tools, test runners and editors use them (fs.watch,
 * watchdog, fsnotify, tail -F). Prints the events each step brings and the errors Linux gives;
 * the same lines natively and in the sandbox (tests/monitor/test_e2e.c). DIR must exist and be
 * writable; what is made there is removed. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "errname.h"

static char dir[512], f1[600], f2[600], sub[600];

static void show(const char *what, long r)
{
	printf("%s: %s\n", what, r < 0 ? errname(errno) : "ok");
	fflush(stdout);
}

/* A call's result and its error, taken in that order. */
static void res(const char *what, long r)
{
	printf("%s: %ld %s\n", what, r, r < 0 ? errname(errno) : "ok");
	fflush(stdout);
}

static const char *name_of(uint32_t m)
{
	static const struct {
		uint32_t bit;
		const char *name;
	} names[] = {{IN_ACCESS, "ACCESS"},
		     {IN_MODIFY, "MODIFY"},
		     {IN_ATTRIB, "ATTRIB"},
		     {IN_CLOSE_WRITE, "CLOSE_WRITE"},
		     {IN_CLOSE_NOWRITE, "CLOSE_NOWRITE"},
		     {IN_OPEN, "OPEN"},
		     {IN_MOVED_FROM, "MOVED_FROM"},
		     {IN_MOVED_TO, "MOVED_TO"},
		     {IN_CREATE, "CREATE"},
		     {IN_DELETE, "DELETE"},
		     {IN_DELETE_SELF, "DELETE_SELF"},
		     {IN_MOVE_SELF, "MOVE_SELF"},
		     {IN_IGNORED, "IGNORED"},
		     {IN_Q_OVERFLOW, "Q_OVERFLOW"}};
	static char out[256];
	out[0] = 0;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (m & names[i].bit)
			snprintf(out + strlen(out), sizeof(out) - strlen(out), "%s%s",
				 out[0] ? "|" : "", names[i].name);
	if (m & IN_ISDIR)
		snprintf(out + strlen(out), sizeof(out) - strlen(out), "|ISDIR");
	return out;
}

/* Every event queued now (the instance is non-blocking), one line each. */
static void drain(int fd, const char *step)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	uint32_t cookie = 0;
	printf("%s:\n", step);
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n <= 0) {
			if (n < 0 && errno != EAGAIN)
				printf("  read: %s\n", errname(errno));
			break;
		}
		for (char *p = buf; p < buf + n;) {
			struct inotify_event *e = (struct inotify_event *)p;
			printf("  wd %d %s %s", e->wd, name_of(e->mask), e->len ? e->name : "-");
			if (e->cookie) {
				printf(" cookie %s",
				       cookie && cookie == e->cookie ? "paired" : "new");
				cookie = e->cookie;
			}
			printf("\n");
			p += sizeof(*e) + e->len;
		}
	}
	fflush(stdout);
}

static void touch(const char *p, const char *text)
{
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd >= 0) {
		if (text)
			write(fd, text, strlen(text));
		close(fd);
	}
}

static void *make_file_later(void *arg)
{
	(void)arg;
	struct timespec t = {0, 200 * 1000 * 1000};
	nanosleep(&t, NULL);
	touch(f2, NULL);
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: inotify DIR\n");
		return 2;
	}
	snprintf(dir, sizeof(dir), "%s/watched", argv[1]);
	snprintf(f1, sizeof(f1), "%s/a.txt", dir);
	snprintf(f2, sizeof(f2), "%s/b.txt", dir);
	snprintf(sub, sizeof(sub), "%s/sub", dir);
	unlink(f1);
	unlink(f2);
	rmdir(sub);
	rmdir(dir);
	show("mkdir", mkdir(dir, 0700));

	int in = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	show("inotify_init1", in);
	char link[64], target[64] = "";
	snprintf(link, sizeof(link), "/proc/self/fd/%d", in);
	ssize_t tl = readlink(link, target, sizeof(target) - 1);
	printf("its link: %s\n", tl > 0 ? target : errname(errno));
	int wd = inotify_add_watch(in, dir,
				   IN_CREATE | IN_DELETE | IN_MODIFY | IN_CLOSE_WRITE |
				       IN_MOVED_FROM | IN_MOVED_TO | IN_ATTRIB);
	printf("watch on the directory: %d\n", wd);
	drain(in, "nothing yet");

	touch(f1, "one");
	int avail = -1;
	ioctl(in, FIONREAD, &avail);
	printf("FIONREAD: %s\n", avail > 0 ? "some" : "none");
	drain(in, "create and write a.txt");
	rename(f1, f2);
	drain(in, "rename a.txt to b.txt");
	mkdir(sub, 0700);
	chmod(f2, 0644);
	drain(in, "mkdir sub, chmod b.txt");

	int wf = inotify_add_watch(in, f2, IN_MODIFY | IN_DELETE_SELF | IN_ATTRIB);
	printf("watch on b.txt: %d\n", wf);
	printf("the same again: %d\n", inotify_add_watch(in, f2, IN_MODIFY));
	res("with IN_MASK_CREATE", inotify_add_watch(in, f2, IN_MODIFY | IN_MASK_CREATE));
	touch(f2, "two");
	unlink(f2);
	rmdir(sub);
	drain(in, "write and remove b.txt, rmdir sub");

	printf("rm_watch: %d\n", inotify_rm_watch(in, wd));
	drain(in, "after rm_watch");
	res("rm_watch again", inotify_rm_watch(in, wd));

	/* Errors, in Linux's order. */
	res("missing path", inotify_add_watch(in, "/nonexistent/x", IN_CREATE));
	int wd2 = inotify_add_watch(in, dir, IN_CREATE);
	touch(f1, NULL);
	res("IN_ONLYDIR on a file", inotify_add_watch(in, f1, IN_CREATE | IN_ONLYDIR));
	res("not an instance", inotify_add_watch(1, dir, IN_CREATE));
	res("bad fd", inotify_add_watch(999, dir, IN_CREATE));
	res("both mask flags",
	    inotify_add_watch(in, dir, IN_CREATE | IN_MASK_ADD | IN_MASK_CREATE));
	res("init1 bad flag", inotify_init1(1));
	unlink(f1);
	drain(in, "touch a.txt, then remove it");

	/* A blocking instance woken by another thread's change, through poll and epoll. */
	int bl = inotify_init();
	inotify_add_watch(bl, dir, IN_CREATE);
	pthread_t t;
	pthread_create(&t, NULL, make_file_later, NULL);
	char buf[512] __attribute__((aligned(__alignof__(struct inotify_event))));
	ssize_t n = read(bl, buf, sizeof(buf));
	struct inotify_event *e = (struct inotify_event *)buf;
	printf("blocking read: %s %s\n", n > 0 ? name_of(e->mask) : errname(errno),
	       n > 0 && e->len ? e->name : "-");
	pthread_join(t, NULL);
	unlink(f2);
	int ep = epoll_create1(0);
	struct epoll_event ev = {.events = EPOLLIN};
	epoll_ctl(ep, EPOLL_CTL_ADD, bl, &ev);
	pthread_create(&t, NULL, make_file_later, NULL);
	printf("epoll_wait: %d\n", epoll_wait(ep, &ev, 1, 10000));
	struct pollfd p = {.fd = bl, .events = POLLIN};
	printf("poll: %d\n", poll(&p, 1, 0));
	pthread_join(t, NULL);
	close(ep);
	close(bl);
	unlink(f2);
	(void)wd2;
	close(in);
	show("rmdir", rmdir(dir));
	return 0;
}
