/* The DT_NEEDED closure of a dynamic program, resolved the way its interpreter will resolve it
 * (glibc's elf/dl-load.c _dl_map_object, musl's ldso/dynlink.c load_library), so that the
 * sandbox can show exactly the files ld.so opens. Every object is untrusted: the closure is
 * bounded (LOADER_NEEDED_MAX objects), each file is visited once whatever loops its DT_NEEDED
 * entries form, and every path is normalised lexically before it is opened through the
 * caller's `open`, which alone decides what exists. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "loader_priv.h"

#define PATH_MAX_ 4096
#define MAX_DIRS 64		 /* search directories taken from one RPATH or RUNPATH */
#define MAX_CACHE (64u << 20)	 /* bytes of ld.so.cache read */
#define MAX_PATHFILE (64u << 10) /* bytes of musl's path file read */
#define LD_CACHE "/etc/ld.so.cache"
#define MUSL_PATHFILE "/etc/ld-musl-x86_64.path"
/* What $LIB and $PLATFORM are for Debian's x86-64 glibc. */
#define DST_LIB "lib/x86_64-linux-gnu"
#define DST_PLATFORM "x86_64"

static const char *const glibc_dirs[] = {
    "/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib", "/lib", NULL};
static const char *const musl_dirs[] = {"/lib", "/usr/local/lib", "/usr/lib", NULL};

struct obj {
	char *path;   /* as opened */
	char *origin; /* its directory, for $ORIGIN */
	char *name;   /* the DT_NEEDED name it was loaded for ("" for the program) */
	int parent;   /* index of the object that needed it first, -1 for the program */
	struct loader_dyninfo d;
};

struct res {
	const struct loader_needed_io *io;
	struct obj *objs;
	size_t nobjs;
	struct loader_needed *out;
	uint8_t *cache; /* ld.so.cache, or NULL */
	size_t cache_len;
	char **sysdirs; /* musl: from its path file, NULL-terminated */
	char *err;
	size_t errlen;
};

/* Lexical normalisation of an absolute path: "." and "" dropped, ".." removes one component
 * and stops at "/". -ENAMETOOLONG if it does not fit. */
static int norm(const char *in, char *out, size_t outlen)
{
	size_t o = 0;
	if (in[0] != '/' || outlen < 2)
		return -EINVAL;
	out[o++] = '/';
	out[o] = 0;
	for (const char *p = in; *p;) {
		while (*p == '/')
			p++;
		const char *e = strchrnul(p, '/');
		size_t n = (size_t)(e - p);
		if (n == 0 || (n == 1 && p[0] == '.')) {
			/* nothing */
		} else if (n == 2 && p[0] == '.' && p[1] == '.') {
			while (o > 1 && out[o - 1] != '/')
				o--;
			if (o > 1)
				o--;
			out[o] = 0;
		} else {
			if (o + (o > 1) + n + 1 > outlen)
				return -ENAMETOOLONG;
			if (o > 1)
				out[o++] = '/';
			memcpy(out + o, p, n);
			o += n;
			out[o] = 0;
		}
		p = e;
	}
	return 0;
}

static int append(char *buf, size_t len, size_t *o, const char *s, size_t n)
{
	if (*o + n + 1 > len)
		return -ENAMETOOLONG;
	memcpy(buf + *o, s, n);
	*o += n;
	buf[*o] = 0;
	return 0;
}

/* One RPATH/RUNPATH element with $ORIGIN, $LIB and $PLATFORM expanded, made absolute and
 * normalised. -EINVAL for an element ld.so would skip (an unknown $TOKEN). */
