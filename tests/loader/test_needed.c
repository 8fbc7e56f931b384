/* The DT_NEEDED resolver: on this machine's Debian binaries it finds what ldd finds; on crafted
 * hostile objects (loops, huge counts, bad string offsets, $ORIGIN escapes) it stays bounded
 * and says what is wrong. Crafted files live in a temporary directory that the resolver sees
 * as "/". */
#include <criterion/criterion.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "loader_test.h"

static int host_open(void *ctx, const char *path)
{
	(void)ctx;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	return fd < 0 ? -errno : fd;
}

static int has(const struct loader_needed *n, const char *path)
{
	for (size_t i = 0; i < n->npaths; i++)
		if (strcmp(n->paths[i], path) == 0)
			return 1;
	return 0;
}

static int resolve_host(const char *prog, struct loader_needed *n, char *err, size_t errlen)
{
	struct loader_needed_io io = {.open = host_open};
	int fd = open(prog, O_RDONLY | O_CLOEXEC);
	cr_assert_geq(fd, 0, "open %s", prog);
	int rc = loader_needed_resolve(prog, fd, &io, n, err, errlen);
	close(fd);
	return rc;
}

Test(needed, debian_ls)
{
	struct loader_needed n;
	char err[512] = "";
	cr_assert_eq(resolve_host("/usr/bin/ls", &n, err, sizeof(err)), 0, "%s", err);
	cr_expect_str_eq(n.paths[0], "/lib64/ld-linux-x86-64.so.2");
	cr_expect(has(&n, "/etc/ld.so.cache"));
	cr_expect(has(&n, "/lib/x86_64-linux-gnu/libc.so.6"));
	cr_expect(has(&n, "/lib/x86_64-linux-gnu/libselinux.so.1"));
	cr_expect(has(&n, "/lib/x86_64-linux-gnu/libpcre2-8.so.0"), "libselinux's own need");
	/* libc needs ld-linux-x86-64.so.2: that is the interpreter, not a second file. */
	cr_expect(!has(&n, "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"));
	cr_expect_eq(n.npaths, 5);
	cr_expect(!n.musl);
	loader_needed_free(&n);
}

Test(needed, debian_python3)
{
	struct loader_needed n;
	char err[512] = "";
	cr_assert_eq(resolve_host("/usr/bin/python3", &n, err, sizeof(err)), 0, "%s", err);
	const char *want[] = {"libm.so.6", "libz.so.1", "libexpat.so.1", "libc.so.6"};
	for (size_t i = 0; i < 4; i++) {
		char p[256];
		snprintf(p, sizeof(p), "/lib/x86_64-linux-gnu/%s", want[i]);
		cr_expect(has(&n, p), "%s", p);
	}
	cr_expect_eq(n.npaths, 6);
	loader_needed_free(&n);
}

Test(needed, static_program_needs_nothing)
{
	struct loader_needed n;
	char err[512] = "";
	cr_assert_eq(resolve_host(SBX_HELLO_GLIBC, &n, err, sizeof(err)), 0, "%s", err);
	cr_expect_eq(n.npaths, 0);
	loader_needed_free(&n);
}

Test(needed, real_cache_lookup)
{
	size_t len;
	uint8_t *c = test_read_file("/etc/ld.so.cache", &len);
	char out[256];
	cr_expect_eq(loader_ldcache_lookup(c, len, "libc.so.6", out, sizeof(out)), 0);
	cr_expect_str_eq(out, "/lib/x86_64-linux-gnu/libc.so.6");
	cr_expect_eq(loader_ldcache_lookup(c, len, "libnope.so.9", out, sizeof(out)), -ENOENT);
	cr_expect_eq(loader_ldcache_lookup(c, len, "libc.so.6", out, 4), -ENAMETOOLONG);
	/* Truncated anywhere: never a read past the end, malformed or not found. */
	for (size_t cut = 0; cut < len; cut += 97) {
		int rc = loader_ldcache_lookup(c, cut, "libc.so.6", out, sizeof(out));
		cr_expect(rc == -EINVAL || rc == -ENOENT || rc == 0, "cut %zu: %d", cut, rc);
	}
	c[20] = 0xff; /* nlibs far past the end */
	c[21] = 0xff;
	c[22] = 0xff;
	cr_expect_eq(loader_ldcache_lookup(c, len, "libc.so.6", out, sizeof(out)), -EINVAL);
	free(c);
}

/* ---- crafted objects, in a directory the resolver sees as "/" ---- */

static char root[64];

