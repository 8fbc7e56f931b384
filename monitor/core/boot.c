/* Creating and loading a sandbox: the boot sequence, top to bottom. */
#include <cpuid.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "vm.h"
#include <xxhash.h>

extern const uint8_t sbx_kernel_blob[], sbx_kernel_blob_end[];
extern const uint8_t sbx_vdso_blob[], sbx_vdso_blob_end[];

#define MIB (1ull << 20)
#define SBX_MEM_MIN (16 * MIB)
#define SBX_MEM_MAX (64ull << 30)
#define SBX_STACK_MAX (8 * MIB)
#define SBX_SPIN_US 50

/* An absolute name for a host file, so that nothing after confinement needs the cwd to find it
 * (libdw looks up debug info beside the program by its real path). "" when there is none. */
static void absolute_path(const char *path, char *out, size_t len)
{
	char real[PATH_MAX], cwd[PATH_MAX];
	out[0] = 0;
	if (!path || !path[0])
		return;
	if (realpath(path, real))
		snprintf(out, len, "%s", real);
	else if (path[0] == '/')
		snprintf(out, len, "%s", path);
	else if (getcwd(cwd, sizeof(cwd)) &&
		 (size_t)snprintf(out, len, "%.*s/%s", PATH_MAX, cwd, path) >= len)
		out[0] = 0;
}

/* Linux says it in /proc/self/status; umask() reads it only by setting it, which a thread
 * making a file at that moment (serve starts instances beside running ones) would see. */
static uint32_t host_umask(void)
{
	FILE *f = fopen("/proc/self/status", "re");
	char line[256];
	unsigned u = 0;
	int found = 0;
	while (f && !found && fgets(line, sizeof(line), f))
		found = sscanf(line, "Umask: %o", &u) == 1;
	if (f)
		fclose(f);
	if (!found) {
		mode_t m = umask(022);
		umask(m);
		u = m;
	}
	return u & 0777;
}

void sbx_host_facts(struct sbx_vm *vm)
{
	/* glibc looks for the time zone file on the first gmtime_r (the audit log's times)
	 * whatever zone it then uses: once, now, rather than after confinement. */
	tzset();
	vm->host.uid = (uint32_t)getuid();
	vm->host.gid = (uint32_t)getgid();
	vm->host.umask = host_umask();
	absolute_path(vm->cfg.prog, vm->host.prog, sizeof(vm->host.prog));
	absolute_path(vm->cfg.debug_file, vm->host.debug_file, sizeof(vm->host.debug_file));
}

/* host: the facts a fork's child takes from its parent (the confined monitor may not ask the
 * kernel again), or NULL to read them now. */
static int core_new(const struct sbx_config *cfg, const struct sbx_host *host,
		    const struct sbx_vm *lender, int how, struct sbx_vm **out, char *err,
		    size_t errlen)
{
	struct sbx_vm *vm = calloc(1, sizeof(*vm));
	if (!vm)
		return sbx_fail(err, errlen, -ENOMEM, "out of memory");
	vm->cfg = *cfg;
	if (!vm->cfg.log)
		vm->cfg.log = stderr;
	if (!vm->cfg.policy) {
		policy_init(&vm->own_policy);
		vm->cfg.policy = &vm->own_policy;
	}
	vm->proc.kvm.kvm_fd = vm->proc.kvm.vm_fd = vm->proc.vcpu.fd = vm->proc.mem.fd = -1;
	vm->proc.mem.lender_fd = -1;
	vm->life.stop.vector = -1;
	vm->proc.pid = vm->proc.pgid = vm->proc.sid = SBX_FIRST_PID;
	vm->proc.ppid = 1;
	vm->proc.start_ns = sbx_now_ns(CLOCK_MONOTONIC);
	pthread_mutex_init(&vm->proc.ring.lock, NULL);
	pthread_mutex_init(&vm->life.pause_lock, NULL);
	pthread_mutex_init(&vm->life.late_lock, NULL);
	pthread_mutex_init(&vm->proc.shmaps.lock, NULL);
	pthread_cond_init(&vm->life.pause_cond, NULL);
	sbx_threads_init(vm);
	if (host)
		vm->host = *host;
	else
		sbx_host_facts(vm);
	*out = vm;

	uint64_t mem = (cfg->mem_size + 2 * MIB - 1) & ~(2 * MIB - 1);
	if (mem < SBX_MEM_MIN || mem > SBX_MEM_MAX)
		return sbx_fail(err, errlen, -EINVAL,
				"guest memory %llu MiB is outside %llu MiB .. %llu GiB",
				(unsigned long long)(cfg->mem_size >> 20),
				(unsigned long long)(SBX_MEM_MIN >> 20),
				(unsigned long long)(SBX_MEM_MAX >> 30));
	int r = lender ? sbx_mem_lend(vm, lender, how, err, errlen)
		       : sbx_mem_create(vm, mem, err, errlen);
	if (r < 0)
		return r;
	snprintf(vm->proc.cwd, sizeof(vm->proc.cwd), "%s",
		 cfg->policy && cfg->policy->cwd ? cfg->policy->cwd : "/");
	return 0;
}

