/* Crash reports, core files and /proc/self/maps of a dynamic program whose crashes and frames
 * are inside shared objects: its own library (libsbxcrash.so, with DWARF) and libc. */
#include <criterion/criterion.h>
#include <elf.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "e2e_util.h"

#define DYN SBX_BUILD_DIR "/samples/crash-dyn-glibc"
#define LIB SBX_BUILD_DIR "/samples/libsbxcrash.so"

TestSuite(dynreport, .timeout = 120);

/* The backtrace line of frame #i. */
static const char *frame(const char *out, int i)
{
	char tag[16];
	snprintf(tag, sizeof(tag), "  #%d ", i);
	const char *p = strstr(out, tag);
	return p ? p : "";
}

static int frame_has(const char *out, int i, const char *what)
{
	const char *f = frame(out, i), *end = strchr(f, '\n');
	const char *hit = strstr(f, what);
	return hit && (!end || hit < end);
}

Test(dynreport, a_crash_in_a_library_names_the_library_and_its_line)
{
	e2e_need_kvm();
	char *out = e2e_expect_output(SANDBOX " " DYN " lib 2>&1 >/dev/null", 139,
				      "SIGSEGV: write to unmapped address 0x0 (null pointer) in "
				      "libsbxcrash.so+0x",
				      "(sbx_lib_store+0x0, crashlib.c:",
				      "SUMMARY: sandbox: SIGSEGV "
				      "crashlib.c:",
				      NULL);
	cr_expect(frame_has(out, 0, "libsbxcrash.so+0x"), "%s", out);
	cr_expect(frame_has(out, 1, "in main+0x") && frame_has(out, 1, "crashdyn.c:"), "%s", out);
	free(out);
}

Test(dynreport, the_backtrace_goes_through_libraries)
{
	e2e_need_kvm();
	/* The program's callback, called from its library, called from main. */
	char *out = e2e_expect_output(SANDBOX " " DYN " callback 2>&1 >/dev/null", 139,
				      "in store_through+0x0 (crashdyn.c:", NULL);
	cr_expect(frame_has(out, 1, "libsbxcrash.so+0x") && frame_has(out, 1, "(sbx_lib_call+0x") &&
		      frame_has(out, 1, "crashlib.c:"),
		  "%s", out);
	cr_expect(frame_has(out, 2, "in main+0x"), "%s", out);
	cr_expect(strstr(out, "DEDUP_TOKEN: SIGSEGV--store_through--sbx_lib_call--main"), "%s",
		  out);
	free(out);
	/* A comparator called by libc's qsort: libc's frames (its own CFI), then main. */
	out =
	    e2e_expect_output(SANDBOX " " DYN " qsort 2>&1 >/dev/null", 139, "in compare+0x", NULL);
	cr_expect(frame_has(out, 1, "in libc.so.6+0x"), "%s", out);
	int i = 2;
	while (i < 10 && frame_has(out, i, "in libc.so.6+0x"))
		i++;
	cr_expect(frame_has(out, i, "in main+0x"), "main after libc's frames:\n%s", out);
	free(out);
	/* A crash inside libc itself. */
	out = e2e_expect_output(SANDBOX " " DYN " strlen 2>&1 >/dev/null", 139,
				"read of unmapped address 0x0 (null pointer) in libc.so.6+0x",
				"SUMMARY: sandbox: SIGSEGV ", NULL);
	/* The summary names libc's place: by object and offset, or, where libc's debug info is
	 * found (a debuginfod cache a gdb run filled), by its function and line. */
	const char *sum = strstr(out, "SUMMARY: sandbox: SIGSEGV ");
	cr_expect(sum && (strncmp(sum, "SUMMARY: sandbox: SIGSEGV in libc.so.6+0x", 41) == 0 ||
			  strstr(sum, "strlen")),
		  "%s", out);
	cr_expect(frame_has(out, 1, "in main+0x"), "%s", out);
	free(out);
}

Test(dynreport, the_json_report_names_the_object)
{
	e2e_need_kvm();
	char json[64], cmd[512];
	snprintf(json, sizeof(json), "/tmp/sbx-dynreport-%d.json", getpid());
	snprintf(cmd, sizeof(cmd), SANDBOX " --report-json %s " DYN " lib >/dev/null 2>&1", json);
	int st;
	free(e2e_slurp(cmd, &st));
	cr_assert_eq(st, 139);
	json_t *root = json_load_file(json, 0, NULL);
	cr_assert(root);
	json_t *f0 = json_array_get(json_object_get(root, "backtrace"), 0);
	cr_expect_str_eq(json_string_value(json_object_get(f0, "object")), "libsbxcrash.so");
	cr_expect_str_eq(json_string_value(json_object_get(f0, "function")), "sbx_lib_store");
	cr_expect_gt(json_integer_value(json_object_get(f0, "object_offset")), 0);
	json_decref(root);
	unlink(json);
}