static void mk_root(void)
{
	snprintf(root, sizeof(root), "/tmp/sbx-needed-XXXXXX");
	cr_assert(mkdtemp(root));
}

static void rm_root(void)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
	cr_expect_eq(system(cmd), 0);
}

static int root_open(void *ctx, const char *path)
{
	(void)ctx;
	char full[4096];
	snprintf(full, sizeof(full), "%s%s", root, path);
	int fd = open(full, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	return fd < 0 ? -errno : fd;
}

struct craft {
	const char *interp;    /* NULL: none */
	const char *needed[8]; /* NULL-terminated */
	const char *runpath;   /* NULL: none */
	const char *rpath;     /* NULL: none */
	uint64_t extra_needed; /* this many more DT_NEEDED entries naming needed[0] */
	uint64_t bad_offset;   /* nonzero: the first DT_NEEDED's offset */
	uint16_t type;	       /* 0: ET_DYN */
};

/* One PT_LOAD over the whole file, PT_INTERP, PT_DYNAMIC; strings after the dynamic entries. */
static void write_elf(const char *guest_path, const struct craft *c)
{
	size_t ndyn = 3 + c->extra_needed + 2, off_dyn = 64 + 3 * sizeof(Elf64_Phdr);
	size_t off_str = off_dyn + (ndyn + 8) * sizeof(Elf64_Dyn);
	size_t cap = off_str + 4096;
	uint8_t *f = calloc(1, cap);
	char *str = (char *)f + off_str;
	size_t sl = 1, interp_off = 0;
	Elf64_Dyn *dv = (Elf64_Dyn *)(f + off_dyn);
	size_t nd = 0;

	if (c->interp) {
		interp_off = off_str + sl;
		strcpy(str + sl, c->interp);
		sl += strlen(c->interp) + 1;
	}
	for (size_t i = 0; c->needed[i]; i++) {
		dv[nd++] = (Elf64_Dyn){.d_tag = DT_NEEDED, .d_un.d_val = sl};
		if (i == 0 && c->bad_offset)
			dv[nd - 1].d_un.d_val = c->bad_offset;
		strcpy(str + sl, c->needed[i]);
		sl += strlen(c->needed[i]) + 1;
	}
	for (uint64_t i = 0; i < c->extra_needed; i++)
		dv[nd++] = dv[0];
	if (c->runpath) {
		dv[nd++] = (Elf64_Dyn){.d_tag = DT_RUNPATH, .d_un.d_val = sl};
		strcpy(str + sl, c->runpath);
		sl += strlen(c->runpath) + 1;
	}
	if (c->rpath) {
		dv[nd++] = (Elf64_Dyn){.d_tag = DT_RPATH, .d_un.d_val = sl};
		strcpy(str + sl, c->rpath);
		sl += strlen(c->rpath) + 1;
	}
	dv[nd++] = (Elf64_Dyn){.d_tag = DT_STRTAB, .d_un.d_ptr = off_str};
	dv[nd++] = (Elf64_Dyn){.d_tag = DT_STRSZ, .d_un.d_val = sl};
	dv[nd++] = (Elf64_Dyn){.d_tag = DT_NULL};
	size_t size = off_str + sl;

	Elf64_Ehdr *eh = (Elf64_Ehdr *)f;
	memcpy(eh->e_ident, ELFMAG, SELFMAG);
	eh->e_ident[EI_CLASS] = ELFCLASS64;
	eh->e_ident[EI_DATA] = ELFDATA2LSB;
	eh->e_ident[EI_VERSION] = EV_CURRENT;
	eh->e_type = c->type ? c->type : ET_DYN;
	eh->e_machine = EM_X86_64;
	eh->e_version = EV_CURRENT;
	eh->e_phoff = 64;
	eh->e_ehsize = 64;
	eh->e_phentsize = sizeof(Elf64_Phdr);
	eh->e_phnum = 3;
	Elf64_Phdr *ph = (Elf64_Phdr *)(f + 64);
	ph[0] = (Elf64_Phdr){.p_type = PT_LOAD, .p_flags = PF_R, .p_filesz = size, .p_memsz = size};
	ph[1] = (Elf64_Phdr){.p_type = PT_DYNAMIC,
			     .p_offset = off_dyn,
			     .p_vaddr = off_dyn,
			     .p_filesz = nd * sizeof(Elf64_Dyn)};
	ph[2] = (Elf64_Phdr){.p_type = c->interp ? PT_INTERP : PT_NOTE,
			     .p_offset = interp_off,
			     .p_filesz = c->interp ? strlen(c->interp) + 1 : 0};

	char full[4096], cmd[4200];
	snprintf(full, sizeof(full), "%s%s", root, guest_path);
	snprintf(cmd, sizeof(cmd), "mkdir -p \"$(dirname '%s')\"", full);
	cr_assert_eq(system(cmd), 0);
	FILE *out = fopen(full, "wb");
	cr_assert(out, "%s", full);
	cr_assert_eq(fwrite(f, 1, size, out), size);
	fclose(out);
	free(f);
}

static const char *const test_dirs[] = {"/lib", NULL};

static int resolve(const char *prog, struct loader_needed *n, char *err, size_t errlen)
{
	struct loader_needed_io io = {.open = root_open, .default_dirs = test_dirs};
	int fd = root_open(NULL, prog);
	cr_assert_geq(fd, 0, "open %s", prog);
	int rc = loader_needed_resolve(prog, fd, &io, n, err, errlen);
	close(fd);
	return rc;
}

#define LDSO "/lib/ld.so"

/* Writes the program prog as c says and resolves its closure, which must succeed, hold `want`
 * and only normalised paths. Returns whether $ORIGIN of the program was used. */
static int finds(const char *prog, const struct craft *c, const char *want)
{
	struct loader_needed n;
	char err[512] = "";
	write_elf(prog, c);
	cr_assert_eq(resolve(prog, &n, err, sizeof(err)), 0, "%s: %s", prog, err);
	cr_expect(has(&n, want), "%s: %s not found", prog, want);
	for (size_t i = 0; i < n.npaths; i++)
		cr_expect(!strstr(n.paths[i], "..") && !strstr(n.paths[i], "//"), "%s", n.paths[i]);
	int used = n.origin_used;
	loader_needed_free(&n);
	return used;
}

Test(needed, loop_is_visited_once, .init = mk_root, .fini = rm_root)
{
	struct loader_needed n;
	char err[512] = "";
	write_elf(LDSO, &(struct craft){.needed = {NULL}});
	write_elf("/bin/prog", &(struct craft){.interp = LDSO, .needed = {"liba.so", NULL}});
	write_elf("/lib/liba.so", &(struct craft){.needed = {"libb.so", NULL}});
	write_elf("/lib/libb.so", &(struct craft){.needed = {"liba.so", "libb.so", NULL}});
	cr_assert_eq(resolve("/bin/prog", &n, err, sizeof(err)), 0, "%s", err);
	cr_expect_eq(n.npaths, 3);
	cr_expect_str_eq(n.paths[0], LDSO);
	cr_expect_str_eq(n.paths[1], "/lib/liba.so");
	cr_expect_str_eq(n.paths[2], "/lib/libb.so");
	loader_needed_free(&n);
}

Test(needed, huge_counts_are_bounded, .init = mk_root, .fini = rm_root)
{
	struct loader_needed n;
	char err[512] = "";
	write_elf(LDSO, &(struct craft){.needed = {NULL}});
	write_elf("/bin/many", &(struct craft){.interp = LDSO,
					       .needed = {"liba.so", NULL},
					       .extra_needed = LOADER_DYN_MAX_NEEDED});
	cr_expect_eq(resolve("/bin/many", &n, err, sizeof(err)), -ENOEXEC);
	cr_expect(strstr(err, "1025 DT_NEEDED entries, more than 1024"), "%s", err);
	/* A chain longer than the closure may be. */
	char name[64], next[64];
	for (int i = 0; i <= LOADER_NEEDED_MAX; i++) {
		snprintf(name, sizeof(name), "/lib/l%d.so", i);
		snprintf(next, sizeof(next), "l%d.so", i + 1);
		write_elf(name, &(struct craft){.needed = {next, NULL}});
	}
	write_elf("/bin/chain", &(struct craft){.interp = LDSO, .needed = {"l0.so", NULL}});
	cr_expect_eq(resolve("/bin/chain", &n, err, sizeof(err)), -E2BIG);
	cr_expect(strstr(err, "needs more than 255 shared objects"), "%s", err);
	cr_expect_eq(n.npaths, 0, "nothing on failure");
}

Test(needed, bad_string_offset, .init = mk_root, .fini = rm_root)
{
	struct loader_needed n;
	char err[512] = "";
	write_elf(LDSO, &(struct craft){.needed = {NULL}});
	write_elf(
	    "/bin/prog",
	    &(struct craft){.interp = LDSO, .needed = {"liba.so", NULL}, .bad_offset = 0x7fffffff});
	cr_expect_eq(resolve("/bin/prog", &n, err, sizeof(err)), -ENOEXEC);
	cr_expect(strstr(err, "/bin/prog: DT_NEEDED string offset 0x7fffffff is past DT_STRSZ"),
		  "%s", err);
}

Test(needed, missing_library_named, .init = mk_root, .fini = rm_root)
{
	struct loader_needed n;
	char err[512] = "";
	write_elf(LDSO, &(struct craft){.needed = {NULL}});
	write_elf("/bin/prog", &(struct craft){.interp = LDSO, .needed = {"libgone.so.3", NULL}});
	cr_expect_eq(resolve("/bin/prog", &n, err, sizeof(err)), -ENOENT);
	cr_expect_str_eq(err, "libgone.so.3, needed by /bin/prog, is not in /lib: add --ro DIR for "
			      "the directory that holds it");
	/* A file of that name that is not a shared object does not count. */
	write_elf("/lib/libgone.so.3", &(struct craft){.type = ET_EXEC, .needed = {NULL}});
	cr_expect_eq(resolve("/bin/prog", &n, err, sizeof(err)), -ENOENT);
	cr_expect(strstr(err, "(a file there is not an x86-64 shared object)"), "%s", err);
	/* No interpreter at all. */
	write_elf("/bin/noint", &(struct craft){.interp = "/lib/none.so", .needed = {NULL}});
	cr_expect_eq(resolve("/bin/noint", &n, err, sizeof(err)), -ENOENT);
	cr_expect(strstr(err, "the interpreter /lib/none.so is not in"), "%s", err);
}

/* Where RUNPATH, RPATH and $ORIGIN lead. However many "..", a path stops at "/"; unknown
 * tokens are skipped, as ld.so skips them; a name with a slash is a path. */
Test(needed, origin_runpath_and_rpath, .init = mk_root, .fini = rm_root)
{
	static const struct {
		const char *prog, *needed, *runpath, *rpath, *want;
		int origin_used;
	} c[] = {
	    {"/opt/app/bin/app", "libapp.so", "/nowhere:$ORIGIN/../lib", NULL,
	     "/opt/app/lib/libapp.so", 1},
	    {"/opt/app/bin/app2", "libapp.so", NULL, "${ORIGIN}/../lib", "/opt/app/lib/libapp.so",
	     1},
	    {"/a/b/prog", "libesc.so", "$ORIGIN/../../../../../../../lib", NULL, "/lib/libesc.so",
	     1},
	    {"/a/b/prog2", "../../lib/libesc.so", "$EVIL/x", NULL, "/lib/libesc.so", 0},
	};
	write_elf(LDSO, &(struct craft){.needed = {NULL}});
	write_elf("/opt/app/lib/libapp.so", &(struct craft){.needed = {NULL}});
	write_elf("/lib/libesc.so", &(struct craft){.needed = {NULL}});
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		struct craft cr = {.interp = LDSO,
				   .needed = {c[i].needed, NULL},
				   .runpath = c[i].runpath,
				   .rpath = c[i].rpath};
		cr_expect_eq(finds(c[i].prog, &cr, c[i].want), c[i].origin_used, "%s", c[i].prog);
	}
}