int sbx_core_new(const struct sbx_config *cfg, struct sbx_vm **out, char *err, size_t errlen)
{
	return core_new(cfg, NULL, NULL, 0, out, err, errlen);
}

int sbx_core_new_child(struct sbx_vm *parent, int lend, struct sbx_vm **out, char *err,
		       size_t errlen)
{
	return core_new(&parent->cfg, &parent->host, lend ? parent : NULL, lend, out, err, errlen);
}

static void *kvm_thread_main(void *arg)
{
	struct sbx_vm *vm = arg;
	char *e = vm->proc.kvm.err;
	size_t el = sizeof(vm->proc.kvm.err);
	int r;
	if ((r = sbx_kvm_open(vm, e, el)) == 0 && (r = sbx_kvm_create_vcpu(vm, e, el)) == 0)
		r = sbx_x86_set_cpuid(vm, e, el);
	vm->proc.kvm.result = r;
	return NULL;
}

int sbx_core_join_kvm(struct sbx_vm *vm, char *err, size_t errlen)
{
	if (vm->proc.kvm.thread_started) {
		pthread_join(vm->proc.kvm.thread, NULL);
		vm->proc.kvm.thread_started = 0;
		if (vm->proc.kvm.result < 0)
			snprintf(err, errlen, "%s", vm->proc.kvm.err);
	}
	return vm->proc.kvm.result;
}

void sbx_core_start_kvm(struct sbx_vm *vm)
{
	const struct sbx_config *cfg = &vm->cfg;
	vm->proc.kvm.is_pvm = sbx_kvm_is_pvm();
	/* Hardware KVM's EPT keeps translations PVM's shadow page tables would drop. */
	if (!vm->proc.kvm.is_pvm)
		vm->proc.threads.shootdown = 1;
	/* PVM runs only CPL3 natively; hardware KVM runs CPL0 natively and exits cheaply. */
	int cpl = cfg->cpl == SBX_CPL_0 ? 0 : cfg->cpl == SBX_CPL_3 ? 3 : -1;
	vm->proc.vcpu.cpl = cpl >= 0 ? cpl : vm->proc.kvm.is_pvm ? 3 : 0;
	sbx_vm_choose_cpus(vm);
	/* On another CPU than the loading that goes on here: Linux often starts a new thread on
	 * its creator's CPU, and the two then take turns (measured: the first guest instruction
	 * ~0.7 ms later for a static hello). The thread is made with its CPUs (glibc sets them
	 * before it runs): pinning itself once started measured 0.65 ms slower. glibc sets them on
	 * the new thread's id, which the allowlist refuses (pid 0 only): every caller makes its VM
	 * before it confines itself. */
	pthread_attr_t at;
	cpu_set_t others;
	int attr = pthread_attr_init(&at) == 0;
	if (attr && sbx_cpus_but_this(&others) == 0)
		pthread_attr_setaffinity_np(&at, sizeof(others), &others);
	if (pthread_create(&vm->proc.kvm.thread, attr ? &at : NULL, kvm_thread_main, vm) == 0)
		vm->proc.kvm.thread_started = 1;
	else
		kvm_thread_main(vm);
	if (attr)
		pthread_attr_destroy(&at);
	sbx_log(vm, 1, "KVM backend: %s; guest runs at CPL%d; ring polling %s",
		vm->proc.kvm.is_pvm ? "PVM" : "hardware", vm->proc.vcpu.cpl,
		vm->proc.ring.polling ? "on" : "off");
}

static int load_kernel(struct sbx_vm *vm, char *err, size_t errlen)
{
	size_t len = (size_t)(sbx_kernel_blob_end - sbx_kernel_blob);
	if (len < sizeof(vm->proc.image.khdr))
		return sbx_fail(err, errlen, -EINVAL, "embedded kernel image is truncated");
	memcpy(&vm->proc.image.khdr, sbx_kernel_blob, sizeof(vm->proc.image.khdr));
	const struct sbx_kernel_header *h = &vm->proc.image.khdr;
	if (h->magic != SBX_KERNEL_MAGIC || h->abi_version != SBX_ABI_VERSION ||
	    h->bss_end > SBX_PATCH_ADDR || h->image_end < SBX_KERNEL_ADDR + len ||
	    h->bss_end < h->image_end || h->nvectors > 32)
		return sbx_fail(err, errlen, -EINVAL,
				"embedded kernel image: bad header (ABI 0x%x, want 0x%x)",
				h->abi_version, SBX_ABI_VERSION);
	sbx_copy_to_guest(vm, SBX_KERNEL_ADDR, sbx_kernel_blob, len);
	size_t vlen = (size_t)(sbx_vdso_blob_end - sbx_vdso_blob);
	if (vlen < 4 || vlen > SBX_VDSO_END - SBX_VDSO_ADDR || memcmp(sbx_vdso_blob, "\177ELF", 4))
		return sbx_fail(err, errlen, -EINVAL,
				"embedded vDSO image is missing or too large (%zu bytes)", vlen);
	sbx_copy_to_guest(vm, SBX_VDSO_ADDR, sbx_vdso_blob, vlen);
	return 0;
}

/* The mappings the kernel starts its table with (1.3): the ELF's pages as the page tables map
 * them, the vDSO and the stack. */
