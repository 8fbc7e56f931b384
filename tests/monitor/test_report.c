/* Crash reports of real crashing programs: headline, marked instruction, top frame with
 * file:line, backtrace, exit status, SUMMARY/DEDUP_TOKEN and the JSON report. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "e2e_util.h"

#define CRASH SBX_BUILD_DIR "/samples/crash-"

struct crash {
	const char *kind, *headline, *func;
	int status;
	const char *insn; /* text of the marked instruction, where it is known */
};

static const struct crash crashes[] = {
    {"null-read", "SIGSEGV: read of unmapped address 0x0 (null pointer)", "do_null_read", 139,
     NULL},
    {"null-write", "SIGSEGV: write to unmapped address 0x0 (null pointer)", "do_null_write", 139,
     "mov "},
    {"ro-write", "the page is read-only", "do_ro_write", 139, NULL},
    {"exec-data", "SIGSEGV: jump into non-executable memory", NULL, 139, NULL},
    {"stack-overflow", "SIGSEGV: stack overflow", "do_stack_overflow", 139, NULL},
    {"div-zero", "SIGFPE: integer divide by zero", "do_div_zero", 136, "div "},
    {"ud2", "SIGILL: illegal instruction", "do_ud2", 132, "ud2"},
    {"int3", "SIGTRAP: breakpoint trap", "do_int3", 133, NULL},
    {"abort", "SIGABRT", NULL, 134, NULL},
    {"assert", "SIGABRT", NULL, 134, NULL},
    {"garbage-jump", "SIGSEGV: jump into unmapped memory at 0x1234567890", NULL, 139, NULL},
};

#define slurp e2e_slurp

/* The source line marked CRASH-LINE for a kind. */
static int crash_line(const char *kind)
{
	char cmd[512];
	int st;
	snprintf(cmd, sizeof(cmd),
		 "grep -n 'CRASH-LINE.*/\\* %s \\*/' %s/samples/crash/crash.c | cut -d: -f1", kind,
		 SBX_SOURCE_DIR);
	char *out = slurp(cmd, &st);
	int line = atoi(out);
	free(out);
	return line;
}

#define need_kvm e2e_need_kvm

TestSuite(report, .timeout = 120);

Test(report, every_crash_kind_with_debug_info)
{
	need_kvm();
	static const char *const libcs[] = {"glibc", "musl"};
	for (int l = 0; l < 2; l++) {
		for (size_t i = 0; i < sizeof(crashes) / sizeof(crashes[0]); i++) {
			const struct crash *c = &crashes[i];
			char cmd[512], json[64];
			int st;
			snprintf(json, sizeof(json), "/tmp/sbx-report-%d.json", getpid());
			snprintf(cmd, sizeof(cmd),
				 SANDBOX " --report-json %s " CRASH "dbg-%s %s 2>&1 >/dev/null",
				 json, libcs[l], c->kind);
			char *out = slurp(cmd, &st);
			cr_expect_eq(st, c->status, "%s: status %d\n%s", cmd, st, out);
			cr_expect(strstr(out, c->headline), "%s: no '%s' in\n%s", cmd, c->headline,
				  out);
			if (strcmp(c->kind, "garbage-jump") != 0)
				cr_expect(strstr(out, "\n  => 0x"), "%s: no marked instruction\n%s",
					  cmd, out);
			if (c->insn) {
				/* The marked line shows the faulting instruction itself. */
				const char *m = strstr(out, "\n  => 0x");
				const char *eol = m ? strchr(m + 1, '\n') : NULL;
				const char *hit = m ? strstr(m, c->insn) : NULL;
				cr_expect(hit && (!eol || hit < eol),
					  "%s: marked line lacks '%s'\n%s", cmd, c->insn, out);
			}
			cr_expect(strstr(out, "SUMMARY: sandbox: SIG") &&
				      strstr(out, "DEDUP_TOKEN: SIG"),
				  "%s", out);
			if (c->func) {
				char want[160];
				snprintf(want, sizeof(want), "in %s+0x", c->func);
				cr_expect(strstr(out, want), "%s: no '%s'\n%s", cmd, want, out);
				snprintf(want, sizeof(want), "(crash.c:%d)", crash_line(c->kind));
				cr_expect(strstr(out, want), "%s: no '%s'\n%s", cmd, want, out);
				/* The backtrace names the callers (a recursion fills it first). */
				if (strcmp(c->kind, "stack-overflow") != 0)
					cr_expect(strstr(out, "in level2+0x") &&
						      strstr(out, "in run_case+0x") &&
						      strstr(out, "in main+0x"),
						  "%s: callers missing\n%s", cmd, out);
				else
					cr_expect(strstr(out, "more frames not shown"), "%s", out);
			}
			json_error_t err;
			json_t *j = json_load_file(json, 0, &err);
			cr_expect_not_null(j, "%s: JSON report unreadable: %s", cmd, err.text);
			if (j) {
				cr_expect(json_is_string(json_object_get(j, "summary")));
				cr_expect(json_array_size(json_object_get(j, "backtrace")) >= 1);
				cr_expect_eq(
				    json_integer_value(json_object_get(j, "signal_number")),
				    c->status - 128);
				json_decref(j);
			}
			unlink(json);
			free(out);
		}
	}
}

