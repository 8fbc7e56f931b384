/* ".." as the kernel takes it: from where the path so far leads, not from its text. After
 * `link/..`, Linux is in the parent of the link's target; a lexical normalisation would be in
 * the link's own directory, which is another file (and another mount, for a link that leaves
 * its own). So each prefix that ends before a ".." and lies in a mount is resolved in the
 * guest's namespace first (policy_walk, following links), and the ".." taken from there. A
 * prefix outside every mount (a virtual directory, /dev, /proc) holds no link of the host and
 * is taken as written. */
#include <errno.h>
#include <string.h>

#include "policy.h"

static int is_dotdot(const char *s, const char *end)
{
	return end - s >= 2 && s[0] == '.' && s[1] == '.' && (end - s == 2 || s[2] == '/');
}

/* The next ".." component in [s, end), or end. */
static const char *next_dotdot(const char *s, const char *end)
{
	for (const char *c = s; c < end; c++)
		if ((c == s || c[-1] == '/') && is_dotdot(c, end))
			return c;
	return end;
}

int policy_has_dotdot(const char *path, size_t len)
{
	return next_dotdot(path, path + len) != path + len;
}

int policy_normalize_walked(const struct policy *p, const char *base, const char *path, size_t len,
			    char *out, size_t outlen)
{
	char acc[POLICY_PATH_MAX], walked[POLICY_PATH_MAX];
	const char *s = path, *end = path + len;
	if (len == 0)
		return -ENOENT;
	int r = policy_normalize(path[0] == '/' ? "/" : base, ".", 1, acc, sizeof(acc));
	while (r == 0 && s < end) {
		while (s < end && *s == '/')
			s++;
		const char *d = next_dotdot(s, end);
		if (d > s)
			r = policy_normalize(acc, s, (size_t)(d - s), walked, sizeof(walked));
		if (r == 0 && d > s)
			memcpy(acc, walked, strlen(walked) + 1);
		if (r < 0 || d == end)
			break;
		/* A mount that is a link in the guest (Debian's /bin): ".." is its target's parent,
		 * as after any link. */
		r = policy_follow_links(p, acc, sizeof(acc), 1);
		if (r < 0)
			break;
		struct policy_target t;
		policy_lookup(p, acc, &t);
		size_t al = strlen(acc);
		/* "/." keeps the last component from being taken as a name to create: a file
		 * before ".." is ENOTDIR, a missing one ENOENT, as on Linux. */
		if (t.kind == POLICY_MOUNT && al + 2 < sizeof(acc)) {
			memcpy(acc + al, "/.", 3);
			r = policy_walk(p, acc, POLICY_FOLLOW, walked, sizeof(walked));
			if (r == 0)
				memcpy(acc, walked, strlen(walked) + 1);
		} else if (t.kind == POLICY_MOUNT) {
			r = -ENAMETOOLONG;
		}
		if (r == 0)
			r = policy_normalize(acc, "..", 2, walked, sizeof(walked));
		if (r == 0)
			memcpy(acc, walked, strlen(walked) + 1);
		s = d + 2;
	}
	if (r < 0)
		return r;
	if (strlen(acc) >= outlen)
		return -ENAMETOOLONG;
	memcpy(out, acc, strlen(acc) + 1);
	return 0;
}
