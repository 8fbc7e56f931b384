/* The files of /proc about the machine rather than a process: cpuinfo, stat, meminfo, loadavg,
 * uptime, as the sandbox's processes see their machine: the CPUs they may run on (--cpus), the
 * CPU the vCPUs' CPUID describes, guest RAM for memory. Scripts count `^processor` lines for
 * `make -j`, libuv (Node's os.cpus()) counts the cpuN lines of stat, getloadavg() reads
 * loadavg, `free` reads meminfo. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <cpuid.h>
#include <linux/kvm.h>

#include "calls.h"

#define PROCFS_HZ 100 /* USER_HZ */

/* What CPUID leaf (fn, idx) says to the guest: the vCPUs' table, or this CPU's own without one
 * (a VM not started yet, a unit test). */
static void leaf(struct sbx_vm *vm, uint32_t fn, uint32_t idx, uint32_t r[4])
{
	memset(r, 0, 4 * sizeof(*r));
	const struct kvm_cpuid2 *c = vm->proc.kvm.cpuid;
	if (c) {
		for (uint32_t i = 0; i < c->nent; i++) {
			const struct kvm_cpuid_entry2 *e = &c->entries[i];
			if (e->function == fn &&
			    (!(e->flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX) || e->index == idx)) {
				r[0] = e->eax, r[1] = e->ebx, r[2] = e->ecx, r[3] = e->edx;
				return;
			}
		}
		return;
	}
	__cpuid_count(fn, idx, r[0], r[1], r[2], r[3]);
}

/* Linux's names for the CPUID bits programs look for, in the order its flags line has them. */
static const struct flag {
	uint32_t fn, idx;
	uint8_t reg, bit; /* reg: 0 eax, 1 ebx, 2 ecx, 3 edx */
	const char *name;
} flags[] = {
    {1, 0, 3, 0, "fpu"},
    {1, 0, 3, 1, "vme"},
    {1, 0, 3, 2, "de"},
    {1, 0, 3, 3, "pse"},
    {1, 0, 3, 4, "tsc"},
    {1, 0, 3, 5, "msr"},
    {1, 0, 3, 6, "pae"},
    {1, 0, 3, 7, "mce"},
    {1, 0, 3, 8, "cx8"},
    {1, 0, 3, 9, "apic"},
    {1, 0, 3, 11, "sep"},
    {1, 0, 3, 12, "mtrr"},
    {1, 0, 3, 13, "pge"},
    {1, 0, 3, 14, "mca"},
    {1, 0, 3, 15, "cmov"},
    {1, 0, 3, 16, "pat"},
    {1, 0, 3, 17, "pse36"},
    {1, 0, 3, 19, "clflush"},
    {1, 0, 3, 23, "mmx"},
    {1, 0, 3, 24, "fxsr"},
    {1, 0, 3, 25, "sse"},
    {1, 0, 3, 26, "sse2"},
    {1, 0, 3, 28, "ht"},
    {0x80000001, 0, 3, 11, "syscall"},
    {0x80000001, 0, 3, 20, "nx"},
    {0x80000001, 0, 3, 22, "mmxext"},
    {0x80000001, 0, 3, 25, "fxsr_opt"},
    {0x80000001, 0, 3, 26, "pdpe1gb"},
    {0x80000001, 0, 3, 27, "rdtscp"},
    {0x80000001, 0, 3, 29, "lm"},
    {1, 0, 2, 0, "pni"},
    {1, 0, 2, 1, "pclmulqdq"},
    {1, 0, 2, 9, "ssse3"},
    {1, 0, 2, 12, "fma"},
    {1, 0, 2, 13, "cx16"},
    {1, 0, 2, 19, "sse4_1"},
    {1, 0, 2, 20, "sse4_2"},
    {1, 0, 2, 21, "x2apic"},
    {1, 0, 2, 22, "movbe"},
    {1, 0, 2, 23, "popcnt"},
    {1, 0, 2, 25, "aes"},
    {1, 0, 2, 26, "xsave"},
    {1, 0, 2, 28, "avx"},
    {1, 0, 2, 29, "f16c"},
    {1, 0, 2, 30, "rdrand"},
    {1, 0, 2, 31, "hypervisor"},
    {0x80000001, 0, 2, 0, "lahf_lm"},
    {0x80000001, 0, 2, 1, "cmp_legacy"},
    {0x80000001, 0, 2, 5, "abm"},
    {0x80000001, 0, 2, 6, "sse4a"},
    {0x80000001, 0, 2, 8, "3dnowprefetch"},
    {0x80000001, 0, 2, 11, "xop"},
    {0x80000001, 0, 2, 16, "fma4"},
    {7, 0, 1, 0, "fsgsbase"},
    {7, 0, 1, 3, "bmi1"},
    {7, 0, 1, 4, "hle"},
    {7, 0, 1, 5, "avx2"},
    {7, 0, 1, 7, "smep"},
    {7, 0, 1, 8, "bmi2"},
    {7, 0, 1, 9, "erms"},
    {7, 0, 1, 10, "invpcid"},
    {7, 0, 1, 11, "rtm"},
    {7, 0, 1, 16, "avx512f"},
    {7, 0, 1, 17, "avx512dq"},
    {7, 0, 1, 18, "rdseed"},
    {7, 0, 1, 19, "adx"},
    {7, 0, 1, 20, "smap"},
    {7, 0, 1, 21, "avx512ifma"},
    {7, 0, 1, 23, "clflushopt"},
    {7, 0, 1, 24, "clwb"},
    {7, 0, 1, 28, "avx512cd"},
    {7, 0, 1, 29, "sha_ni"},
    {7, 0, 1, 30, "avx512bw"},
    {7, 0, 1, 31, "avx512vl"},
    {0xd, 1, 0, 0, "xsaveopt"},
    {0xd, 1, 0, 1, "xsavec"},
    {0xd, 1, 0, 2, "xgetbv1"},
    {0xd, 1, 0, 3, "xsaves"},
    {7, 0, 2, 1, "avx512vbmi"},
    {7, 0, 2, 2, "umip"},
    {7, 0, 2, 3, "pku"},
    {7, 0, 2, 6, "avx512_vbmi2"},
    {7, 0, 2, 8, "gfni"},
    {7, 0, 2, 9, "vaes"},
    {7, 0, 2, 10, "vpclmulqdq"},
    {7, 0, 2, 11, "avx512_vnni"},
    {7, 0, 2, 12, "avx512_bitalg"},
    {7, 0, 2, 14, "avx512_vpopcntdq"},
    {7, 0, 2, 22, "rdpid"},
    {7, 0, 3, 4, "fsrm"},
    {7, 0, 3, 14, "serialize"},
    {7, 0, 3, 22, "amx_bf16"},
    {7, 0, 3, 24, "amx_tile"},
    {7, 0, 3, 25, "amx_int8"},
};

