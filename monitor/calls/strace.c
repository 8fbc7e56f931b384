/* --strace: one strace-style line per guest syscall, printed after it returned. Arguments are
 * read from guest memory here, for display only; escaping keeps guest bytes off the terminal. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "calls.h"

/* Names and argument kinds (sbx_syscalls.h says what each letter prints) of every call. */
#define SBX_SYSCALL(nr, name, args, handler) [nr] = {#name, args},
static const struct {
	const char *name;
	const char *args;
} sbx_sys[SBX_MAX_SYSCALL] = {
#include "sbx_syscalls.h"
};
#undef SBX_SYSCALL
_Static_assert(SBX_SYSCALL_LAST < SBX_MAX_SYSCALL, "every syscall number fits the table");

const char *sbx_syscall_name(uint64_t nr)
{
	return nr < SBX_MAX_SYSCALL ? sbx_sys[nr].name : NULL;
}

const char *sbx_syscall_args(uint64_t nr)
{
	return sbx_syscall_name(nr) ? sbx_sys[nr].args : NULL;
}

static size_t put_escaped(char *out, size_t cap, const uint8_t *s, size_t n, int stop_at_nul)
{
	size_t o = 0;
	for (size_t i = 0; i < n && o + 5 < cap; i++) {
		uint8_t c = s[i];
		if (stop_at_nul && !c)
			break;
		if (c == '"' || c == '\\')
			o += (size_t)snprintf(out + o, cap - o, "\\%c", c);
		else if (c == '\n')
			o += (size_t)snprintf(out + o, cap - o, "\\n");
		else if (isprint(c))
			out[o++] = (char)c;
		else
			o += (size_t)snprintf(out + o, cap - o, "\\x%02x", c);
	}
	out[o] = 0;
	return o;
}

static void fmt_buf(struct sbx_vm *vm, char *out, size_t cap, uint64_t addr, uint64_t len,
		    int string)
{
	uint64_t show = len > 32 ? 32 : len;
	const uint8_t *p = string ? NULL : sbx_gptr(vm, addr, show);
	if (string) {
		/* A path: up to 256 bytes or the end of RAM, whichever comes first. */
		uint64_t n = 256;
		if (addr < vm->proc.mem.size && vm->proc.mem.size - addr < n)
			n = vm->proc.mem.size - addr;
		p = sbx_gptr(vm, addr, n);
		show = n;
	}
	if (!p) {
		snprintf(out, cap, "0x%llx", (unsigned long long)addr);
		return;
	}
	char esc[300];
	put_escaped(esc, sizeof(esc), p, show, string);
	snprintf(out, cap, "\"%s\"%s", esc, (!string && len > show) ? "..." : "");
}

void sbx_strace(struct sbx_vm *vm, uint64_t nr, int64_t ret, const uint64_t a[6])
{
	char line[1024], arg[400];
	const char *name = sbx_syscall_name(nr);
	const char *kinds = name ? sbx_syscall_args(nr) : "xxxxxx";
	size_t o = 0;
	if (name)
		o += (size_t)snprintf(line, sizeof(line), "%s(", name);
	else
		o += (size_t)snprintf(line, sizeof(line), "syscall_%llu(", (unsigned long long)nr);
	for (int i = 0; kinds[i] && i < 6 && o < sizeof(line); i++) {
		uint64_t v = a[i];
		switch (kinds[i]) {
		case 'd':
			snprintf(arg, sizeof(arg), "%lld", (long long)(int32_t)v);
			break;
		case 'D':
			if ((int32_t)v == SBX_AT_FDCWD)
				snprintf(arg, sizeof(arg), "AT_FDCWD");
			else
				snprintf(arg, sizeof(arg), "%d", (int32_t)v);
			break;
		case 'u':
			snprintf(arg, sizeof(arg), "%llu", (unsigned long long)v);
			break;
		case 's':
			fmt_buf(vm, arg, sizeof(arg), v, 0, 1);
			break;
		case 'w':
			fmt_buf(vm, arg, sizeof(arg), v, i < 5 ? a[i + 1] : 0, 0);
			break;
		case 'r':
			if (ret >= 0)
				fmt_buf(vm, arg, sizeof(arg), v, (uint64_t)ret, 0);
			else
				snprintf(arg, sizeof(arg), "0x%llx", (unsigned long long)v);
			break;
		case 'p':
			if (v)
				snprintf(arg, sizeof(arg), "0x%llx", (unsigned long long)v);
			else
				snprintf(arg, sizeof(arg), "NULL");
			break;
		default:
			snprintf(arg, sizeof(arg), "0x%llx", (unsigned long long)v);
		}
		o += (size_t)snprintf(line + o, sizeof(line) - o, "%s%s", i ? ", " : "", arg);
	}
	if (o >= sizeof(line))
		o = sizeof(line) - 1;
	if (nr == 60 || nr == 231)
		snprintf(line + o, sizeof(line) - o, ") = ?");
	else if (ret < 0 && ret > -4096)
		snprintf(line + o, sizeof(line) - o, ") = -1 %s (%s)",
			 strerrorname_np((int)-ret) ? strerrorname_np((int)-ret) : "E?",
			 strerror((int)-ret));
	else if (nr == 9 || nr == 12 || nr == 25)
		snprintf(line + o, sizeof(line) - o, ") = 0x%llx", (unsigned long long)ret);
	else
		snprintf(line + o, sizeof(line) - o, ") = %lld", (long long)ret);
	fprintf(vm->cfg.log, "[sandbox] %s\n", line);
}
