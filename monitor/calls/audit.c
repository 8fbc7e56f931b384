/* --audit FILE: one JSON line per decision on a path (every operation with --audit-all): time,
 * call, guest path, resolved host path, decision, rule. Guest strings are escaped byte by byte,
 * so a hostile path cannot break the line or the JSON. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "calls.h"

void sbx_audit_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(f, "\\%c", *p);
		else if (*p < 0x20 || *p >= 0x7f)
			fprintf(f, "\\u%04x", *p);
		else
			fputc(*p, f);
	}
	fputc('"', f);
}

void sbx_audit_note(struct sbx_vm *vm, const char *gpath, const struct policy_target *t)
{
	struct sbx_audit *a = vm->audit;
	a->outside = t->kind == POLICY_NONE;
	if (a->outside)
		snprintf(a->outside_path, sizeof(a->outside_path), "%s", gpath);
	if (!vm->cfg.audit)
		return;
	a->valid = 1;
	snprintf(a->gpath, sizeof(a->gpath), "%s", gpath);
	a->host[0] = 0;
	switch (t->kind) {
	case POLICY_MOUNT:
		snprintf(a->rule, sizeof(a->rule), "%s mount %.200s", t->mount->rw ? "rw" : "ro",
			 t->mount->guest);
		if (t->mount->is_dir && strcmp(t->rel, ".") != 0)
			snprintf(a->host, sizeof(a->host), "%.2000s/%.2000s", t->mount->host,
				 t->rel);
		else
			snprintf(a->host, sizeof(a->host), "%.4000s", t->mount->host);
		break;
	case POLICY_VDIR:
		snprintf(a->rule, sizeof(a->rule), "virtual directory");
		break;
	case POLICY_NONE:
		snprintf(a->rule, sizeof(a->rule), "outside every mount");
		break;
	}
}

void sbx_audit_mount(struct sbx_vm *vm, const struct policy_target *t, const struct policy_mount *m)
{
	if (!vm->cfg.audit || !m || m == t->mount)
		return;
	snprintf(vm->audit->rule, sizeof(vm->audit->rule),
		 "%s mount %.120s, reached through %.120s", m->rw ? "rw" : "ro", m->guest,
		 t->mount->guest);
}

void sbx_audit_begin(FILE *f, const char *call)
{
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	fprintf(f,
		"{\"time\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ\",\"call\":", tm.tm_year + 1900,
		tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
	sbx_audit_string(f, call);
}

void sbx_audit_record(struct sbx_vm *vm, const struct sbx_slot *s, const char *name, int64_t ret)
{
	FILE *f = vm->cfg.audit;
	struct sbx_audit *a = vm->audit;
	if (!f || s->nr == SBX_CALL_TRACE)
		return;
	/* A denial is the policy saying no; other errors are the file system's own answers. */
	int deny = a->valid && (ret == -EROFS || ret == -EACCES || ret == -EPERM || ret == -EBUSY ||
				(ret == -ENOENT && strcmp(a->rule, "outside every mount") == 0) ||
				ret == -ENETUNREACH || ret == -EADDRNOTAVAIL); /* inet.c */
	if (!deny && !vm->cfg.audit_all) {
		a->valid = 0;
		return;
	}
	flockfile(f); /* one line, whole: the processes of a sandbox share the file */
	sbx_audit_begin(f, name ? name : "?");
	if (a->valid) {
		fputs(",\"guest_path\":", f);
		sbx_audit_string(f, a->gpath);
		fputs(",\"host_path\":", f);
		sbx_audit_string(f, a->host);
		fputs(",\"rule\":", f);
		sbx_audit_string(f, a->rule);
	}
	fprintf(f, ",\"decision\":\"%s\",\"result\":%lld", deny ? "deny" : "allow", (long long)ret);
	if (ret < 0 && ret > -4096) {
		fputs(",\"errno\":", f);
		sbx_audit_string(f, strerrorname_np((int)-ret) ? strerrorname_np((int)-ret) : "?");
	}
	fputs("}\n", f);
	fflush(f);
	funlockfile(f);
	a->valid = 0;
}