static void fill_layout(const struct sbx_vm *vm, struct sbx_bootinfo *b)
{
	_Static_assert(SBX_BOOT_MAX_SEGS >= LOADER_MAX_RANGES, "every loader range fits bootinfo");
	_Static_assert(SBX_MEM_MAX / SBX_PAGE_SIZE <= UINT32_MAX, "page numbers fit 32 bits");
	_Static_assert(SBX_PROT_READ == PROT_READ && SBX_PROT_WRITE == PROT_WRITE &&
			   SBX_PROT_EXEC == PROT_EXEC,
		       "SBX_PROT_* are the PROT_* bits");
	const struct loader_image *img = &vm->proc.image.img;
	b->nsegs = img->nsegs;
	for (unsigned i = 0; i < img->nsegs; i++) {
		b->segs[i].page = (uint32_t)(img->segs[i].start / SBX_PAGE_SIZE);
		b->segs[i].npages =
		    (uint32_t)((img->segs[i].end - img->segs[i].start) / SBX_PAGE_SIZE);
		b->segs[i].prot = img->segs[i].prot;
	}
	b->stack_prot = PROT_READ | PROT_WRITE | (img->exec_stack ? PROT_EXEC : 0);
	uint64_t vlen = (uint64_t)(sbx_vdso_blob_end - sbx_vdso_blob);
	b->vdso_end = SBX_VDSO_ADDR + ((vlen + SBX_PAGE_SIZE - 1) & ~(SBX_PAGE_SIZE - 1));
}

static int fill_bootinfo(struct sbx_vm *vm, char *err, size_t errlen)
{
	struct sbx_bootinfo *b = sbx_gptr(vm, SBX_BOOTINFO_ADDR, sizeof(*b));
	memset(b, 0, sizeof(*b));
	b->abi_version = SBX_ABI_VERSION;
	b->flags = (vm->proc.vcpu.cpl == 0 ? SBX_BOOT_CPL0 : 0) |
		   (vm->cfg.strace ? SBX_BOOT_STRACE : 0) |
		   (vm->cfg.no_patch ? SBX_BOOT_NOPATCH : 0) |
		   (vm->proc.ring.polling ? SBX_BOOT_POLLING : 0) |
		   (vm->proc.threads.shootdown ? SBX_BOOT_SHOOTDOWN : 0) | vm->opts.boot_flags;
	b->mem_size = vm->proc.mem.size;
	b->brk_start = vm->proc.image.img.brk;
	b->mmap_base = vm->proc.image.img.brk;
	b->mmap_top = vm->proc.image.stack_guard;
	b->stack_top = vm->proc.mem.size;
	b->pid = vm->proc.pid;
	b->ppid = vm->proc.ppid;
	b->pgid = vm->proc.pgid;
	b->sid = vm->proc.sid;
	b->uid = vm->host.uid;
	b->gid = vm->host.gid;
	b->umask = vm->host.umask;
	b->nofile = vm->opts.nofile;
	b->max_threads = vm->proc.threads.max;
	b->ncpus = vm->proc.threads.ncpus;
	b->patch_limit = vm->proc.image.patch_limit;
	snprintf(b->exe_path, sizeof(b->exe_path), "%s", vm->proc.image.exe_path);
	const char *base = strrchr(vm->proc.image.exe_path, '/');
	snprintf(b->comm, sizeof(b->comm), "%.15s", base ? base + 1 : vm->proc.image.exe_path);
	snprintf(b->hostname, sizeof(b->hostname), "sandbox");
	sbx_xstate_bootinfo(&vm->proc.kvm.xs, vm->proc.vcpu.xcr0, b);
	fill_layout(vm, b);

	int khz = ioctl(vm->proc.vcpu.fd, KVM_GET_TSC_KHZ, 0);
	if (khz <= 0)
		return sbx_fail(err, errlen, -EINVAL, "KVM_GET_TSC_KHZ: %s", strerror(errno));
	const uint32_t tsc_msr = 0x10; /* IA32_TSC */
	uint64_t tsc = 0;
	int64_t rt = sbx_now_ns(CLOCK_REALTIME), mono = sbx_now_ns(CLOCK_MONOTONIC);
	if (sbx_kvm_msrs(vm, 0, &tsc_msr, &tsc, 1) != 1)
		return sbx_fail(err, errlen, -EINVAL, "reading the guest TSC: %s", strerror(errno));
	b->tsc_hz = (uint64_t)khz * 1000;
	b->tsc_mult = (1000000000ull << 32) / b->tsc_hz;
	b->tsc_at_boot = tsc;
	b->realtime_ns = rt;
	b->monotonic_ns = mono;
	b->start_ns = b->monotonic_ns;
	/* A front end that polls the ring itself for the whole run (exec's fast runs) answers
	 * slow host calls too: the guest waits longer before it rings. */
	b->spin_us = vm->opts.spin_us ? vm->opts.spin_us : SBX_SPIN_US;
	b->spin_tsc = b->tsc_hz / 1000000 * b->spin_us;
	return 0;
}

