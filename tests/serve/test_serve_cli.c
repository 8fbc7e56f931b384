/* The flags sandbox-run and sandbox-serve share (monitor/cli.c): the policy file first, then the
 * flags over it in order, a front end's own options through its callback. */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "cli.h"

enum { OPT_MINE = SBX_OPT_FRONT, OPT_FLAG };
static const struct option mine[] = {
    {"mine", required_argument, 0, OPT_MINE},
    {"flag", no_argument, 0, OPT_FLAG},
    {0, 0, 0, 0},
};

struct seen {
	const char *mine;
	int flag;
};

static int front(void *ctx, int opt, const char *arg, char *err, size_t errlen)
{
	struct seen *s = ctx;
	if (opt == OPT_MINE) {
		if (strcmp(arg, "bad") == 0) {
			snprintf(err, errlen, "--mine bad: no");
			return -EINVAL;
		}
		s->mine = arg;
		return 0;
	}
	if (opt == OPT_FLAG) {
		s->flag = 1;
		return 0;
	}
	return -EINVAL;
}

static int parse(struct sbx_cli *c, struct seen *s, char **argv, char *err)
{
	int argc = 0;
	while (argv[argc])
		argc++;
	sbx_cli_init(c);
	memset(s, 0, sizeof(*s));
	return sbx_cli_parse(c, argc, argv, mine, front, s, err, 256);
}

Test(cli, shared_and_own_flags)
{
	struct sbx_cli c;
	struct seen s;
	char err[256];
	char *argv[] = {"sandbox-serve", "--env",     "A=1", "--mine", "x",  "--mem",
			"64M",		 "--timeout", "2s",  "--flag", "-v", "prog",
			"--mine",	 "arg",	      NULL};
	cr_assert_eq(parse(&c, &s, argv, err), 0, "%s", err);
	cr_assert_str_eq(argv[optind], "prog", "parsing stops at the program");
	cr_assert_str_eq(s.mine, "x");
	cr_assert_eq(s.flag, 1);
	cr_assert_eq(c.pol.lim.mem, 64ull << 20);
	cr_assert_eq(c.pol.lim.wall_ms, 2000);
	cr_assert_eq(c.cfg.verbose, 1);
	cr_assert(policy_has_env(&c.pol, "A"));
	cr_assert(policy_has_env(&c.pol, "PATH"), "PATH is added by default");
	policy_free(&c.pol);
}

Test(cli, errors_and_help)
{
	struct sbx_cli c;
	struct seen s;
	char err[256];
	char *bad_own[] = {"x/sandbox-serve", "--mine", "bad", "prog", NULL};
	cr_assert_eq(parse(&c, &s, bad_own, err), -EINVAL);
	cr_assert_str_eq(err, "--mine bad: no");
	policy_free(&c.pol);
	char *bad_size[] = {"sandbox-serve", "--mem", "12Q", "prog", NULL};
	cr_assert_eq(parse(&c, &s, bad_size, err), -EINVAL);
	cr_assert(strstr(err, "--mem 12Q"));
	policy_free(&c.pol);
	char *unknown[] = {"x/sandbox-serve", "--nope", "prog", NULL};
	cr_assert_eq(parse(&c, &s, unknown, err), -EINVAL);
	cr_assert_str_eq(err, "try 'sandbox-serve --help'");
	policy_free(&c.pol);
	char *help[] = {"sandbox-serve", "--help", NULL};
	cr_assert_eq(parse(&c, &s, help, err), 1);
	policy_free(&c.pol);
	char *again[] = {"sandbox-serve", "--env", "PATH=/x", "p", NULL};
	cr_assert_eq(parse(&c, &s, again, err), 0, "a second parse starts afresh");
	cr_assert_str_eq(c.pol.env[0], "PATH=/x");
	cr_assert_null(c.pol.env[1], "no default PATH over the given one");
	policy_free(&c.pol);
}