static int expand(const char *el, size_t n, const char *origin, const char *cwd, char *out,
		  size_t outlen)
{
	char buf[PATH_MAX_];
	size_t o = 0;
	int r = 0;

	if (n && el[0] != '/' && el[0] != '$')
		r = append(buf, sizeof(buf), &o, cwd, strlen(cwd)) ||
		    append(buf, sizeof(buf), &o, "/", 1);
	for (size_t i = 0; i < n && r == 0;) {
		if (el[i] != '$') {
			r = append(buf, sizeof(buf), &o, el + i, 1);
			i++;
			continue;
		}
		static const struct {
			const char *name;
			int which;
		} dst[] = {{"ORIGIN", 0}, {"LIB", 1}, {"PLATFORM", 2}};
		int which = -1;
		size_t used = 0;
		for (size_t k = 0; k < 3 && which < 0; k++) {
			size_t l = strlen(dst[k].name);
			if (n - i - 1 >= l && memcmp(el + i + 1, dst[k].name, l) == 0 &&
			    (i + 1 + l == n || !(el[i + 1 + l] == '_' ||
						 (el[i + 1 + l] >= 'A' && el[i + 1 + l] <= 'Z') ||
						 (el[i + 1 + l] >= 'a' && el[i + 1 + l] <= 'z') ||
						 (el[i + 1 + l] >= '0' && el[i + 1 + l] <= '9')))) {
				which = dst[k].which;
				used = 1 + l;
			} else if (n - i - 1 >= l + 2 && el[i + 1] == '{' &&
				   memcmp(el + i + 2, dst[k].name, l) == 0 &&
				   el[i + 2 + l] == '}') {
				which = dst[k].which;
				used = 3 + l;
			}
		}
		if (which < 0)
			return -EINVAL;
		const char *v = which == 0 ? origin : which == 1 ? DST_LIB : DST_PLATFORM;
		r = append(buf, sizeof(buf), &o, v, strlen(v));
		i += used;
	}
	if (r)
		return -ENAMETOOLONG;
	if (buf[0] != '/')
		return -EINVAL;
	return norm(buf, out, outlen);
}

static int add_path(struct res *r, const char *path)
{
	struct loader_needed *out = r->out;
	for (size_t i = 0; i < out->npaths; i++)
		if (strcmp(out->paths[i], path) == 0)
			return 0;
	char **n = realloc(out->paths, (out->npaths + 1) * sizeof(*n));
	if (!n)
		return -ENOMEM;
	out->paths = n;
	if (!(n[out->npaths] = strdup(path)))
		return -ENOMEM;
	out->npaths++;
	return 0;
}

/* a b c joined and normalised into out: -ENAMETOOLONG when the join does not fit, never a cut
 * path (which could name another file than ld.so's open of the whole one, which fails). */
static int join(const char *a, const char *b, const char *c, char *out, size_t outlen)
{
	char full[PATH_MAX_ + 256];
	int n = snprintf(full, sizeof(full), "%s%s%s", a, b, c);
	if (n < 0 || (size_t)n >= sizeof(full))
		return -ENAMETOOLONG;
	return norm(full, out, outlen);
}

/* Reads a whole small file opened through io. */
static int slurp(struct res *r, const char *path, size_t max, uint8_t **buf, size_t *len)
{
	int fd = r->io->open(r->io->ctx, path);
	if (fd < 0)
		return fd;
	uint8_t *b = malloc(max);
	size_t n = 0;
	ssize_t k = 0;
	while (b && n < max && (k = read(fd, b + n, max - n)) > 0)
		n += (size_t)k;
	close(fd);
	if (!b || k < 0 || n == max) {
		free(b);
		return b ? -EFBIG : -ENOMEM;
	}
	*buf = b;
	*len = n;
	return 0;
}

static int is_musl(const char *interp)
{
	const char *b = strrchr(interp, '/');
	return strncmp(b ? b + 1 : interp, "ld-musl-", 8) == 0;
}

/* musl answers these from libc itself, which is its interpreter. */
static int musl_builtin(const char *name)
{
	static const char *const reserved[] = {"c", "pthread", "rt", "m", "dl", "util", "xnet"};
	if (strncmp(name, "lib", 3) != 0)
		return 0;
	for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++) {
		size_t l = strlen(reserved[i]);
		if (strncmp(name + 3, reserved[i], l) == 0 && name[3 + l] == '.')
			return 1;
	}
	return 0;
}

/* Is the file at `path` an x86-64 ELF shared object? Then it is the object, parsed. */
static int try_open(struct res *r, const char *path, struct loader_dyninfo *d, int *malformed)
{
	int fd = r->io->open(r->io->ctx, path);
	if (fd < 0)
		return fd;
	char e[8];
	int rc = loader_dyninfo_fd(fd, path, d, e, sizeof(e));
	close(fd);
	if (rc == 0 && !d->is_dyn) {
		loader_dyninfo_free(d);
		rc = -ENOEXEC;
	}
	if (rc == -ENOEXEC)
		*malformed = 1;
	return rc;
}

