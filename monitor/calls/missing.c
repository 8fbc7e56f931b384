/* What the program looked for outside every mount and did not find. A dynamic program's
 * default view holds what ld.so needs to start, not what the program opens later (dlopen'd
 * libraries, a runtime's own tree: Python's /usr/lib/python3.11): such a program fails with
 * its own message ("No module named 'encodings'", "libcrypto.so.3: cannot open shared object
 * file"), which does not say that the sandbox hid a file the host has. So the paths are
 * remembered during the run, and only after it, when the guest can no longer observe it, the
 * host is asked which of them exist; those are named with the flag that would show them. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "calls.h"

/* Trees a user would not mount from the host: the sandbox has its own /dev and /proc. */
static int host_specific(const char *g)
{
	static const char *const roots[] = {"/dev", "/proc", "/sys"};
	for (size_t i = 0; i < sizeof(roots) / sizeof(roots[0]); i++) {
		size_t n = strlen(roots[i]);
		if (strncmp(g, roots[i], n) == 0 && (g[n] == '/' || g[n] == 0))
			return 1;
	}
	return 0;
}

void sbx_missing_note(struct sbx_vm *vm, int64_t ret)
{
	if (ret == -ENOENT && !host_specific(vm->audit->outside_path))
		sbx_missing_add(vm, vm->audit->outside_path);
}

void sbx_missing_add(struct sbx_vm *vm, const char *g)
{
	struct sbx_audit *a = vm->audit;
	if (!a || a->nmissing >= SBX_MISSING_MAX)
		return;
	for (unsigned i = 0; i < a->nmissing; i++)
		if (strcmp(a->missing[i], g) == 0)
			return;
	char *c = strdup(g);
	if (c)
		a->missing[a->nmissing++] = c;
}

void sbx_missing_free(struct sbx_vm *vm)
{
	struct sbx_audit *a = vm->audit;
	for (unsigned i = 0; i < a->nmissing; i++)
		free(a->missing[i]);
	a->nmissing = 0;
}

/* A library first (a dlopen that failed names no path the user can act on), then the latest:
 * what a program looked for last is closest to why it failed. */
static int is_library(const char *g)
{
	const char *b = strrchr(g, '/');
	const char *so = strstr(b ? b : g, ".so");
	return so && (so[3] == 0 || so[3] == '.');
}

void sbx_missing_report(struct sbx_vm *vm, int failed)
{
	struct sbx_audit *a = vm->audit;
	if (!a || !a->nmissing || (!failed && !vm->cfg.verbose))
		return;
	char line[1024];
	size_t o = 0;
	unsigned shown = 0, more = 0;
	line[0] = 0;
	for (int lib = 1; lib >= 0; lib--) {
		for (unsigned i = a->nmissing; i-- > 0;) {
			struct stat st;
			if (is_library(a->missing[i]) != lib || stat(a->missing[i], &st) != 0)
				continue;
			int w = shown == 4 ? -1
					   : snprintf(line + o, sizeof(line) - o, "%s--ro %s",
						      shown ? ", " : "", a->missing[i]);
			if (w < 0 || (size_t)w >= sizeof(line) - o) {
				line[o] = 0;
				more++;
				continue;
			}
			o += (size_t)w;
			shown++;
		}
	}
	if (!shown)
		return;
	char rest[48] = "";
	if (more)
		snprintf(rest, sizeof(rest), " (and %u more)", more);
	sbx_logf(vm,
		 "%s: looked for files the host has but the sandbox does not show; to show them: "
		 "%s%s, or --ro a directory above them",
		 vm->cfg.name ? vm->cfg.name : vm->cfg.prog, line, rest);
}
