/* What a sandbox may touch: the mount table (host path shown at a guest path, read-only or
 * read-write), the working directory and the environment. Path resolution lives here too: a
 * guest path is normalised lexically, matched to a mount, and then opened beneath that mount's
 * root fd with openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS), so `..` and symlinks never
 * leave it; a symlink that would is followed in the guest's namespace instead (policy_walk),
 * and the path it leads to opened beneath its own mount. Nothing outside the table exists for
 * the guest. When one mount's host object lies
 * beneath another's root (a nested mount), the rule is the one of the mount the object the path
 * finally reaches belongs to (policy_resolve, nesting.c). */
#ifndef SBX_POLICY_H
#define SBX_POLICY_H

#include <stddef.h>
#include <stdio.h>
#include <stdint.h>

#define POLICY_PATH_MAX 4096

struct policy_mount {
	char *host;  /* host path as given */
	char *guest; /* normalised absolute guest path */
	int rw;	     /* writes allowed */
	int is_dir;  /* a directory (else a single file) */
	int root_fd; /* O_PATH fd: the directory, or a file mount's parent directory */
	char *leaf;  /* file mounts: the file's name inside root_fd */
	/* Nesting (nesting.c), set by policy_add_mount. */
	uint64_t dev, ino;    /* the mounted object itself */
	uint64_t mnt_id;      /* the host mount it is on (statx), 0 if unknown */
	struct policy_id *up; /* the object and its ancestors up to the host's "/" (by "..") */
	size_t nup;
	int holds_mounts; /* another mount's object may be reachable beneath this one's root:
			     each path is resolved to its final directory and decided there */
	/* The host path given was a symlink with this text, and the mount is at that same guest
	 * path: in the guest it is that link while another mount shows its target (links.c). */
	char *link;
};

/* A host object by identity. */
struct policy_id {
	uint64_t dev, ino;
};

/* An object the guest must never move, remove or replace: a mount's own object (`root`), or
 * a directory between an outer mount's root and a nested one's. */
struct policy_pin {
	struct policy_id id;
	int root;
};

/* Resource limits; 0 means "no limit" except where a default is documented. */
struct policy_limits {
	uint64_t mem;	     /* guest RAM in bytes (--mem), default 256 MiB */
	uint64_t cpu_ms;     /* guest CPU time (--cpu-time) */
	uint64_t wall_ms;    /* wall-clock time (--timeout) */
	uint64_t max_output; /* bytes written to stdout + stderr (--max-output) */
	uint64_t max_write;  /* bytes written to files (--max-write) */
	uint64_t max_files;  /* open guest handles at once (--max-files), default 1024 */
};

struct policy {
	struct policy_mount *mounts;
	size_t nmounts;
	char *cwd;  /* guest working directory (normalised), "/" by default */
	char **env; /* NULL-terminated guest environment */
	size_t nenv;
	struct policy_limits lim;
	int no_stdin; /* guest fd 0 is closed (--no-stdin) */
	/* no virtual /dev and /proc/self (--no-dev); by default the monitor shows them where no
	 * mount does (monitor/calls/vfs.c) */
	int no_dev;
	/* no default view of a dynamic program's libraries (--no-libs): the user's mounts must
	 * show ld.so and every library (monitor/sandbox/dynview.c) */
	int no_libs;
	char **tmp; /* guest paths of private writable temp dirs (--tmp), NULL-terminated */
	size_t ntmp;
	char **tmp_host; /* the host directories made for them (policy_make_tmp), removed by
			    policy_free */
	size_t ntmp_host;
	char *tmp_run;		 /* the run directory holding them (tmp.c) */
	int tmp_lock_fd;	 /* held while the sandbox lives (valid when tmp_run is set) */
	struct policy_pin *pins; /* sorted by id (nesting.c) */
	size_t npins;
};

/* limits.c: "4096", "64K", "256M", "1G" -> bytes; "500ms", "10s", "2m", "1h", "30" (seconds)
 * -> milliseconds. -EINVAL for anything else (negative, overflow, unknown unit). */
int policy_parse_size(const char *s, uint64_t *out);
int policy_parse_duration(const char *s, uint64_t *ms);
/* tmp.c: appends a --tmp guest path (normalised). */
int policy_add_tmp(struct policy *p, const char *guest, char *err, size_t errlen);
/* Creates a private host directory for each --tmp path and mounts it read-write
 * there; first removes those of sandboxes that died without removing theirs (SIGKILL). */