/* Tries each element of a ':'-separated list whose $ORIGIN is `origin`. */
static int try_list(struct res *r, const char *list, const char *origin, const char *name,
		    char *found, size_t flen, struct loader_dyninfo *d, int *malformed)
{
	const char *p = list;
	for (unsigned k = 0; p && *p && k < MAX_DIRS; k++) {
		const char *e = strchrnul(p, ':');
		char dir[PATH_MAX_];
		if (e > p && expand(p, (size_t)(e - p), origin, r->io->cwd ? r->io->cwd : "/", dir,
				    sizeof(dir)) == 0) {
			if (join(dir, "/", name, found, flen) == 0 &&
			    try_open(r, found, d, malformed) == 0) {
				if (origin == r->objs[0].origin &&
				    (strstr(list, "$ORIGIN") || strstr(list, "${ORIGIN}")))
					r->out->origin_used = 1;
				return 0;
			}
		}
		p = *e ? e + 1 : e;
	}
	return -ENOENT;
}

static int try_dirs(struct res *r, const char *const *dirs, const char *name, char *found,
		    size_t flen, struct loader_dyninfo *d, int *malformed)
{
	for (size_t i = 0; dirs && dirs[i]; i++)
		if (join(dirs[i], "/", name, found, flen) == 0 &&
		    try_open(r, found, d, malformed) == 0)
			return 0;
	return -ENOENT;
}

static int search(struct res *r, size_t req, const char *name, char *found, size_t flen,
		  struct loader_dyninfo *d, int *malformed)
{
	const struct obj *o = &r->objs[req];
	const char *cwd = r->io->cwd ? r->io->cwd : "/";

	if (strchr(name, '/')) {
		int abs = name[0] == '/';
		if (join(abs ? "" : cwd, abs ? "" : "/", name, found, flen) < 0)
			return -ENOENT;
		return try_open(r, found, d, malformed);
	}
	if (r->out->musl) {
		/* musl: RPATH and RUNPATH alike, of the object and then of those that loaded it. */
		for (int i = (int)req; i >= 0; i = r->objs[i].parent) {
			const struct obj *p = &r->objs[i];
			if ((p->d.rpath && try_list(r, p->d.rpath, p->origin, name, found, flen, d,
						    malformed) == 0) ||
			    (p->d.runpath && try_list(r, p->d.runpath, p->origin, name, found, flen,
						      d, malformed) == 0))
				return 0;
		}
		const char *const *dirs = r->io->default_dirs ? r->io->default_dirs : musl_dirs;
		if (r->sysdirs)
			dirs = (const char *const *)r->sysdirs;
		return try_dirs(r, dirs, name, found, flen, d, malformed);
	}
	/* glibc: DT_RPATH of the object and its loaders, unless the object has DT_RUNPATH. */
	if (!o->d.runpath)
		for (int i = (int)req; i >= 0; i = r->objs[i].parent) {
			const struct obj *p = &r->objs[i];
			if (p->d.rpath && !p->d.runpath &&
			    try_list(r, p->d.rpath, p->origin, name, found, flen, d, malformed) ==
				0)
				return 0;
		}
	if (o->d.runpath &&
	    try_list(r, o->d.runpath, o->origin, name, found, flen, d, malformed) == 0)
		return 0;
	if (r->cache && loader_ldcache_lookup(r->cache, r->cache_len, name, found, flen) == 0) {
		char n2[PATH_MAX_];
		if (norm(found, n2, sizeof(n2)) == 0 && try_open(r, n2, d, malformed) == 0) {
			memcpy(found, n2, strlen(n2) + 1);
			return 0;
		}
	}
	return try_dirs(r, r->io->default_dirs ? r->io->default_dirs : glibc_dirs, name, found,
			flen, d, malformed);
}

