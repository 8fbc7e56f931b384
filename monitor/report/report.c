/* The crash report, in the style of the sanitizers: a headline with the signal, the cause and
 * the place; registers; the code around RIP; a backtrace; SUMMARY and DEDUP_TOKEN lines for
 * tools that group crashes; the same as JSON with --report-json. Costs nothing until a fault. */
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "report.h"
#include "vm.h"

static const char *sig_name(int sig)
{
	const char *n = sigabbrev_np(sig);
	return n ? n : "UNKNOWN";
}

static void place(const struct sbx_frame *fr, char *out, size_t len)
{
	/* In a shared object: "libfoo.so.6+0x1234 (function+0x10, file.c:3)", as the
	 * sanitizers name module offsets; in the program, the function first as before. */
	if (fr->obj[0] && fr->func[0] && fr->file[0])
		snprintf(out, len, "%s+0x%llx (%s+0x%llx, %s:%d)", fr->obj,
			 (unsigned long long)fr->obj_off, fr->func, (unsigned long long)fr->off,
			 fr->file, fr->line);
	else if (fr->obj[0] && fr->func[0])
		snprintf(out, len, "%s+0x%llx (%s+0x%llx)", fr->obj,
			 (unsigned long long)fr->obj_off, fr->func, (unsigned long long)fr->off);
	else if (fr->obj[0])
		snprintf(out, len, "%s+0x%llx", fr->obj, (unsigned long long)fr->obj_off);
	else if (fr->func[0] && fr->file[0])
		snprintf(out, len, "%s+0x%llx (%s:%d)", fr->func, (unsigned long long)fr->off,
			 fr->file, fr->line);
	else if (fr->func[0])
		snprintf(out, len, "%s+0x%llx", fr->func, (unsigned long long)fr->off);
	else
		snprintf(out, len, "0x%llx", (unsigned long long)fr->pc);
}

static void rflags_text(uint64_t fl, char *out, size_t len)
{
	static const struct {
		int bit;
		const char *name;
	} bits[] = {{0, "CF"}, {2, "PF"},  {4, "AF"},  {6, "ZF"},  {7, "SF"},  {8, "TF"},
		    {9, "IF"}, {10, "DF"}, {11, "OF"}, {16, "RF"}, {18, "AC"}, {21, "ID"}};
	size_t o = 0;
	out[0] = 0;
	for (size_t i = 0; i < sizeof(bits) / sizeof(bits[0]); i++)
		if (fl & (1ull << bits[i].bit))
			o += (size_t)snprintf(out + o, len - o, "%s%s", o ? " " : "", bits[i].name);
	snprintf(out + o, len - o, "%sIOPL=%llu", o ? " " : "",
		 (unsigned long long)((fl >> 12) & 3));
}

static const char *const reg_names[SBX_NREGS] = {"rax", "rdx", "rcx", "rbx", "rsi", "rdi",
						 "rbp", "rsp", "r8",  "r9",  "r10", "r11",
						 "r12", "r13", "r14", "r15", "rip"};
/* Printed in the familiar order. */
static const int reg_order[SBX_NREGS] = {SBX_R_RAX, SBX_R_RBX, SBX_R_RCX, SBX_R_RDX, SBX_R_RSI,
					 SBX_R_RDI, SBX_R_RBP, SBX_R_RSP, SBX_R_R8,  SBX_R_R9,
					 SBX_R_R10, SBX_R_R11, SBX_R_R12, SBX_R_R13, SBX_R_R14,
					 SBX_R_R15, SBX_R_RIP};

/* Frames that say how a signal was raised, not where the bug is: the C library's raise and
 * abort, and a sanitizer's runtime between its report and abort(), its report entry points
 * included (__asan_report_load8: ASan's own stack starts at the instrumented function); its
 * interceptors, such as __asan_memcpy, stay, as in ASan's own DEDUP_TOKEN. */
static int machinery(const char *fn)
{
	static const char *const exact[] = {"raise", "abort", "gsignal", "pthread_kill"};
	static const char *const prefix[] = {
	    "__pthread_kill", "_ZN11__sanitizer", "_ZN6__asan",	    "_ZN7__ubsan",
	    "_ZN6__lsan",     "_ZN6__msan",	  "_ZN6__tsan",	    "__sanitizer::",
	    "__asan::",	      "__ubsan::",	  "__asan_report_", "__ubsan_handle_"};
	for (size_t i = 0; i < sizeof(exact) / sizeof(exact[0]); i++)
		if (!strcmp(fn, exact[i]))
			return 1;
	for (size_t i = 0; i < sizeof(prefix) / sizeof(prefix[0]); i++)
		if (!strncmp(fn, prefix[i], strlen(prefix[i])))
			return 1;
	return 0;
}

