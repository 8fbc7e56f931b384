/* The flags the front ends share (cmd/cli/cli.c): the policy file first, then the flags over it
 * in order, a front end's own options from its table, stored or through its callback; the
 * parsed command line copied for another sandbox. */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "cli.h"

struct seen {
	const char *mine, *name;
	int flag;
	uint64_t size, ms, count;
};

enum { OWN_MINE };
static const struct sbx_cli_opt mine[] = {
    SBX_CLI_OWN("mine", required_argument, OWN_MINE),
    SBX_CLI_FLAG("flag", struct seen, flag),
    SBX_CLI_STRING("name", struct seen, name),
    SBX_CLI_SIZE("size", struct seen, size),
    SBX_CLI_DURATION("wait", struct seen, ms),
    SBX_CLI_COUNT("count", struct seen, count),
    {0},
};

static int own(void *ctx, int id, const char *arg, char *err, size_t errlen)
{
	struct seen *s = ctx;
	cr_assert_eq(id, OWN_MINE);
	if (strcmp(arg, "bad") == 0) {
		snprintf(err, errlen, "--mine bad: no");
		return -EINVAL;
	}
	s->mine = arg;
	return 0;
}

static const struct sbx_cli_front front = {mine, own, NULL};

static int parse(struct sbx_cli *c, struct seen *s, char **argv, char *err)
{
	int argc = 0;
	while (argv[argc])
		argc++;
	sbx_cli_init(c, "sandbox-test");
	memset(s, 0, sizeof(*s));
	return sbx_cli_parse(c, argc, argv, &front, s, err, 256);
}

/* parse accepts argv. */
static void parse_ok(struct sbx_cli *c, struct seen *s, char **argv)
{
	char err[256];
	cr_assert_eq(parse(c, s, argv, err), 0, "%s", err);
}

/* parse refuses argv with -EINVAL and says why: err is want, or holds it where !whole. */
static void expect_refused(char **argv, const char *want, int whole)
{
	struct sbx_cli c;
	struct seen s;
	char err[256];
	cr_assert_eq(parse(&c, &s, argv, err), -EINVAL, "%s %s", argv[1], argv[2]);
	if (whole)
		cr_assert_str_eq(err, want);
	else
		cr_assert(strstr(err, want), "%s", err);
	policy_free(&c.pol);
}

Test(cli, shared_and_own_flags)
{
	struct sbx_cli c;
	struct seen s;
	char *argv[] = {"sandbox-serve", "--env",     "A=1", "--mine", "x",  "--mem",
			"64M",		 "--timeout", "2s",  "--flag", "-v", "prog",
			"--mine",	 "arg",	      NULL};
	parse_ok(&c, &s, argv);
	cr_assert_str_eq(argv[optind], "prog", "parsing stops at the program");
	cr_assert_str_eq(s.mine, "x");
	cr_assert_eq(s.flag, 1);
	cr_assert_eq(c.pol.lim.mem, 64ull << 20);
	cr_assert_eq(c.pol.lim.wall_ms, 2000);
	cr_assert_eq(c.cfg.verbose, 1);
	cr_assert(policy_has_env(&c.pol, "A"));
	cr_assert(policy_has_env(&c.pol, "PATH"), "PATH is added by default");
	cr_assert_eq(c.cfg.mem_size, 64ull << 20, "the config takes --mem");
	cr_assert_str_eq(c.cfg.tool, "sandbox-test", "messages carry the front end's name");
	policy_free(&c.pol);
}

Test(cli, a_front_ends_table_stores_its_options)
{
	struct sbx_cli c;
	struct seen s;
	char *argv[] = {"t",  "--name",	 "n",  "--size",     "64K", "--wait",
			"2m", "--count", "12", "--no-stdin", "p",   NULL};
	parse_ok(&c, &s, argv);
	cr_assert_str_eq(s.name, "n");
	cr_assert_eq(s.size, 65536);
	cr_assert_eq(s.ms, 120000);
	cr_assert_eq(s.count, 12);
	cr_assert_eq(c.cfg.mem_size, 256ull << 20, "256 MiB without --mem");
	cr_assert_eq(c.cfg.stdin_fd, -1, "--no-stdin closes the guest's stdin");
	policy_free(&c.pol);
	char *bad_count[] = {"t", "--count", "4097", "p", NULL};
	expect_refused(bad_count, "--count 4097: expected a number from 1 to 4096", 1);
	char *bad_wait[] = {"t", "--wait", "0", "p", NULL};
	expect_refused(bad_wait, "--wait 0: expected a duration", 0);
	char *bad_pass[] = {"t", "--env-pass", "A=B", "p", NULL};
	expect_refused(bad_pass, "not a variable name", 0);
}

Test(cli, a_copy_has_a_policy_of_its_own)
{
	struct sbx_cli c, d;
	struct seen s;
	char err[256];
	char *argv[] = {"t",	    "--ro",  "/tmp:/data", "--env", "A=1",
			"--strace", "--tmp", "/scratch",   "p",	    NULL};
	cr_assert_eq(parse(&c, &s, argv, err), 0, "%s", err);
	cr_assert_eq(sbx_cli_copy(&d, &c, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(d.cfg.policy, &d.pol, "the copy's config runs under the copy's policy");
	cr_assert_eq(d.cfg.strace, 1);
	cr_assert_str_eq(d.cfg.tool, "sandbox-test");
	cr_assert_eq(d.pol.nmounts, 1);
	cr_assert_neq(d.pol.mounts[0].root_fd, c.pol.mounts[0].root_fd);
	cr_assert_neq((void *)d.pol.env, (void *)c.pol.env);
	cr_assert_eq(d.pol.ntmp, 1);
	policy_free(&c.pol);
	cr_assert(policy_has_env(&d.pol, "A"), "the copy outlives the original");
	policy_free(&d.pol);
}

Test(cli, errors_and_help)
{
	struct sbx_cli c;
	struct seen s;
	char err[256];
	char *bad_own[] = {"x/sandbox-serve", "--mine", "bad", "prog", NULL};
	expect_refused(bad_own, "--mine bad: no", 1);
	char *bad_size[] = {"sandbox-serve", "--mem", "12Q", "prog", NULL};
	expect_refused(bad_size, "--mem 12Q", 0);
	char *unknown[] = {"x/sandbox-serve", "--nope", "prog", NULL};
	expect_refused(unknown, "try 'sandbox-serve --help'", 1);
	char *help[] = {"sandbox-serve", "--help", NULL};
	cr_assert_eq(parse(&c, &s, help, err), 1);
	policy_free(&c.pol);
	char *again[] = {"sandbox-serve", "--env", "PATH=/x", "p", NULL};
	cr_assert_eq(parse(&c, &s, again, err), 0, "a second parse starts afresh");
	cr_assert_str_eq(c.pol.env[0], "PATH=/x");
	cr_assert_null(c.pol.env[1], "no default PATH over the given one");
	policy_free(&c.pol);
}