Test(needed, musl_rules, .init = mk_root, .fini = rm_root)
{
	struct loader_needed n;
	char err[512] = "";
	write_elf("/lib/ld-musl-x86_64.so.1", &(struct craft){.needed = {NULL}});
	write_elf("/usr/local/lib/libq.so", &(struct craft){.needed = {"libc.so", NULL}});
	write_elf("/bin/m", &(struct craft){.interp = "/lib/ld-musl-x86_64.so.1",
					    .needed = {"libq.so", "libc.so", "libm.so", NULL}});
	struct loader_needed_io io = {.open = root_open};
	int fd = root_open(NULL, "/bin/m");
	int rc = loader_needed_resolve("/bin/m", fd, &io, &n, err, sizeof(err));
	close(fd);
	cr_assert_eq(rc, 0, "%s", err);
	cr_expect(n.musl);
	cr_expect_eq(n.npaths, 2, "libc.so and libm.so are the interpreter");
	cr_expect(has(&n, "/usr/local/lib/libq.so"));
	loader_needed_free(&n);
}

Test(needed, crafted_cache)
{
	char path[4096], out[256];
	size_t len;
	snprintf(path, sizeof(path), "%s/../needed/ld.so.cache", SBX_ELF_DATA_DIR);
	uint8_t *c = test_read_file(path, &len);
	cr_expect_eq(loader_ldcache_lookup(c, len, "libc.so.6", out, sizeof(out)), 0);
	cr_expect_str_eq(out, "/lib/x86_64-linux-gnu/libc.so.6", "the baseline entry, not hwcaps");
	cr_expect_eq(loader_ldcache_lookup(c, len, "libm.so.6", out, sizeof(out)), 0);
	cr_expect_eq(loader_ldcache_lookup(c, len, "libz.so.1", out, sizeof(out)), -ENOENT,
		     "a 32-bit entry is not an x86-64 one");
	free(c);
}