static void dedup_token(const struct sbx_fault *f, const struct sbx_frame *fr, int n, char *out,
			size_t len)
{
	size_t o = (size_t)snprintf(out, len, "SIG%s", sig_name(f->signal));
	for (int i = 0, k = 0; i < n && k < 3 && o < len; i++) {
		if (!fr[i].func[0] || (k == 0 && machinery(fr[i].func)))
			continue;
		o += (size_t)snprintf(out + o, len - o, "--%s", fr[i].func);
		k++;
	}
}

static void write_json(struct sbx_vm *vm, const struct sbx_fault *f, const char *headline,
		       const struct sbx_insn *ins, int nins, int at, const struct sbx_frame *fr,
		       int nfr, const char *summary, const char *token, int stripped)
{
	json_t *regs = json_object(), *code = json_array(), *bt = json_array();
	char hex[48];
	for (int i = 0; i < SBX_NREGS; i++) {
		snprintf(hex, sizeof(hex), "0x%llx", (unsigned long long)f->r[i]);
		json_object_set_new(regs, reg_names[i], json_string(hex));
	}
	snprintf(hex, sizeof(hex), "0x%llx", (unsigned long long)f->rflags);
	json_object_set_new(regs, "rflags", json_string(hex));
	snprintf(hex, sizeof(hex), "0x%llx", (unsigned long long)f->fs_base);
	json_object_set_new(regs, "fs_base", json_string(hex));
	for (int i = 0; i < nins; i++) {
		char bytes[64] = "";
		for (int b = 0, o = 0; b < ins[i].len; b++)
			o += snprintf(bytes + o, sizeof(bytes) - (size_t)o, "%s%02x", b ? " " : "",
				      ins[i].bytes[b]);
		snprintf(hex, sizeof(hex), "0x%llx", (unsigned long long)ins[i].addr);
		json_array_append_new(code, json_pack("{s:s, s:s, s:s, s:s, s:b}", "address", hex,
						      "bytes", bytes, "text", ins[i].text, "target",
						      ins[i].target, "faulting", i == at));
	}
	for (int i = 0; i < nfr; i++) {
		snprintf(hex, sizeof(hex), "0x%llx", (unsigned long long)fr[i].pc);
		json_array_append_new(bt, json_pack("{s:s, s:s, s:I, s:s, s:i, s:s, s:I}", "pc",
						    hex, "function", fr[i].func, "offset",
						    (json_int_t)fr[i].off, "file", fr[i].file,
						    "line", fr[i].line, "object", fr[i].obj,
						    "object_offset", (json_int_t)fr[i].obj_off));
	}
	char addr[32];
	snprintf(addr, sizeof(addr), "0x%llx", (unsigned long long)f->cr2);
	json_t *root = json_pack(
	    "{s:s, s:i, s:s, s:i, s:s?, s:s, s:o, s:o, s:o, s:s, s:s, s:b, s:s}", "signal",
	    sig_name(f->signal), "signal_number", f->signal, "cause", f->cause, "vector", f->vector,
	    "fault_address", f->vector == 14 ? addr : NULL, "headline", headline, "registers", regs,
	    "disassembly", code, "backtrace", bt, "summary", summary, "dedup_token", token,
	    "stripped", stripped, "registers_from",
	    f->from_cpu ? "vcpu" : "syscall frame (the guest's own account)");
	if (!root || json_dump_file(root, vm->cfg.report_json, JSON_INDENT(2)) < 0)
		sbx_logf(vm, "cannot write the JSON report to %s", vm->cfg.report_json);
	json_decref(root);
}

static void print_notes(FILE *o, struct sbx_symbols *syms, const struct sbx_fault *f)
{
	if (sbx_sym_stripped(syms))
		fprintf(o, "  (the program has no symbol table: it is stripped; --debug-file gives "
			   "separate debug info)\n");
	else if (!sbx_sym_has_lines(syms))
		fprintf(o, "  (no DWARF line information: build with -g for file:line)\n");
	if (!f->from_cpu)
		fprintf(o, "  (registers as the program's last syscall left them)\n");
}