void sbx_stack_args(struct sbx_vm *vm, char *const *argv, char *const *envp,
		    struct loader_stack_args *sa)
{
	static const char *const empty_env[] = {NULL};
	unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
	__get_cpuid(1, &eax, &ebx, &ecx, &edx);
	if (!envp && vm->cfg.policy && vm->cfg.policy->env)
		envp = vm->cfg.policy->env;
	*sa = (struct loader_stack_args){
	    .argv = (const char *const *)argv,
	    .envp = envp ? (const char *const *)envp : empty_env,
	    .execfn = argv[0],
	    .hwcap = edx,
	    .hwcap2 = 2, /* HWCAP2_FSGSBASE: CR4.FSGSBASE is set */
	    .uid = vm->host.uid,
	    .euid = vm->host.uid,
	    .gid = vm->host.gid,
	    .egid = vm->host.gid,
	    .clktck = 100,
	    .sysinfo_ehdr = SBX_VDSO_ADDR,
	    .minsigstksz =
		sbx_xstate_sigstack_min(sbx_xstate_bytes(&vm->proc.kvm.xs, vm->proc.vcpu.xcr0)),
	    .stack_top = vm->proc.mem.size,
	    .stack_limit = vm->proc.image.stack_guard + SBX_PAGE_SIZE,
	};
}

static void guest_exe_path(struct sbx_vm *vm)
{
	char real[PATH_MAX], tmp[PATH_MAX];
	if (vm->cfg.policy && realpath(vm->cfg.prog, real) &&
	    policy_guest_path_of(vm->cfg.policy, real, vm->proc.image.exe_path,
				 sizeof(vm->proc.image.exe_path)) == 0)
		return;
	snprintf(tmp, sizeof(tmp), "%s", vm->cfg.prog);
	snprintf(vm->proc.image.exe_path, sizeof(vm->proc.image.exe_path), "/%s", basename(tmp));
}

/* /proc/self/exe of an execve'd image: the file itself, by the guest path its host path has
 * (a link the guest ran it by resolved, a mount that shows it at its host path preferred:
 * policy_guest_path_of), as Linux names the file; the path execve was given otherwise. */
static void exec_exe_path(struct sbx_vm *vm, int fd)
{
	char link[64], real[PATH_MAX];
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	ssize_t n = readlink(link, real, sizeof(real) - 1);
	if (n > 0 && real[0] == '/' && vm->cfg.policy) {
		real[n] = 0;
		if (policy_guest_path_of(vm->cfg.policy, real, vm->proc.image.exe_path,
					 sizeof(vm->proc.image.exe_path)) == 0)
			return;
	}
	snprintf(vm->proc.image.exe_path, sizeof(vm->proc.image.exe_path), "%s",
		 vm->proc.exec_path);
}

/* Static programs load at SBX_USER_ADDR, about as many bytes as the file has. Populating that
 * range in one call makes the monitor's page-table entries the guest's first touches need
 * (KVM then finds each host page without a fault of its own, docs/architecture.md, "What it
 * costs on PVM"). After the copy, not before: the copy's writes to the memfd made its pages
 * without zeroing those they fill whole, and populating then only maps them (session 50,
 * interleaved medians: a static hello 6.74 -> 6.63 ms, busybox true 8.52 -> 7.99 ms, Go's
 * start 19.0 -> 18.5 ms). A hint only. */
static void prefault_image(struct sbx_vm *vm)
{
	struct stat st;
	if (stat(vm->cfg.prog, &st) < 0 || st.st_size <= 0)
		return;
	uint64_t len = ((uint64_t)st.st_size + 2 * SBX_PAGE_SIZE) & ~(SBX_PAGE_SIZE - 1);
	if (len > vm->proc.image.stack_guard - SBX_USER_ADDR)
		return;
	madvise(vm->proc.mem.base + SBX_USER_ADDR, len, MADV_POPULATE_WRITE);
}

/* A dynamic program's interpreter, opened as the guest would open it (through the policy, so
 * the file ld.so then finds at that path is the one loaded) and checked as hostile as the
 * program: placed top-down below the stack guard, where Linux's mmap would put it. */
static int open_interp(struct sbx_vm *vm, const char *path, char *err, size_t errlen)
{
	char norm[POLICY_PATH_MAX];
	int fd = policy_normalize("/", path, strlen(path), norm, sizeof(norm));
	const struct policy_mount *m = NULL;
	/* O_NONBLOCK: a FIFO there (a program can leave one in a --rw mount) opens at once and is
	 * refused as no regular file, where a blocking open would wait for a writer forever. */
	if (fd == 0)
		fd = policy_open_guest(vm->cfg.policy, norm, POLICY_FOLLOW,
				       O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY, 0, NULL, NULL,
				       &m);
	if (fd < 0)
		return sbx_fail(err, errlen, -ENOEXEC,
				"the program's interpreter %s is not visible in the sandbox (%s): "
				"add --ro %s",
				path, strerror(-fd), path);
	return fd;
}