/* The names of a core file's NT_FILE note, '\n'-joined ("" without one). */
static char *nt_file_names(const char *core)
{
	int fd = open(core, O_RDONLY);
	cr_assert_geq(fd, 0, "%s", core);
	struct stat sb;
	fstat(fd, &sb);
	uint8_t *d = malloc((size_t)sb.st_size);
	cr_assert_eq(pread(fd, d, (size_t)sb.st_size, 0), sb.st_size);
	close(fd);
	const Elf64_Ehdr *eh = (const Elf64_Ehdr *)d;
	cr_assert_eq(eh->e_type, ET_CORE);
	char *names = calloc(1, 1);
	size_t len = 0;
	for (int i = 0; i < eh->e_phnum; i++) {
		const Elf64_Phdr *ph = (const Elf64_Phdr *)(d + eh->e_phoff) + i;
		if (ph->p_type != PT_NOTE)
			continue;
		for (uint64_t at = ph->p_offset; at + 12 <= ph->p_offset + ph->p_filesz;) {
			const Elf64_Nhdr *nh = (const Elf64_Nhdr *)(d + at);
			const uint8_t *desc = d + at + 12 + ((nh->n_namesz + 3) & ~3u);
			if (nh->n_type == NT_FILE) {
				uint64_t count = ((const uint64_t *)desc)[0];
				const char *s = (const char *)desc + 16 + count * 24;
				for (uint64_t k = 0; k < count; k++, s += strlen(s) + 1) {
					names = realloc(names, len + strlen(s) + 2);
					len += (size_t)sprintf(names + len, "%s\n", s);
				}
			}
			at += 12 + ((nh->n_namesz + 3) & ~3u) + ((nh->n_descsz + 3) & ~3u);
		}
	}
	free(d);
	return names;
}

Test(dynreport, the_core_file_lists_the_libraries_and_gdb_reads_it)
{
	e2e_need_kvm();
	char core[64], cmd[600];
	int st;
	snprintf(core, sizeof(core), "/tmp/sbx-dyncore-%d", getpid());
	snprintf(cmd, sizeof(cmd), SANDBOX " --core %s " DYN " callback >/dev/null 2>&1", core);
	free(e2e_slurp(cmd, &st));
	cr_assert_eq(st, 139);
	char *names = nt_file_names(core);
	cr_expect(strstr(names, LIB "\n"), "NT_FILE:\n%s", names);
	cr_expect(strstr(names, "/libc.so.6\n"), "NT_FILE:\n%s", names);
	cr_expect(strstr(names, DYN "\n"), "the program by its host path:\n%s", names);
	free(names);
	if (access("/usr/bin/gdb", X_OK) == 0) {
		snprintf(cmd, sizeof(cmd),
			 "gdb -nx -batch -ex bt -ex 'info sharedlibrary' %s %s 2>&1", DYN, core);
		char *out = e2e_slurp(cmd, &st);
		cr_expect(strstr(out, "in store_through (") || strstr(out, "store_through (p=0x0)"),
			  "%s", out);
		cr_expect(strstr(out, "in sbx_lib_call (") && strstr(out, "in main ("), "%s", out);
		cr_expect(strstr(out, LIB), "%s", out);
		cr_expect(!strstr(out, "Can't open file"), "%s", out);
		free(out);
	}
	unlink(core);
}

/* The sorted set of the file paths in a maps listing, each resolved on the host, without
 * the program's own (which the guest names by its path in the sandbox). */
static char *path_set(const char *cmd)
{
	char full[600];
	int st;
	snprintf(full, sizeof(full),
		 "%s > /tmp/sbx-maps-$$ && grep -v crash-dyn-glibc /tmp/sbx-maps-$$ | xargs -r "
		 "realpath | sort -u; r=$?; rm -f /tmp/sbx-maps-$$; exit $r",
		 cmd);
	char *out = e2e_slurp(full, &st);
	cr_assert_eq(st, 0, "%s: %s", cmd, out);
	return out;
}

Test(dynreport, maps_names_the_libraries_as_linux_does)
{
	e2e_need_kvm();
	char *native = path_set(DYN " maps");
	char *sandboxed = path_set(SANDBOX " " DYN " maps");
	cr_expect(strstr(sandboxed, "/libc.so.6\n") && strstr(sandboxed, "libsbxcrash.so\n"), "%s",
		  sandboxed);
	cr_expect_str_eq(sandboxed, native);
	free(native);
	free(sandboxed);
	char *out = e2e_expect_output(SANDBOX " " DYN " maps", 0, NULL);
	cr_expect(strstr(out, "crash-dyn-glibc\n"), "the program's own lines:\n%s", out);
	free(out);
}

Test(dynreport, a_wrecked_link_map_neither_hangs_nor_misleads_the_report)
{
	e2e_need_kvm();
	/* libc's entry names a FIFO (opening it would block), and the list loops back to its
	 * start: the report still comes, the library still named. */
	char dir[] = "/tmp/sbx-dynreport-XXXXXX", cmd[600];
	e2e_scratch(dir, "mkfifo fifo");
	snprintf(cmd, sizeof(cmd), SANDBOX " --ro %s:/d " DYN " hostile /d/fifo 2>&1 >/dev/null",
		 dir);
	char *out = e2e_expect_output(cmd, 139, "in libsbxcrash.so+0x",
				      "(sbx_lib_store+0x0, crashlib.c:", "in fifo+0x", NULL);
	cr_expect(frame_has(out, 1, "in main+0x"), "%s", out);
	free(out);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	int st;
	free(e2e_slurp(cmd, &st));
}