static void print_registers(FILE *o, const struct sbx_fault *f)
{
	fprintf(o, "registers:\n");
	for (int i = 0; i < SBX_NREGS; i++)
		fprintf(o, "  %-3s 0x%016llx%s", reg_names[reg_order[i]],
			(unsigned long long)f->r[reg_order[i]], i % 4 == 3 ? "\n" : "");
	char fl[128];
	rflags_text(f->rflags, fl, sizeof(fl));
	fprintf(o, "\n  rflags 0x%llx [%s]\n  cs 0x%x ss 0x%x fs_base 0x%llx gs_base 0x%llx\n",
		(unsigned long long)f->rflags, fl, f->cs, f->ss, (unsigned long long)f->fs_base,
		(unsigned long long)f->gs_base);
	if (f->vector == 14 || f->vector == 13)
		fprintf(o, "  error code 0x%llx%s\n", (unsigned long long)f->err,
			f->vector == 14 ? ((f->err & 4) ? " (user)" : " (supervisor)") : "");
}

static void print_code(FILE *o, struct sbx_symbols *syms, uint64_t rip, const struct sbx_insn *ins,
		       int nins, int at)
{
	fprintf(o, "code around rip:\n");
	if (nins == 0)
		fprintf(o, "  (no code at 0x%llx: it is not in guest memory or does not decode)\n",
			(unsigned long long)rip);
	for (int i = 0; i < nins; i++) {
		char bytes[48] = "", label[200] = "";
		for (int b = 0, n = 0; b < ins[i].len && b < 12; b++)
			n += snprintf(bytes + n, sizeof(bytes) - (size_t)n, "%02x ",
				      ins[i].bytes[b]);
		struct sbx_frame fs;
		sbx_sym_lookup(syms, ins[i].addr, &fs);
		if (fs.func[0])
			snprintf(label, sizeof(label), "<%s+0x%llx>", fs.func,
				 (unsigned long long)fs.off);
		fprintf(o, "  %s 0x%llx %-24s %-30s %s%s%s\n", i == at ? "=>" : "  ",
			(unsigned long long)ins[i].addr, label, bytes, ins[i].text,
			ins[i].target[0] ? " " : "", ins[i].target);
	}
}

/* A program with threads: which one faulted, and where each of the others was. */
static void print_threads(FILE *o, struct sbx_vm *vm, struct sbx_symbols *syms,
			  const struct sbx_fault *f)
{
	if (!sbx_threads_count(vm))
		return;
	int faulted = vm->life.stop.thread_index;
	fprintf(o, "threads:\n");
	for (unsigned i = 0; i < sbx_threads_limit(vm); i++) {
		struct sbx_fault t;
		uint32_t tid;
		if (sbx_thread_regs(vm, i, &t, &tid) < 0)
			continue;
		/* In the kernel (a syscall, a wait): where the program called it from. */
		uint64_t rip = (int)i == faulted ? f->r[SBX_R_RIP] : t.r[SBX_R_RIP];
		int in_call = (int)i != faulted && !t.from_cpu;
		struct sbx_frame fr;
		char where[400];
		sbx_sym_lookup(syms, rip, &fr);
		place(&fr, where, sizeof(where));
		if ((int)i != faulted && t.outside) {
			fprintf(o, "     tid %u (vCPU %u): in the kernel, not in the program yet\n",
				tid, i);
			continue;
		}
		fprintf(o, "  %s tid %u (vCPU %u): rip 0x%llx in %s%s\n",
			(int)i == faulted ? "=>" : "  ", tid, i, (unsigned long long)rip, where,
			in_call ? " (in a syscall)" : "");
	}
}

static void print_backtrace(FILE *o, const struct sbx_frame *frames, int nfr, int truncated)
{
	fprintf(o, "backtrace:\n");
	for (int i = 0, j; i < nfr; i = j) {
		/* A run of identical frames (a deep recursion) is one line, as the sanitizers
		 * print it; the JSON report keeps every frame. */
		for (j = i + 1; j < nfr && frames[j].pc == frames[i].pc; j++)
			;
		char p[400];
		place(&frames[i], p, sizeof(p));
		if (j - i > 1)
			fprintf(o, "  #%d-#%d 0x%016llx in %s, %d times\n", i, j - 1,
				(unsigned long long)frames[i].pc, p, j - i);
		else
			fprintf(o, "  #%d 0x%016llx in %s\n", i, (unsigned long long)frames[i].pc,
				p);
	}
	if (truncated)
		fprintf(o, "  ... more frames not shown (%d at most)\n", SBX_MAX_FRAMES);
}