/* Already loaded under this name (the name it was needed by, or its DT_SONAME)? */
static int known(const struct res *r, const char *name, const char *path)
{
	for (size_t i = 0; i < r->nobjs; i++) {
		const struct obj *o = &r->objs[i];
		if ((o->name && strcmp(o->name, name) == 0) ||
		    (o->d.soname && strcmp(o->d.soname, name) == 0) ||
		    (path && strcmp(o->path, path) == 0))
			return 1;
	}
	return 0;
}

static int push(struct res *r, const char *path, const char *name, int parent,
		struct loader_dyninfo *d)
{
	if (r->nobjs >= LOADER_NEEDED_MAX) {
		loader_dyninfo_free(d);
		return loader_fail(r->err, r->errlen, -E2BIG,
				   "%s needs more than %d shared objects", r->objs[0].path,
				   LOADER_NEEDED_MAX - 1);
	}
	struct obj *o = &r->objs[r->nobjs];
	memset(o, 0, sizeof(*o));
	o->d = *d;
	o->parent = parent;
	o->path = strdup(path);
	o->name = strdup(name);
	o->origin = strdup(path);
	r->nobjs++;
	if (!o->path || !o->name || !o->origin)
		return loader_fail(r->err, r->errlen, -ENOMEM, "out of memory");
	char *slash = strrchr(o->origin, '/');
	slash[slash == o->origin ? 1 : 0] = 0;
	return 0;
}

static void where(const struct res *r, const struct obj *o, char *buf, size_t len)
{
	const char *const *dirs = r->io->default_dirs ? r->io->default_dirs
				  : r->out->musl      ? musl_dirs
						      : glibc_dirs;
	size_t n = (size_t)snprintf(buf, len, "%s%s",
				    o->d.rpath || o->d.runpath ? "its RPATH/RUNPATH, " : "",
				    r->cache ? LD_CACHE ", " : "");
	for (size_t i = 0; dirs[i] && n < len; i++)
		n += (size_t)snprintf(buf + n, len - n, "%s%s", i ? ":" : "", dirs[i]);
}

static int resolve_all(struct res *r)
{
	for (size_t i = 0; i < r->nobjs; i++) {
		for (size_t k = 0; k < r->objs[i].d.nneeded; k++) {
			const char *name = r->objs[i].d.needed[k];
			char found[PATH_MAX_], looked[512];
			struct loader_dyninfo d;
			int malformed = 0;
			if (known(r, name, NULL) || (r->out->musl && musl_builtin(name)))
				continue;
			int rc = search(r, i, name, found, sizeof(found), &d, &malformed);
			if (rc == -ENOMEM)
				return loader_fail(r->err, r->errlen, rc, "out of memory");
			if (rc < 0) {
				where(r, &r->objs[i], looked, sizeof(looked));
				if (strchr(name, '/'))
					snprintf(looked, sizeof(looked), "that path");
				return loader_fail(
				    r->err, r->errlen, -ENOENT,
				    "%s, needed by %s, is not in %s%s: add --ro DIR for the "
				    "directory that holds it",
				    name, r->objs[i].path, looked,
				    malformed ? " (a file there is not an x86-64 shared object)"
					      : "");
			}
			if (known(r, name, found)) {
				loader_dyninfo_free(&d);
				continue;
			}
			if ((rc = push(r, found, name, (int)i, &d)) < 0)
				return rc;
			if (add_path(r, found) < 0)
				return loader_fail(r->err, r->errlen, -ENOMEM, "out of memory");
		}
	}
	return 0;
}

/* musl's path file: directories separated by ':' or newlines. */
static int read_musl_pathfile(struct res *r)
{
	uint8_t *b;
	size_t len, n = 0;
	if (slurp(r, MUSL_PATHFILE, MAX_PATHFILE, &b, &len) < 0)
		return 0;
	r->sysdirs = calloc(MAX_DIRS + 1, sizeof(char *));
	if (!r->sysdirs) {
		free(b);
		return -ENOMEM;
	}
	for (size_t i = 0; i < len && n < MAX_DIRS;) {
		size_t j = i;
		while (j < len && b[j] != ':' && b[j] != '\n' && b[j] != 0)
			j++;
		char tmp[PATH_MAX_], dir[PATH_MAX_];
		if (j > i && j - i < sizeof(tmp) && b[i] == '/') {
			memcpy(tmp, b + i, j - i);
			tmp[j - i] = 0;
			if (norm(tmp, dir, sizeof(dir)) == 0 && !(r->sysdirs[n] = strdup(dir))) {
				free(b);
				return -ENOMEM;
			}
			n += r->sysdirs[n] != NULL;
		}
		i = j + 1;
	}
	free(b);
	return add_path(r, MUSL_PATHFILE);
}