static int load_interp(struct sbx_vm *vm, const struct loader_params *prog_lp,
		       struct loader_mem *lm, char *err, size_t errlen)
{
	struct loader_image *img = &vm->proc.image.img;
	const char *path = img->interp;
	char lerr[400];
	int fd = open_interp(vm, path, err, errlen);
	if (fd < 0)
		return fd;
	struct loader_params lp = *prog_lp;
	lp.pie_top = vm->proc.image.stack_guard;
	struct loader_image *in = malloc(sizeof(*in));
	int r = in ? loader_load_fd(fd, path, &lp, lm, in, lerr, sizeof(lerr)) : -ENOMEM;
	close(fd);
	if (r == 0)
		r = loader_add_interp(img, in, path, lerr, sizeof(lerr));
	if (r == 0)
		sbx_log(vm, 2, "interpreter %s at 0x%llx, entry 0x%llx", path,
			(unsigned long long)img->interp_base, (unsigned long long)img->entry);
	free(in);
	if (r == -ENOMEM)
		return sbx_fail(err, errlen, r, "out of memory");
	if (r < 0)
		return sbx_fail(err, errlen, r, "interpreter %s: %s", path, lerr);
	return 0;
}

/* Kernel, program (from fd, or the configuration's path), interpreter and page tables into
 * zeroed RAM. */
/* Where the program may go: below the stack (1/8 of RAM, at most 8 MiB) and its guard page. */
static uint64_t stack_bytes(const struct sbx_vm *vm)
{
	return vm->proc.mem.size / 8 < SBX_STACK_MAX ? vm->proc.mem.size / 8 : SBX_STACK_MAX;
}

/* The new image's stack guard comes back in *guard: an execve's check must not change the
 * running image's, which the other threads' faults read meanwhile. */
static void image_params(const struct sbx_vm *vm, struct loader_params *lp, struct loader_mem *lm,
			 uint64_t *guard)
{
	*guard = vm->proc.mem.size - stack_bytes(vm) - SBX_PAGE_SIZE;
	*lm =
	    (struct loader_mem){.base = vm->proc.mem.base,
				.size = vm->proc.mem.size,
				.fd = vm->proc.mem.fd,
				/* Never a lent parent's memfd (a vfork's child). */
				.use_fd = vm->proc.mem.fd >= 0 && !atomic_load(&vm->proc.mem.lent)};
	*lp = (struct loader_params){
	    .min_addr = SBX_USER_ADDR,
	    .max_addr = *guard,
	    .pie_base = SBX_USER_ADDR,
	    .mem_is_zero = 1,
	    /* A record's code jumps into the kernel: only where the two run at one level (PVM,
	     * or both at CPL0), as for syscall sites. */
	    .cpuid_sites = !vm->cfg.no_patch && (vm->proc.kvm.is_pvm || vm->proc.vcpu.cpl == 0),
	    /* An execve's files are read whole into buffers of its own (read_whole). */
	    .buf_private = 1,
	};
}

/* An execve's program and interpreter, read whole before anything changes: no mapping of a
 * file another process could truncate under the loader, and what was checked is loaded. */
struct exec_files {
	void *prog, *interp;
	size_t plen, ilen;
	const char *iname;
};

/* Kernel, program (the configuration's path, or an execve's files), interpreter and page
 * tables into zeroed RAM. */
static int load_images(struct sbx_vm *vm, const struct exec_files *x, char *err, size_t errlen)
{
	int r;
	if ((r = load_kernel(vm, err, errlen)) < 0)
		return r;
	struct loader_mem lm;
	struct loader_params lp;
	image_params(vm, &lp, &lm, &vm->proc.image.stack_guard);
	char lerr[400];
	struct loader_image *img = &vm->proc.image.img;
	memset(img, 0, sizeof(*img));
	if (!x) {
		r = loader_load_file(vm->cfg.prog, &lp, &lm, img, lerr, sizeof(lerr));
		if (r < 0)
			return sbx_fail(err, errlen, r, "%s", lerr);
		prefault_image(vm);
		if (img->interp[0] && (r = load_interp(vm, &lp, &lm, err, errlen)) < 0)
			return r;
		sbx_cpuid_patch(vm);
		return sbx_x86_build_tables(vm, err, errlen);
	}
	struct loader_image *in = malloc(sizeof(*in));
	r = in ? loader_load_mem(x->prog, x->plen, &lp, &lm, img, lerr, sizeof(lerr)) : -ENOMEM;
	if (r == 0 && img->interp[0]) {
		lp.pie_top = vm->proc.image.stack_guard;
		r = loader_load_mem(x->interp, x->ilen, &lp, &lm, in, lerr, sizeof(lerr));
		if (r == 0)
			r = loader_add_interp(img, in, x->iname, lerr, sizeof(lerr));
	}
	free(in);
	if (r < 0)
		return sbx_fail(err, errlen, r, "%s", r == -ENOMEM ? "out of memory" : lerr);
	sbx_cpuid_patch(vm);
	return sbx_x86_build_tables(vm, err, errlen);
}

/* The image's writable segments of SBX_POPULATE_MIN or more (a static table, a big .bss) get
 * their host pages now, as k_populate has a big mmap's made: each first touch of a page the
 * host has not made yet is a shadow page fault that also makes it (~14-17 us on PVM hosts
 * where an exit is dear), while KVM maps a made page's neighbours with it (its prefetch of
 * the 8 entries around a fault needs their host pages mapped), ~0.3 us a page here. With a
 * poller the work is queued for it (the program goes on meanwhile), else done at once. At
 * most SBX_POPULATE_MAX, as for mmap: a huge table the program leaves untouched costs no
 * more host memory than that. */