static void write_core(struct sbx_vm *vm, const struct sbx_fault *f)
{
	char err[300], path[POLICY_PATH_MAX + 16];
	/* The first process's core is the file named; another process's goes beside it with its
	 * pid, as the kernel's core_uses_pid names them, so that no crash overwrites another's. */
	if (vm->proc.pid != SBX_FIRST_PID)
		snprintf(path, sizeof(path), "%s.%u", vm->cfg.core_file, vm->proc.pid);
	else
		snprintf(path, sizeof(path), "%s", vm->cfg.core_file);
	if (sbx_write_core(vm, f, path, err, sizeof(err)) < 0)
		sbx_logf(vm, "%s", err);
	else
		fprintf(vm->cfg.log, "core written to %s (gdb %s %s)\n", path, vm->cfg.prog, path);
}

/* The run's reason becomes the headline, cut to fit; the summary and token are kept. */
static void note_reported(struct sbx_vm *vm, const char *headline, const char *summary,
			  const char *token)
{
	struct sbx_stop *st = &vm->life.stop;
	memcpy(st->reason, headline, sizeof(st->reason) - 1);
	st->reason[sizeof(st->reason) - 1] = 0;
	st->reported = 1;
	snprintf(st->dedup, sizeof(st->dedup), "%.*s", (int)sizeof(st->dedup) - 1, token);
	snprintf(st->summary, sizeof(st->summary), "%.*s", (int)sizeof(st->summary) - 1, summary);
}

void sbx_report(struct sbx_vm *vm, const struct sbx_fault *fault)
{
	FILE *o = vm->cfg.log;
	/* Program memory is read by its virtual addresses through the page tables the vCPU
	 * had; a fault told without special registers takes the last root seen. */
	struct sbx_fault fx = *fault;
	if (!fx.cr3)
		fx.cr3 = sbx_guest_root(vm);
	const struct sbx_fault *f = &fx;
	/* Absolute paths: libdw's search for debug info must not need the cwd (getcwd). */
	struct sbx_symbols *syms = sbx_sym_open(
	    vm->host.prog[0] && !vm->proc.other_image ? vm->host.prog : NULL,
	    vm->proc.image.img.bias, vm->host.debug_file[0] ? vm->host.debug_file : NULL);
	sbx_sym_add_objects(syms, vm, f->cr3);
	/* One per report: processes of a sandbox crash on host threads of their own, at once. */
	struct sbx_frame *frames = calloc(SBX_MAX_FRAMES, sizeof(*frames));
	int truncated = 0;
	int nfr = frames ? sbx_unwind(vm, syms, f, frames, SBX_MAX_FRAMES, &truncated) : 0;
	struct sbx_frame top;
	sbx_sym_lookup(syms, f->r[SBX_R_RIP], &top);

	char where[400], headline[700];
	place(&top, where, sizeof(where));
	snprintf(headline, sizeof(headline), "SIG%s: %s in %s", sig_name(f->signal), f->cause,
		 where);
	fprintf(o, "==sandbox==ERROR: %s\n", headline);
	/* Which of the sandbox's processes: its program, pid and arguments. */
	if (vm->proc.pid != SBX_FIRST_PID && vm->cfg.name)
		fprintf(o, "process: %s\n", vm->cfg.name);
	print_notes(o, syms, f);
	print_registers(o, f);
	struct sbx_insn ins[16];
	int at = -1, nins = sbx_disasm_around(vm, f->cr3, syms, f->r[SBX_R_RIP], ins, 16, &at);
	print_code(o, syms, f->r[SBX_R_RIP], ins, nins, at);
	print_backtrace(o, frames, nfr, truncated);
	print_threads(o, vm, syms, f);
	char summary[600], token[600];
	if (top.file[0])
		snprintf(summary, sizeof(summary), "SIG%s %s:%d in %s", sig_name(f->signal),
			 top.file, top.line, top.func[0] ? top.func : "??");
	else if (top.func[0] || !top.obj[0])
		snprintf(summary, sizeof(summary), "SIG%s in %s", sig_name(f->signal),
			 top.func[0] ? top.func : "??");
	else
		snprintf(summary, sizeof(summary), "SIG%s in %s+0x%llx", sig_name(f->signal),
			 top.obj, (unsigned long long)top.obj_off);
	dedup_token(f, frames, nfr, token, sizeof(token));
	fprintf(o, "SUMMARY: sandbox: %s\nDEDUP_TOKEN: %s\n", summary, token);
	fflush(o);
	if (vm->cfg.core_file)
		write_core(vm, f);
	if (vm->cfg.report_json)
		write_json(vm, f, headline, ins, nins, at, frames, nfr, summary, token,
			   sbx_sym_stripped(syms));
	note_reported(vm, headline, summary, token);
	sbx_sym_close(syms);
	free(frames);
}
