/* What a fuzzing run's end means (crash, timeout, out of memory), the artifacts and reports it
 * leaves, and crash buckets by the fault report's DEDUP_TOKEN. */
#include <errno.h>
#include <fcntl.h>
#include <nettle/sha1.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"

#define FUZZ_LOG_MAX (4 << 20)

enum fuzz_kind fuzz_classify(const struct sbx_exec_run *run)
{
	const struct sbx_result *r = &run->res;
	if (run->parked)
		return FUZZ_OK;
	if (r->end == SBX_END_LIMIT && r->status == SBX_STATUS_LIMIT_TIME)
		return FUZZ_TIMEOUT;
	if (run->oom)
		return FUZZ_OOM; /* whatever the program did once memory ran out */
	/* Anything else ends the input abnormally, a plain exit too, even exit(0): libFuzzer
	 * calls that a crash ("fuzz target exited"). */
	return FUZZ_CRASH;
}

const char *fuzz_kind_name(enum fuzz_kind k)
{
	return k == FUZZ_TIMEOUT ? "timeout" : k == FUZZ_OOM ? "oom" : "crash";
}

void fuzz_artifact_name(const char *prefix, const char *kind, const uint8_t *data, size_t size,
			char *out, size_t outlen)
{
	struct sha1_ctx c;
	uint8_t d[SHA1_DIGEST_SIZE];
	sha1_init(&c);
	sha1_update(&c, size, data);
	sha1_digest(&c, sizeof(d), d);
	char hex[2 * SHA1_DIGEST_SIZE + 1];
	for (int i = 0; i < SHA1_DIGEST_SIZE; i++)
		snprintf(hex + 2 * i, 3, "%02x", d[i]);
	snprintf(out, outlen, "%s%s-%s", prefix, kind, hex);
}

int fuzz_write_file(const char *path, const void *data, size_t size)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	const uint8_t *p = data;
	while (size) {
		ssize_t n = write(fd, p, size);
		if (n <= 0) {
			int e = n < 0 ? errno : EIO;
			close(fd);
			return -e;
		}
		p += n;
		size -= (size_t)n;
	}
	return close(fd) < 0 ? -errno : 0;
}

void fuzz_log_take(struct fuzz *fz, int show, FILE *copy)
{
	if (!fz->log)
		return;
	fflush(fz->log);
	struct stat st;
	int fd = fileno(fz->log);
	if (fstat(fd, &st) < 0 || st.st_size <= 0)
		return;
	/* The target writes here too (its stderr, append-only): at most FUZZ_LOG_MAX of it is
	 * shown and kept, whatever it wrote. */
	char b[4096];
	off_t at = 0, end = st.st_size < FUZZ_LOG_MAX ? st.st_size : FUZZ_LOG_MAX;
	ssize_t n;
	while (
	    (show || copy) && at < end &&
	    (n = pread(fd, b, (size_t)(end - at < (off_t)sizeof(b) ? end - at : (off_t)sizeof(b)),
		       at)) > 0) {
		if (show)
			fwrite(b, 1, (size_t)n, stderr);
		if (copy)
			fwrite(b, 1, (size_t)n, copy);
		at += n;
	}
	if ((show || copy) && st.st_size > end) {
		const char *cut = "sandbox-fuzz: [the rest of this input's output is cut]\n";
		if (show)
			fputs(cut, stderr);
		if (copy)
			fputs(cut, copy);
	}
	if (ftruncate(fd, 0) < 0)
		fz->log = NULL;
}

void fuzz_log_flush(struct fuzz *fz, int show)
{
	fuzz_log_take(fz, show, NULL);
}