/* A new-format cache of the given keys (each with the value "/v/KEY"), key i's text at the
 * offset the entry names; keys[i] == NULL: an entry whose key is the buffer's last bytes,
 * "libc.so.6" with no NUL after it. */
static uint8_t *make_cache(const char *const *keys, size_t n, size_t *len)
{
	size_t cap = 48 + n * 24 + 4096, at = 48 + n * 24;
	uint8_t *c = calloc(1, cap);
	memcpy(c, "glibc-ld.so.cache1.1", 20);
	uint32_t nn = (uint32_t)n;
	memcpy(c + 20, &nn, 4);
	for (size_t i = 0; i < n; i++) {
		uint8_t *e = c + 48 + i * 24;
		uint32_t fl = 0x0303, key, val;
		memcpy(e, &fl, 4);
		if (!keys[i]) {
			key = (uint32_t)(cap - 9);
			memcpy(c + key, "libc.so.6", 9);
			val = key;
		} else {
			key = (uint32_t)at;
			at += (size_t)sprintf((char *)c + at, "%s", keys[i]) + 1;
			val = (uint32_t)at;
			at += (size_t)sprintf((char *)c + at, "/v/%s", keys[i]) + 1;
		}
		memcpy(e + 4, &key, 4);
		memcpy(e + 8, &val, 4);
	}
	*len = cap;
	return c;
}