int policy_make_tmp(struct policy *p, char *err, size_t errlen);
/* Removes them (policy_free does; a front end's signal handler may, before re-raising). */
void policy_remove_tmp(struct policy *p);

/* Where a guest path lands: a mount and a path relative to its root fd ("." for the root), or
 * a virtual directory (the root or an ancestor of a mount point), or nothing. */
enum policy_kind { POLICY_NONE, POLICY_MOUNT, POLICY_VDIR };
struct policy_target {
	enum policy_kind kind;
	const struct policy_mount *mount;
	char rel[POLICY_PATH_MAX];
};

/* policy.c: a policy's life. */
void policy_init(struct policy *p);
void policy_free(struct policy *p);
/* A policy of its own for another sandbox with the same rules (sandbox-serve's instances):
 * the same host objects (every mount's root fd dup'ed, not opened again by path), environment,
 * limits, and --tmp paths, whose directories policy_make_tmp makes anew for the copy. src's
 * own --tmp directories must not be made yet (-EBUSY: the copy would share them). dst is
 * initialised here; on failure it is left empty, with err set. */
int policy_copy(struct policy *dst, const struct policy *src, char *err, size_t errlen);
/* mounts.c */
/* "HOST[:GUEST]"; GUEST defaults to HOST. Fails with a message if HOST cannot be opened. */
int policy_add_mount(struct policy *p, const char *spec, int rw, char *err, size_t errlen);
int policy_set_cwd(struct policy *p, const char *guest, char *err, size_t errlen);
/* json_load.c, json_write.c: reusable policies (docs/policy.md). Loading merges the file into p;
 * the caller applies command-line flags afterwards so that they override it. Errors name the key,
 * the line and the column. */
int policy_load_json(struct policy *p, const char *path, char *err, size_t errlen);
int policy_load_json_text(struct policy *p, const char *text, size_t len, const char *name,
			  char *err, size_t errlen);
/* The effective policy as JSON (--print-policy), in the same schema the loader reads. */
int policy_write_json(const struct policy *p, FILE *out);

/* env.c: is K set in the guest environment? */
int policy_has_env(const struct policy *p, const char *key);
/* "K=V" replaces an earlier K. */
int policy_set_env(struct policy *p, const char *kv, char *err, size_t errlen);
/* A name without '=', not empty. */
int policy_valid_env_name(const char *name);
/* Sets NAME to its value in the host environment (--env-pass); nothing when the host has no
 * NAME. -EINVAL for a bad name. */
int policy_pass_env(struct policy *p, const char *name, char *err, size_t errlen);

/* Joins `path` (len bytes, not NUL-terminated) to the absolute `base` unless it is absolute,
 * and removes ".", ".." and repeated slashes. -ENAMETOOLONG, -ENOENT for an empty path. */
int policy_normalize(const char *base, const char *path, size_t len, char *out, size_t outlen);
/* Classifies a normalised guest path. */
void policy_lookup(const struct policy *p, const char *gpath, struct policy_target *t);

/* Opening what a guest path names. A path is resolved on the host and the rule decided on the
 * object it finally reaches, whichever mount's path led there (docs/policy.md, "Nested
 * mounts"); the operation is then done relative to the directory fd that was decided on, so
 * nothing can change in between. On a mount that cannot reach another mount's object this
 * costs what a single openat2 does. -EXDEV: a symlink on the way leaves the mount (absolute, or
 * ".." past its root); the path is then resolved in the guest's namespace (policy_walk) and
 * looked up again, or policy_open_guest does both. */