/* A recursion to a stack overflow: the text folds the repeated frames into one line, the JSON
 * keeps each frame. */
Test(report, repeated_frames_are_folded_in_the_text_only)
{
	need_kvm();
	char cmd[512], json[64];
	int st;
	snprintf(json, sizeof(json), "/tmp/sbx-report-fold-%d.json", getpid());
	snprintf(cmd, sizeof(cmd),
		 SANDBOX " --report-json %s " CRASH "dbg-glibc stack-overflow 2>&1 >/dev/null",
		 json);
	char *out = slurp(cmd, &st);
	cr_assert_eq(st, 139, "%s", out);
	const char *bt = strstr(out, "\nbacktrace:\n");
	cr_assert_not_null(bt, "%s", out);
	int lines = 0;
	for (const char *p = bt + 1; (p = strstr(p, "\n  #")) != NULL; p++)
		lines++;
	char want[96];
	snprintf(want, sizeof(want), " in do_stack_overflow+0x");
	const char *fold = strstr(bt, "\n  #1-#63 0x");
	cr_assert(fold, "no folded run of frames #1-#63\n%s", out);
	const char *eol = strchr(fold + 1, '\n');
	const char *times = strstr(fold, ", 63 times\n");
	cr_assert(times && times < eol && strstr(fold, want) < eol, "%.*s", (int)(eol - fold),
		  fold);
	cr_assert_eq(lines, 2, "%d frame lines, want #0 and the fold\n%s", lines, out);
	json_error_t err;
	json_t *j = json_load_file(json, 0, &err);
	cr_assert_not_null(j, "%s", err.text);
	json_t *frames = json_object_get(j, "backtrace");
	cr_assert_eq(json_array_size(frames), 64, "the JSON report keeps every frame");
	const char *pc1 = json_string_value(json_object_get(json_array_get(frames, 1), "pc"));
	for (size_t i = 2; i < 64; i++)
		cr_assert_str_eq(
		    json_string_value(json_object_get(json_array_get(frames, i), "pc")), pc1);
	json_decref(j);
	unlink(json);
	free(out);
}

Test(report, stripped_and_no_debug_builds_still_report)
{
	need_kvm();
	int st;
	free(e2e_expect_output(SANDBOX " " CRASH "stripped-glibc null-write 2>&1 >/dev/null", 139,
			       "stripped", "\n  => 0x", NULL));
	char *out = e2e_expect_output(SANDBOX " " CRASH "nodbg-musl div-zero 2>&1 >/dev/null", 136,
				      "in do_div_zero+0x", NULL);
	cr_expect(!strstr(out, "crash.c:"), "%s", out);
	free(out);
	/* Frame pointers alone give the callers too. */
	out = slurp(SANDBOX " " CRASH "fp-glibc null-read 2>&1 >/dev/null", &st);
	cr_expect(strstr(out, "in level2+0x") && strstr(out, "in main+0x"), "%s", out);
	free(out);
}