static void cpuinfo(struct sbx_vm *vm, FILE *f)
{
	uint32_t r[4], v[4], max_ext;
	leaf(vm, 0, 0, v);
	char vendor[13];
	memcpy(vendor, &v[1], 4);
	memcpy(vendor + 4, &v[3], 4);
	memcpy(vendor + 8, &v[2], 4);
	vendor[12] = 0;
	uint32_t max_std = v[0];
	leaf(vm, 1, 0, r);
	uint32_t family = (r[0] >> 8) & 0xf, model = (r[0] >> 4) & 0xf;
	if (family == 0xf)
		family += (r[0] >> 20) & 0xff;
	if (family == 6 || family >= 0xf)
		model += ((r[0] >> 16) & 0xf) << 4;
	leaf(vm, 0x80000000, 0, v);
	max_ext = v[0];
	char brand[49] = "";
	if (max_ext >= 0x80000004) {
		for (uint32_t i = 0; i < 3; i++) {
			leaf(vm, 0x80000002 + i, 0, v);
			memcpy(brand + 16 * i, v, 16);
		}
		brand[48] = 0;
	}
	const char *name = brand;
	while (*name == ' ')
		name++;
	char flagline[2048] = "";
	size_t o = 0;
	for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
		const struct flag *fl = &flags[i];
		if (fl->fn >= 0x80000000 ? fl->fn > max_ext : fl->fn > max_std)
			continue;
		leaf(vm, fl->fn, fl->idx, v);
		int w = (v[fl->reg] >> fl->bit) & 1 ? snprintf(flagline + o, sizeof(flagline) - o,
							       "%s%s", o ? " " : "", fl->name)
						    : 0;
		if (w > 0 && (size_t)w < sizeof(flagline) - o)
			o += (size_t)w;
	}
	const struct sbx_bootinfo *b = sbx_gptr_ro(vm, SBX_BOOTINFO_ADDR, sizeof(*b));
	double mhz = b && b->tsc_hz ? (double)b->tsc_hz / 1e6 : 0;
	uint32_t n = vm->proc.threads.ncpus ? vm->proc.threads.ncpus : 1;
	for (uint32_t c = 0; c < n; c++)
		fprintf(
		    f,
		    "processor\t: %u\nvendor_id\t: %s\ncpu family\t: %u\nmodel\t\t: %u\n"
		    "model name\t: %s\nstepping\t: %u\ncpu MHz\t\t: %.3f\nphysical id\t: 0\n"
		    "siblings\t: %u\ncore id\t\t: %u\ncpu cores\t: %u\napicid\t\t: %u\n"
		    "fpu\t\t: yes\nfpu_exception\t: yes\ncpuid level\t: %u\nwp\t\t: yes\n"
		    "flags\t\t: %s\nbogomips\t: %.2f\nclflush size\t: 64\ncache_alignment\t: 64\n"
		    "address sizes\t: 48 bits physical, 48 bits virtual\npower management:\n\n",
		    c, vendor, family, model, name, r[0] & 0xf, mhz, n, c, n, c, max_std, flagline,
		    mhz * 2);
}

