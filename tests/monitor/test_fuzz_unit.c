/* sandbox-fuzz's pieces that need no VM: artifact names as libFuzzer makes them, outcome
 * classification, the reproduction command, --known-crashes files. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz.h"

Test(fuzz_unit, artifact_name_is_libfuzzers_sha1)
{
	char out[128];
	fuzz_artifact_name("./", "crash", (const uint8_t *)"abc", 3, out, sizeof(out));
	/* SHA-1("abc") */
	cr_assert_str_eq(out, "./crash-a9993e364706816aba3e25717850c26c9cd0d89d");
	fuzz_artifact_name("d/", "oom", (const uint8_t *)"", 0, out, sizeof(out));
	cr_assert_str_eq(out, "d/oom-da39a3ee5e6b4b0d3255bfef95601890afd80709");
}

Test(fuzz_unit, classify)
{
	struct sbx_exec_run r;
	memset(&r, 0, sizeof(r));
	r.parked = 1;
	cr_assert_eq(fuzz_classify(&r), FUZZ_OK);
	r.parked = 0;
	r.res.end = SBX_END_EXIT; /* exit(0) under the driver: "fuzz target exited" */
	cr_assert_eq(fuzz_classify(&r), FUZZ_CRASH);
	r.res.end = SBX_END_LIMIT;
	r.res.status = SBX_STATUS_LIMIT_TIME;
	cr_assert_eq(fuzz_classify(&r), FUZZ_TIMEOUT);
	r.res.end = SBX_END_SIGNAL;
	r.res.status = 134;
	r.oom = 1;
	cr_assert_eq(fuzz_classify(&r), FUZZ_OOM);
	cr_assert_str_eq(fuzz_kind_name(FUZZ_OOM), "oom");
	cr_assert_str_eq(fuzz_kind_name(FUZZ_TIMEOUT), "timeout");
}

Test(fuzz_unit, repro_command_quotes_and_drops_campaign_options)
{
	static struct fuzz fz;
	char *own[] = {"--ci", "--max-total-time=60", "--ro", "/data dir", "--keep-going"};
	fz.own = own;
	fz.nown = 5;
	fz.ci = 1;
	fz.target = "./t";
	char cmd[512];
	fuzz_repro_command(&fz, "crash-'x", cmd, sizeof(cmd));
	cr_assert_str_eq(cmd, "sandbox-fuzz --ro '/data dir' --deterministic ./t 'crash-'\\''x'");
}

Test(fuzz_unit, known_crashes_file)
{
	static struct fuzz fz;
	char path[] = "/tmp/sbx-known.XXXXXX";
	int fd = mkstemp(path);
	cr_assert(fd >= 0);
	const char *text = "# known\nDEDUP_TOKEN: SIGSEGV--a--b--c\n\n  SIGABRT--x\r\n";
	cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	fz.known_path = path;
	char err[256];
	cr_assert_eq(fuzz_known_load(&fz, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(fz.nknown, 2);
	cr_assert(fuzz_token_in(fz.known, fz.nknown, "SIGSEGV--a--b--c"));
	cr_assert(fuzz_token_in(fz.known, fz.nknown, "SIGABRT--x"));
	cr_assert(!fuzz_token_in(fz.known, fz.nknown, "SIGABRT"));
	unlink(path);
	fz.known_path = "/nonexistent/known";
	cr_assert_lt(fuzz_known_load(&fz, err, sizeof(err)), 0);
	cr_assert(strstr(err, "--known-crashes /nonexistent/known: No such file"), "%s", err);
}