/* A key is compared with the name and no further: one that runs to the end of the cache
 * without a NUL, or that only starts with the name, is not it. */
Test(needed, cache_keys_match_whole_and_terminated)
{
	const char *const keys[] = {NULL, "libc.so.6x", "libc.so", "libc.so.6"};
	size_t len;
	char out[256];
	uint8_t *c = make_cache(keys, 4, &len);
	cr_expect_eq(loader_ldcache_lookup(c, len, "libc.so.6", out, sizeof(out)), 0);
	cr_expect_str_eq(out, "/v/libc.so.6");
	cr_expect_eq(loader_ldcache_lookup(c, len, "libc.so", out, sizeof(out)), 0);
	cr_expect_str_eq(out, "/v/libc.so");
	cr_expect_eq(loader_ldcache_lookup(c, len, "libc.so.6x", out, sizeof(out)), 0);
	cr_expect_eq(loader_ldcache_lookup(c, len, "libc", out, sizeof(out)), -ENOENT);
	free(c);
	c = make_cache(keys, 1, &len);
	cr_expect_eq(loader_ldcache_lookup(c, len, "libc.so.6", out, sizeof(out)), -ENOENT);
	free(c);
}

/* A path too long to join is no path: never the file a cut-off prefix of it would name (ld.so's
 * open of the whole path fails). Here the whole name ends in /zzz... under libesc.so, which is
 * nothing; its first 3700 bytes, after a cwd of 600, normalise to /lib/libesc.so. */
Test(needed, a_path_too_long_is_not_cut, .init = mk_root, .fini = rm_root)
{
	char name[3901], cwd[602], err[512] = "";
	size_t o = (size_t)sprintf(name, "../lib/libesc.so");
	while (o < 3800)
		o += (size_t)sprintf(name + o, "/.");
	memset(name + o, 'z', sizeof(name) - 1 - o);
	name[o] = '/';
	name[sizeof(name) - 1] = 0;
	cwd[0] = '/';
	memset(cwd + 1, 'c', sizeof(cwd) - 2);
	cwd[sizeof(cwd) - 1] = 0;
	write_elf(LDSO, &(struct craft){.needed = {NULL}});
	write_elf("/lib/libesc.so", &(struct craft){.needed = {NULL}});
	write_elf("/bin/prog", &(struct craft){.interp = LDSO, .needed = {name, NULL}});
	struct loader_needed_io io = {.open = root_open, .default_dirs = test_dirs, .cwd = cwd};
	struct loader_needed n;
	int fd = root_open(NULL, "/bin/prog");
	cr_assert_geq(fd, 0);
	int rc = loader_needed_resolve("/bin/prog", fd, &io, &n, err, sizeof(err));
	close(fd);
	cr_expect_eq(rc, -ENOENT, "%.40s", err);
	if (rc == 0)
		loader_needed_free(&n);
}