/* The CPUs' times: what the caller's process used as user time, the rest of the sandbox's
 * uptime as idle, spread over the CPUs it may use. */
static void cpu_stat(struct sbx_vm *vm, FILE *f)
{
	uint32_t n = vm->proc.threads.ncpus ? vm->proc.threads.ncpus : 1;
	uint64_t tick = 1000000000ull / PROCFS_HZ;
	int64_t up = sbx_now_ns(CLOCK_MONOTONIC), real = sbx_now_ns(CLOCK_REALTIME);
	uint64_t user = (uint64_t)sbx_process_cpu_ns(vm) / tick, all = (uint64_t)up / tick * n;
	uint64_t idle = all > user ? all - user : 0;
	fprintf(f, "cpu  %" PRIu64 " 0 0 %" PRIu64 " 0 0 0 0 0 0\n", user, idle);
	for (uint32_t c = 0; c < n; c++)
		fprintf(f, "cpu%u %" PRIu64 " 0 0 %" PRIu64 " 0 0 0 0 0 0\n", c, user / n,
			idle / n);
	unsigned procs = vm->hooks.procs_list ? vm->hooks.procs_list(vm, NULL, 0) : 1;
	fprintf(f,
		"intr 0\nctxt 0\nbtime %" PRId64 "\nprocesses %u\nprocs_running 1\n"
		"procs_blocked 0\nsoftirq 0 0 0 0 0 0 0 0 0 0 0\n",
		(int64_t)((real - up) / 1000000000ll), procs ? procs : 1);
}

static void meminfo(struct sbx_vm *vm, FILE *f)
{
	uint64_t total = vm->proc.mem.size >> 10, used = sbx_mem_ram_bytes(vm) >> 10;
	uint64_t avail = total > used ? total - used : 0;
	fprintf(f,
		"MemTotal:       %8" PRIu64 " kB\nMemFree:        %8" PRIu64
		" kB\nMemAvailable:   %8" PRIu64
		" kB\nBuffers:               0 kB\nCached:                0 kB\n"
		"SwapCached:            0 kB\nActive:         %8" PRIu64
		" kB\nInactive:              0 kB\nSwapTotal:             0 kB\n"
		"SwapFree:              0 kB\nDirty:                 0 kB\nShmem:                 "
		"0 kB\n"
		"HugePages_Total:       0\nHugePages_Free:        0\nHugepagesize:       2048 kB\n",
		total, avail, avail, used);
}

static void loadavg(struct sbx_vm *vm, FILE *f)
{
	unsigned procs = vm->hooks.procs_list ? vm->hooks.procs_list(vm, NULL, 0) : 1;
	fprintf(f, "0.00 0.00 0.00 1/%u %u\n", procs ? procs : 1, vm->proc.pid);
}

int sbx_procfs_sys(struct sbx_vm *vm, int type, char **text, size_t *len)
{
	*text = NULL;
	*len = 0;
	FILE *f = open_memstream(text, len);
	if (!f)
		return -ENOMEM;
	switch (type) {
	case SBX_V_CPUINFO:
		cpuinfo(vm, f);
		break;
	case SBX_V_PSTAT:
		cpu_stat(vm, f);
		break;
	case SBX_V_MEMINFO:
		meminfo(vm, f);
		break;
	case SBX_V_LOADAVG:
		loadavg(vm, f);
		break;
	case SBX_V_UPTIME: {
		int64_t ns = sbx_now_ns(CLOCK_MONOTONIC);
		fprintf(f, "%" PRId64 ".%02" PRId64 " 0.00\n", (int64_t)(ns / 1000000000ll),
			(int64_t)(ns / 10000000ll % 100));
		break;
	}
	}
	if (fclose(f) != 0 || !*text) {
		free(*text);
		*text = NULL;
		return -ENOMEM;
	}
	return 0;
}