enum policy_walk {
	POLICY_FOLLOW,	 /* the object, following a final symlink */
	POLICY_NOFOLLOW, /* the object, a final symlink itself */
	POLICY_PARENT,	 /* the directory holding the last component (calls that change entries) */
};
struct policy_node {
	int dirfd;	  /* O_PATH directory that `name` is opened in */
	int owned;	  /* dirfd is the node's own (policy_node_release closes it) */
	const char *name; /* beneath dirfd: one component, "." (dirfd itself), or on a mount
			     that holds no other mount's object, the whole relative path */
	const struct policy_mount *mount; /* whose rule applies: the object's, or for
					     POLICY_PARENT its directory's */
	int nofollow;			  /* policy_node_open never follows a final symlink */
	int guarded; /* the fast way: resolution refuses to cross a host mount (RESOLVE_NO_XDEV),
			and policy_node_open then answers -EXDEV so the caller retries in full */
	int pinned;  /* name is a mount's own object, or a directory on the way to a nested one:
			never moved, removed or replaced */
	char buf[256];
};
/* Checks a node before it is opened: 0 to go on (flags may be changed), or -errno. */
typedef int (*policy_check_fn)(const struct policy_node *n, int *flags, void *ctx);
/* Resolves a POLICY_MOUNT target (POLICY_FOLLOW or POLICY_NOFOLLOW), lets `check` (if any)
 * judge the node, and opens its object with flags. *mount is set whenever the path resolved,
 * even when check refused. Returns a host fd or -errno. */
int policy_open(const struct policy *p, const struct policy_target *t, enum policy_walk how,
		int flags, unsigned mode, policy_check_fn check, void *ctx,
		const struct policy_mount **mount);
/* The directory holding a target's last component, for calls that change entries. The mount
 * point itself (rel ".") and file mounts are -EBUSY. */
int policy_resolve_parent(const struct policy *p, const struct policy_target *t,
			  struct policy_node *n);
/* Opens the node's object beneath dirfd: openat2 with RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS.
 * Host fd or -errno. */
int policy_node_open(const struct policy_node *n, int flags, unsigned mode);
void policy_node_release(struct policy_node *n);
/* The fallback when policy_open or policy_resolve_parent answers -EXDEV: resolves a normalised
 * guest path's symlinks in the guest's namespace, as the kernel does in a mount namespace (an
 * absolute target from the guest's root, a relative one from its directory, ".." on the guest
 * path resolved so far, at most 40 links: -ELOOP after). `how` says whether a final symlink is
 * followed (POLICY_FOLLOW) or left (POLICY_NOFOLLOW, POLICY_PARENT). Writes the resolved guest
 * path to out, which the caller looks up and opens again: what it reaches there, and under
 * which mount's rule, is decided by that opening, never by this walk. -ENOENT when the path
 * leaves every mount (walk.c). */
int policy_walk(const struct policy *p, const char *gpath, enum policy_walk how, char *out,
		size_t outlen);
/* dotdot.c: does path have a ".." component? */
int policy_has_dotdot(const char *path, size_t len);
/* policy_normalize for a path with "..": a ".." after a prefix in a mount climbs from where
 * that prefix leads in the guest's namespace (symlinks followed), as the kernel does; a missing
 * prefix is -ENOENT and a file -ENOTDIR. 0 or -errno. */
int policy_normalize_walked(const struct policy *p, const char *base, const char *path, size_t len,
			    char *out, size_t outlen);
/* policy_lookup and policy_open of a normalised guest path, resolved again by policy_walk when
 * a symlink leaves its mount. For callers that want a file: a virtual directory is -EISDIR,
 * nothing -ENOENT. */
int policy_open_guest(const struct policy *p, const char *gpath, enum policy_walk how, int flags,
		      unsigned mode, policy_check_fn check, void *ctx,
		      const struct policy_mount **mount);
/* Child names of a virtual directory, for getdents: calls fn for each distinct name. */
void policy_vdir_children(const struct policy *p, const char *gpath,
			  void (*fn)(void *ctx, const char *name, size_t len), void *ctx);
/* links.c: a mount that is a symlink in the guest (Debian's /bin beside /usr). If gpath is one
 * now: the link's text, and the mount's index is returned; -ENOENT if not. */
int policy_link_of(const struct policy *p, const char *gpath, char *text, size_t len);
/* A normalised guest path through such links (the last component too with follow_last)
 * rewritten to continue at their targets: 0, -ELOOP, -ENAMETOOLONG. */
int policy_follow_links(const struct policy *p, char *g, size_t len, int follow_last);
/* The guest path under which a host file is visible, if any (for /proc/self/exe). */
int policy_guest_path_of(const struct policy *p, const char *host_realpath, char *out,
			 size_t outlen);

#endif