#define SBX_POPULATE_MIN (1ull << 20)
#define SBX_POPULATE_MAX (64ull << 20)
static void populate_data(struct sbx_vm *vm)
{
	const struct loader_image *img = &vm->proc.image.img;
	uint64_t budget = SBX_POPULATE_MAX;
	for (unsigned i = 0; i < img->nsegs && budget; i++) {
		const struct loader_segment *s = &img->segs[i];
		uint64_t len = s->end - s->start;
		if (!(s->prot & PROT_WRITE) || len < SBX_POPULATE_MIN || s->end > vm->proc.mem.size)
			continue;
		len = len < budget ? len : budget;
		budget -= len;
		vm->stats.backed_kib += len >> 10;
		if (sbx_ring_defer_populate(vm, s->start, len) == 0)
			continue;
		madvise(vm->proc.mem.base + s->start, len, MADV_POPULATE_WRITE);
	}
}

/* The initial stack, the vCPU at the entry point, the boot page. */
static int enter_image(struct sbx_vm *vm, char *const *argv, char *const *envp, char *err,
		       size_t errlen)
{
	int r;
	char lerr[400];
	struct loader_mem lm = {.base = vm->proc.mem.base, .size = vm->proc.mem.size};
	/* The stack after the vCPU: AT_MINSIGSTKSZ depends on the extended state KVM offers. */
	struct loader_stack_args sa;
	sbx_stack_args(vm, argv, envp, &sa);
	if (vm->proc.exec_path)
		sa.execfn = vm->proc.exec_path;
	if (getrandom(sa.random, sizeof(sa.random), 0) != (ssize_t)sizeof(sa.random))
		return sbx_fail(err, errlen, -EIO, "getrandom: %s", strerror(errno));
	if ((r = loader_build_stack(&lm, &vm->proc.image.img, &sa, &vm->proc.image.entry_rsp, lerr,
				    sizeof(lerr))) < 0)
		return sbx_fail(err, errlen, r, "%s", lerr);
	if ((r = sbx_x86_set_vcpu(vm, err, errlen)) < 0 || (r = fill_bootinfo(vm, err, errlen)) < 0)
		return r;
	/* Read once CR4 and XCR0 are set: KVM's answers carry OSXSAVE and the XSAVE sizes. */
	if (vm->proc.image.cpuid_patched && (r = sbx_x86_publish_cpuid(vm, vm->proc.vcpu.fd)) < 0)
		sbx_log(vm, 1, "KVM_GET_CPUID2: %s: patched cpuid sites ask the host",
			strerror(-r));
	return 0;
}

int sbx_vm_load(struct sbx_vm *vm, char *err, size_t errlen)
{
	int r;
	if ((r = load_images(vm, NULL, err, errlen)) < 0)
		return r;
	populate_data(vm);
	guest_exe_path(vm);
	/* While the KVM thread may still be at work. */
	sbx_elf_hash(vm->cfg.prog, vm->origin.elf_hash);
	if ((r = sbx_core_join_kvm(vm, err, errlen)) < 0 ||
	    (r = enter_image(vm, vm->cfg.argv, NULL, err, errlen)) < 0)
		return r;
	sbx_log(vm, 2, "loaded %s: entry 0x%llx, brk 0x%llx, stack 0x%llx, %u segments",
		vm->cfg.prog, (unsigned long long)vm->proc.image.img.entry,
		(unsigned long long)vm->proc.image.img.brk,
		(unsigned long long)vm->proc.image.entry_rsp, vm->proc.image.img.nsegs);
	return 0;
}

/* What execve keeps of the old image's signal state (Linux: the mask, the pending set and the
 * ignored signals; handlers go back to the default), put back after the boot page. */
struct sig_keep {
	uint64_t blocked, pending, ignored, incoming;
	struct sbx_sigfrom from[64]; /* the senders of incoming's signals */
};

static void sig_save(struct sbx_vm *vm, struct sig_keep *k)
{
	const struct sbx_sigstate *s = sbx_gptr(vm, SBX_SIGSTATE_ADDR, sizeof(*s));
	memset(k, 0, sizeof(*k));
	const struct sbx_bootinfo *b = sbx_gptr(vm, SBX_BOOTINFO_ADDR, sizeof(*b));
	if (b) {
		k->incoming = __atomic_load_n(&b->sig_incoming, __ATOMIC_SEQ_CST);
		memcpy(k->from, b->sig_from, sizeof(k->from));
	}
	if (!s)
		return;
	k->blocked = s->blocked;
	k->pending = s->pending;
	for (int i = 1; i <= 64; i++)
		if (s->act[i].handler == 1 /* SIG_IGN */)
			k->ignored |= 1ull << (i - 1);
}