Test(report, separate_debug_info)
{
	need_kvm();
	char dbg[] = "/tmp/sbx-dbg-XXXXXX", cmd[512];
	int fd = mkstemp(dbg), st;
	cr_assert_geq(fd, 0);
	close(fd);
	/* Split one binary into a stripped program and its debug file, as distributions do. */
	snprintf(cmd, sizeof(cmd),
		 "objcopy --only-keep-debug %sdbg-glibc %s && strip -o %s.prog %sdbg-glibc", CRASH,
		 dbg, dbg, CRASH);
	char *out = slurp(cmd, &st);
	free(out);
	cr_assert_eq(st, 0);
	snprintf(cmd, sizeof(cmd), SANDBOX " --debug-file %s %s.prog ud2 2>&1 >/dev/null", dbg,
		 dbg);
	out = slurp(cmd, &st);
	cr_expect_eq(st, 132);
	char want[64];
	snprintf(want, sizeof(want), "(crash.c:%d)", crash_line("ud2"));
	cr_expect(strstr(out, want), "%s: no %s\n%s", cmd, want, out);
	free(out);
	unlink(dbg);
	snprintf(cmd, sizeof(cmd), "%s.prog", dbg);
	unlink(cmd);
}

Test(report, a_guest_that_wrecks_its_stack_still_gets_a_report)
{
	need_kvm();
	/* rsp and rbp point at garbage: the unwinder must stop cleanly, and the caller is frame
	 * #1. */
	free(e2e_expect_output(SANDBOX " " CRASH "dbg-glibc garbage-jump 2>&1 >/dev/null", 139,
			       "no code at 0x1234567890", "in do_garbage_jump+0x", NULL));
}

Test(report, gdb_reads_the_core_file)
{
	need_kvm();
	if (access("/usr/bin/gdb", X_OK) != 0)
		cr_skip_test("gdb is not installed (scripts/setup.sh installs it)");
	char core[64], cmd[512];
	int st;
	snprintf(core, sizeof(core), "/tmp/sbx-core-%d", getpid());
	snprintf(cmd, sizeof(cmd),
		 SANDBOX " --core %s " CRASH "dbg-glibc null-write 2>&1 >/dev/null", core);
	char *out = slurp(cmd, &st);
	cr_expect_eq(st, 139);
	free(out);
	snprintf(cmd, sizeof(cmd), "gdb -nx -batch -ex bt -ex 'p sink' %sdbg-glibc %s 2>&1", CRASH,
		 core);
	out = slurp(cmd, &st);
	cr_expect(strstr(out, "signal SIGSEGV"), "%s", out);
	cr_expect(strstr(out, "in do_null_write () at") && strstr(out, "in level2 (") &&
		      strstr(out, "in main ("),
		  "gdb's backtrace:\n%s", out);
	cr_expect(strstr(out, "$1 = 1"), "a global variable from the core:\n%s", out);
	free(out);
	unlink(core);
}

Test(report, a_guest_that_wrecks_its_tables_still_gets_a_report)
{
	need_kvm();
	static const char *const how[] = {"stack", "idt", "pagetables", "ist"};
	for (size_t i = 0; i < sizeof(how) / sizeof(how[0]); i++) {
		for (int l = 0; l < 2; l++) {
			char cmd[256];
			int st;
			snprintf(cmd, sizeof(cmd),
				 SANDBOX " " SBX_BUILD_DIR "/samples/wreck-%s %s 2>&1 >/dev/null",
				 l ? "musl" : "glibc", how[i]);
			char *out = slurp(cmd, &st);
			cr_expect_eq(st, 139, "%s: %d\n%s", cmd, st, out);
			cr_expect(strstr(out, "==sandbox==ERROR: SIGSEGV") &&
				      strstr(out, "SUMMARY:"),
				  "%s\n%s", cmd, out);
			free(out);
		}
	}
}