/* The interpreter is an object too: a DT_NEEDED of its name or soname (libc.so.6 needs
 * ld-linux-x86-64.so.2) is the interpreter already there, never a second file. */
static int add_interp(struct res *r)
{
	const char *interp = r->objs[0].d.interp;
	struct loader_dyninfo d;
	int malformed = 0;
	int rc = try_open(r, interp, &d, &malformed);
	if (rc == -ENOMEM)
		return loader_fail(r->err, r->errlen, rc, "out of memory");
	if (rc < 0)
		return loader_fail(r->err, r->errlen, -ENOENT, "the interpreter %s%s: add --ro %s",
				   interp,
				   malformed ? " is not an x86-64 shared object"
					     : " is not in the sandbox's view nor on the host",
				   interp);
	const char *base = strrchr(interp, '/') + 1;
	if ((rc = push(r, interp, base, 0, &d)) < 0)
		return rc;
	return add_path(r, interp) < 0 ? loader_fail(r->err, r->errlen, -ENOMEM, "out of memory")
				       : 0;
}

int loader_needed_resolve(const char *prog_path, int prog_fd, const struct loader_needed_io *io,
			  struct loader_needed *out, char *err, size_t errlen)
{
	struct res r = {.io = io, .out = out, .err = err, .errlen = errlen};
	struct loader_dyninfo d;
	char path[PATH_MAX_];
	int rc;

	memset(out, 0, sizeof(*out));
	if (!io || !io->open || !prog_path)
		return loader_fail(err, errlen, -EINVAL, "resolver called without a file system");
	if (norm(prog_path, path, sizeof(path)) < 0)
		return loader_fail(err, errlen, -EINVAL, "%s: not an absolute path", prog_path);
	rc = loader_dyninfo_fd(prog_fd, prog_path, &d, err, errlen);
	if (rc < 0)
		return rc;
	if (!d.interp) {
		loader_dyninfo_free(&d);
		return 0;
	}
	r.objs = calloc(LOADER_NEEDED_MAX, sizeof(*r.objs));
	if (!r.objs) {
		loader_dyninfo_free(&d);
		return loader_fail(err, errlen, -ENOMEM, "out of memory");
	}
	out->musl = is_musl(d.interp);
	if ((rc = push(&r, path, "", -1, &d)) < 0)
		goto out;
	rc = add_interp(&r);
	if (rc == 0 && !out->musl && slurp(&r, LD_CACHE, MAX_CACHE, &r.cache, &r.cache_len) == 0) {
		/* ld.so ignores a cache it cannot parse; so does the view. */
		char probe[8];
		if (loader_ldcache_lookup(r.cache, r.cache_len, "", probe, sizeof(probe)) ==
		    -EINVAL) {
			free(r.cache);
			r.cache = NULL;
		} else if (add_path(&r, LD_CACHE) < 0) {
			rc = loader_fail(err, errlen, -ENOMEM, "out of memory");
		}
	}
	if (rc == 0 && out->musl && read_musl_pathfile(&r) < 0)
		rc = loader_fail(err, errlen, -ENOMEM, "out of memory");
	if (rc < 0)
		goto out;
	rc = resolve_all(&r);
out:
	for (size_t i = 0; i < r.nobjs; i++) {
		free(r.objs[i].path);
		free(r.objs[i].name);
		free(r.objs[i].origin);
		loader_dyninfo_free(&r.objs[i].d);
	}
	free(r.objs);
	free(r.cache);
	for (size_t i = 0; r.sysdirs && r.sysdirs[i]; i++)
		free(r.sysdirs[i]);
	free(r.sysdirs);
	if (rc < 0)
		loader_needed_free(out);
	return rc;
}

void loader_needed_free(struct loader_needed *n)
{
	for (size_t i = 0; n->paths && i < n->npaths; i++)
		free(n->paths[i]);
	free(n->paths);
	memset(n, 0, sizeof(*n));
}