void fuzz_save_report(struct fuzz *fz, const char *path, const struct sbx_exec_run *run)
{
	char p[4300];
	snprintf(p, sizeof(p), "%s.txt", path);
	FILE *out = fopen(p, "w");
	fuzz_log_take(fz, 1, out);
	if (out) {
		if (!run->res.reported)
			fprintf(out, "%s\n", run->res.reason);
		char cmd[8192];
		fuzz_repro_command(fz, path, cmd, sizeof(cmd));
		fprintf(out, "reproduce with: %s\n", cmd);
		fclose(out);
	}
	snprintf(p, sizeof(p), "%s.json", path);
	if (run->res.reported && rename(fz->json_tmp, p) == 0)
		return;
	/* No fault report (a timeout, an exit): a JSON of how the run ended. */
	out = fopen(p, "w");
	if (out) {
		fprintf(out, "{\"end\": %d, \"status\": %d, \"reason\": \"", run->res.end,
			run->res.status);
		for (const char *c = run->res.reason; *c; c++)
			fprintf(out, (*c == '"' || *c == '\\') ? "\\%c" : (*c < 32 ? "?" : "%c"),
				*c);
		fprintf(out, "\", \"oom\": %s}\n", run->oom ? "true" : "false");
		fclose(out);
	}
}

/* Quotes s for a POSIX shell where it needs it. */
static void shq(const char *s, char *out, size_t outlen)
{
	if (s[0] &&
	    strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:,+@%") ==
		strlen(s)) {
		snprintf(out, outlen, "%s", s);
		return;
	}
	size_t o = 0;
	if (o + 1 < outlen)
		out[o++] = '\'';
	for (; *s && o + 5 < outlen; s++) {
		if (*s == '\'') {
			memcpy(out + o, "'\\''", 4);
			o += 4;
		} else {
			out[o++] = *s;
		}
	}
	if (o + 1 < outlen)
		out[o++] = '\'';
	out[o] = 0;
}

void fuzz_repro_command(const struct fuzz *fz, const char *input, char *out, size_t outlen)
{
	size_t n = 0;
	char q[4300];
	n += (size_t)snprintf(out + n, outlen - n, "sandbox-fuzz");
	for (int i = 0; i < fz->nown && n < outlen; i++) {
		/* Fuzzing-campaign options do not belong to a reproduction (with their values,
		 * in either form). */
		const char *a = fz->own[i];
		if (!strcmp(a, "--max-total-time") || !strcmp(a, "--known-crashes")) {
			i++;
			continue;
		}
		if (!strcmp(a, "--ci") || !strncmp(a, "--max-total-time=", 17) ||
		    !strcmp(a, "--keep-going") || !strncmp(a, "--known-crashes=", 16))
			continue;
		shq(fz->own[i], q, sizeof(q));
		n += (size_t)snprintf(out + n, outlen - n, " %s", q);
	}
	if (fz->ci && n < outlen)
		n += (size_t)snprintf(out + n, outlen - n, " --deterministic");
	shq(fz->target, q, sizeof(q));
	if (n < outlen)
		n += (size_t)snprintf(out + n, outlen - n, " %s", q);
	shq(input, q, sizeof(q));
	if (n < outlen)
		snprintf(out + n, outlen - n, " %s", q);
}

int fuzz_token_in(char *const *list, size_t n, const char *token)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(list[i], token))
			return 1;
	return 0;
}

int fuzz_token_add(char ***list, size_t *n, const char *token)
{
	char **l = realloc(*list, (*n + 1) * sizeof(*l));
	if (!l)
		return -ENOMEM;
	*list = l;
	if (!(l[*n] = strdup(token)))
		return -ENOMEM;
	(*n)++;
	return 0;
}

int fuzz_known_load(struct fuzz *fz, char *err, size_t errlen)
{
	if (!fz->known_path)
		return 0;
	FILE *f = fopen(fz->known_path, "r");
	if (!f) {
		snprintf(err, errlen, "--known-crashes %s: %s", fz->known_path, strerror(errno));
		return -errno;
	}
	char line[1024];
	while (fgets(line, sizeof(line), f)) {
		char *s = line;
		line[strcspn(line, "\r\n")] = 0;
		if (!strncmp(s, "DEDUP_TOKEN:", 12))
			s += 12;
		s += strspn(s, " \t");
		if (!*s || *s == '#')
			continue;
		if (fuzz_token_add(&fz->known, &fz->nknown, s) < 0) {
			fclose(f);
			snprintf(err, errlen, "out of memory");
			return -ENOMEM;
		}
	}
	fclose(f);
	return 0;
}