static void sig_restore(struct sbx_vm *vm, const struct sig_keep *k)
{
	struct sbx_sigstate *s = sbx_gptr(vm, SBX_SIGSTATE_ADDR, sizeof(*s));
	struct sbx_bootinfo *b = sbx_gptr(vm, SBX_BOOTINFO_ADDR, sizeof(*b));
	if (b) {
		memcpy(b->sig_from, k->from, sizeof(k->from));
		__atomic_or_fetch(&b->sig_incoming, k->incoming, __ATOMIC_SEQ_CST);
	}
	if (!s)
		return;
	s->blocked = k->blocked & ~((1ull << 8) | (1ull << 18)); /* never SIGKILL, SIGSTOP */
	s->pending = k->pending;
	for (int i = 1; i <= 64; i++)
		if (k->ignored & (1ull << (i - 1)))
			s->act[i].handler = 1;
}

static int read_whole(int fd, uint64_t cap, const char *name, void **out, size_t *len, char *err,
		      size_t errlen)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return sbx_fail(err, errlen, -errno, "%s: %s", name, strerror(errno));
	if ((uint64_t)st.st_size > cap)
		return sbx_fail(err, errlen, -ENOMEM, "%s: %lld bytes do not fit in guest RAM",
				name, (long long)st.st_size);
	uint8_t *b = malloc(st.st_size ? (size_t)st.st_size : 1);
	if (!b)
		return sbx_fail(err, errlen, -ENOMEM, "out of memory for %s", name);
	size_t n = 0;
	while (n < (size_t)st.st_size) {
		ssize_t k = pread(fd, b + n, (size_t)st.st_size - n, (off_t)n);
		if (k <= 0) {
			free(b);
			return sbx_fail(err, errlen, k < 0 ? -errno : -EIO, "reading %s: %s", name,
					k < 0 ? strerror(errno) : "shorter than its size");
		}
		n += (size_t)k;
	}
	*out = b;
	*len = n;
	return 0;
}

/* Everything the load will check, checked now, while the old image is still there: the
 * program, its interpreter, and room on the stack for the arguments. */
static int exec_check(struct sbx_vm *vm, int fd, const char *gpath, size_t argbytes,
		      struct exec_files *x, char *err, size_t errlen)
{
	char lerr[400];
	int r = read_whole(fd, vm->proc.mem.size, gpath, &x->prog, &x->plen, err, errlen);
	if (r < 0)
		return r;
	struct loader_mem lm;
	struct loader_params lp;
	uint64_t guard;
	image_params(vm, &lp, &lm, &guard);
	struct loader_image *img = malloc(sizeof(*img)), *in = malloc(sizeof(*in));
	r = img && in ? loader_check_mem(x->prog, x->plen, &lp, &lm, img, lerr, sizeof(lerr))
		      : -ENOMEM;
	if (r < 0)
		sbx_fail(err, errlen, r, "%s", r == -ENOMEM ? "out of memory" : lerr);
	if (r == 0 && img->interp[0]) {
		int ifd = open_interp(vm, img->interp, err, errlen);
		r = ifd;
		if (ifd >= 0) {
			r = read_whole(ifd, vm->proc.mem.size, img->interp, &x->interp, &x->ilen,
				       err, errlen);
			close(ifd);
		}
		lp.pie_top = lp.max_addr;
		if (r == 0 &&
		    ((r = loader_check_mem(x->interp, x->ilen, &lp, &lm, in, lerr, sizeof(lerr))) <
			 0 ||
		     (r = loader_add_interp(img, in, img->interp, lerr, sizeof(lerr))) < 0))
			sbx_fail(err, errlen, r, "interpreter %s: %s", img->interp, lerr);
		x->iname = img->interp[0] ? strdup(img->interp) : NULL;
		if (r == 0 && !x->iname)
			r = sbx_fail(err, errlen, -ENOMEM, "out of memory");
	}
	/* The strings, their pointers and auxv with room to spare, as Linux's quarter of the
	 * stack limit. */
	if (r == 0 && argbytes > stack_bytes(vm) / 4)
		r = sbx_fail(err, errlen, -E2BIG, "%zu bytes of arguments and environment",
			     argbytes);
	free(img);
	free(in);
	return r;
}

static void exec_files_free(struct exec_files *x)
{
	free(x->prog);
	free(x->interp);
	free((char *)x->iname);
}

/* Everything an execve checks before the image goes, the files read into x. */
static int exec_prepare(struct sbx_vm *vm, int fd, const char *gpath, char *const *argv,
			char *const *envp, struct exec_files *x, char *err, size_t errlen)
{
	if (vm->proc.mem.fd < 0 && !vm->proc.mem.lent)
		return sbx_fail(err, errlen, -ENOEXEC, "RAM is a snapshot file's mapping");
	size_t argbytes = 0;
	for (char *const *v = argv; v && *v; v++)
		argbytes += strlen(*v) + 1 + sizeof(char *);
	for (char *const *v = envp; v && *v; v++)
		argbytes += strlen(*v) + 1 + sizeof(char *);
	return exec_check(vm, fd, gpath, argbytes, x, err, errlen);
}

int sbx_vm_exec_check(struct sbx_vm *vm, int fd, const char *gpath, char *const *argv,
		      char *const *envp, char *err, size_t errlen)
{
	struct exec_files x = {0};
	int r = exec_prepare(vm, fd, gpath, argv, envp, &x, err, errlen);
	exec_files_free(&x);
	return r;
}

int sbx_vm_reimage(struct sbx_vm *vm, int fd, const char *gpath, char *const *argv,
		   char *const *envp, int *lost, char *err, size_t errlen)
{
	*lost = 0;
	struct exec_files x = {0};
	char *path = strdup(gpath);
	int r = path ? exec_prepare(vm, fd, gpath, argv, envp, &x, err, errlen)
		     : sbx_fail(err, errlen, -ENOMEM, "out of memory");
	/* A vfork's child leaves its parent's RAM for a memfd of its own, made while the call can
	 * still fail. */
	int own = r < 0 ? -1 : sbx_mem_own_fd(vm, err, errlen);
	if (r == 0 && own < -1)
		r = own;
	if (r < 0)
		goto out;
	struct sig_keep keep;
	sig_save(vm, &keep);
	/* The point of no return. KVM may still owe the doorbell's MMIO write: finished before
	 * the registers change. */
	*lost = 1;
	sbx_vcpu_complete(vm);
	sbx_shmap_clear(vm);
	/* A lent RAM is replaced by a memfd of its own, which holds nothing yet. */
	if (own >= 0 && (r = sbx_mem_own(vm, own, err, errlen)) < 0)
		goto out;
	if (own < 0 && fallocate(vm->proc.mem.fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0,
				 (off_t)vm->proc.mem.size) < 0) {
		r = sbx_fail(err, errlen, -errno, "clearing guest RAM: %s", strerror(errno));
		goto out;
	}
	if (vm->hooks.exec_committed)
		vm->hooks.exec_committed(vm);
	/* Dirty tracking (a migration's rounds, a reset point) sees the whole of RAM change. */
	sbx_mem_dirty(vm, 0, vm->proc.mem.size);
	free(vm->proc.exec_path);
	vm->proc.exec_path = path;
	path = NULL;
	exec_exe_path(vm, fd);
	vm->proc.vcpu.xcr0 = sbx_xstate_default(&vm->proc.kvm.xs);
	if ((r = load_images(vm, &x, err, errlen)) < 0 ||
	    (r = enter_image(vm, argv, envp, err, errlen)) < 0)
		goto out;
	sig_restore(vm, &keep);
	/* KVM's shadow of the old page tables must go (docs/architecture.md, "The monitor's
	 * writes are still unseen"). */
	if ((r = sbx_memslot_reload(vm)) < 0) {
		sbx_fail(err, errlen, r, "re-adding guest RAM: %s", strerror(-r));
		goto out;
	}
	/* vCPU 0 is at home again: the master root and SBX_RING_ADDR (a child forked by a
	 * second thread ran on that thread's window until now). */
	vm->proc.vcpu.home_root = 0;
	vm->proc.ring.gpa = 0;
	vm->proc.ring.tail = 0;
	vm->proc.ring.npop = 0;
	populate_data(vm);
	vm->proc.ring.reimaged = 1;
	sbx_ring_need_wakeup(vm, 1);
	memset(vm->proc.vcpu.exit_count, 0, sizeof(vm->proc.vcpu.exit_count));
out:
	free(path);
	exec_files_free(&x);
	return r;
}

void sbx_core_free(struct sbx_vm *vm)
{
	char err[sizeof(vm->proc.kvm.err)];
	sbx_core_join_kvm(vm, err, sizeof(err));
	sbx_ring_stop(vm);
	sbx_threads_free(vm);
	sbx_shmap_clear(vm);
	sbx_kvm_close(vm);
	sbx_mem_destroy(vm);
	sbx_dirty_stop(vm);
	free(vm->proc.exec_path);
	free(vm->proc.exec_args);
	free(vm->proc.mem.mon_dirty);
	free(vm->proc.mem.dirty_buf);
	pthread_mutex_destroy(&vm->proc.ring.lock);
	pthread_mutex_destroy(&vm->life.pause_lock);
	pthread_mutex_destroy(&vm->proc.shmaps.lock);
	pthread_cond_destroy(&vm->life.pause_cond);
	free(vm);
}

void sbx_elf_hash(const char *path, uint8_t out[16])
{
	memset(out, 0, 16);
	int fd = path ? open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY) : -1;
	struct stat st0;
	if (fd < 0)
		return;
	if (fstat(fd, &st0) < 0 || !S_ISREG(st0.st_mode) || st0.st_size > (1ll << 30)) {
		close(fd);
		return;
	}
	XXH3_state_t *st = XXH3_createState();
	char buf[1 << 16];
	ssize_t n = 0;
	int64_t total = 0;
	XXH3_128bits_reset(st);
	while (total <= st0.st_size && (n = read(fd, buf, sizeof(buf))) > 0) {
		XXH3_128bits_update(st, buf, (size_t)n);
		total += n;
	}
	if (n < 0 || total != st0.st_size) {
		XXH3_freeState(st);
		close(fd);
		return;
	}
	XXH128_hash_t h = XXH3_128bits_digest(st);
	XXH3_freeState(st);
	close(fd);
	memcpy(out, &h.low64, 8);
	memcpy(out + 8, &h.high64, 8);
}
