/* The hypercall ABI between the in-guest kernel and the monitor: the one contract both sides
 * build against. Fixed-width little-endian fields only; every struct size is pinned by a
 * _Static_assert. Comments say IN (guest -> monitor) or OUT (monitor -> guest). A call number
 * never changes meaning; new calls get new numbers and bump SBX_ABI_MINOR. A minor bump only
 * adds: new calls, and fields in reserved bytes (each offset pinned by a _Static_assert) that a
 * kernel of an older minor never reads, so its snapshots still restore. */
#ifndef SBX_ABI_H
#define SBX_ABI_H

#ifdef __ASSEMBLER__
#define SBX_U64(x) x
#else
#include <stdint.h>
#define SBX_U64(x) x##ull
#endif

#define SBX_ABI_MAJOR 1
#define SBX_ABI_MINOR 30
#define SBX_ABI_VERSION ((SBX_ABI_MAJOR << 16) | SBX_ABI_MINOR)

/* ---- Guest address space ----------------------------------------------------------------
 * The kernel's pages, the ELF image, the brk heap and the stack are identity-mapped (VA == GPA);
 * since 1.5 mmap'ed memory has its own virtual addresses, backed by RAM pages the kernel hands
 * out, and every address in a ring request is guest-physical. */
#define SBX_PAGE_SIZE SBX_U64(0x1000)
/* x86-64 page-table entry bits, as the monitor builds the tables and the kernel edits them. */
#define SBX_PTE_P SBX_U64(0x1)
#define SBX_PTE_W SBX_U64(0x2)
#define SBX_PTE_U SBX_U64(0x4)
#define SBX_PTE_A SBX_U64(0x20)
#define SBX_PTE_D SBX_U64(0x40)
#define SBX_PTE_PS SBX_U64(0x80)
#define SBX_PTE_NX (SBX_U64(1) << 63)
#define SBX_PTE_ADDR SBX_U64(0x000ffffffffff000)
/* Software bits of a 4 KiB entry the kernel writes (1.5): the page is the kernel's allocator's
 * (given back with the mapping), and, in an entry that is not present, the page stays (a
 * PROT_NONE page keeps its bytes). */
#define SBX_PTE_OWNED SBX_U64(0x200)
#define SBX_PTE_KEEP SBX_U64(0x400)
/* The page-fault error code's bits the kernel reads. */
#define SBX_PF_PRESENT 0x1
#define SBX_PF_WRITE 0x2
#define SBX_PF_FETCH 0x10
/* 1.5: the kernel maps all of RAM at SBX_PHYSMAP_VA + gpa (its own access to page tables and
 * pages it hands out); user mappings end below it. */
#define SBX_PHYSMAP_VA SBX_U64(0x7f8000000000)
#define SBX_USER_TOP SBX_PHYSMAP_VA
#define SBX_MIN_ADDR SBX_U64(0x10000)	   /* [0, 64 KiB) is never mapped, like vm.mmap_min_addr */
#define SBX_GDT_ADDR SBX_U64(0x10000)	   /* GDT page (supervisor-only accesses by the CPU) */
#define SBX_TSS_ADDR SBX_U64(0x11000)	   /* 64-bit TSS with the IST stack pointers */
#define SBX_IDT_ADDR SBX_U64(0x12000)	   /* 256 interrupt gates */
#define SBX_BOOTINFO_ADDR SBX_U64(0x13000) /* struct sbx_bootinfo, written by the monitor */
#define SBX_RING_ADDR SBX_U64(0x14000)	   /* struct sbx_ring, SBX_RING_BYTES long */
#define SBX_RING_BYTES SBX_U64(0x1000)
#define SBX_EXEC_ADDR SBX_U64(0x15000) /* struct sbx_exec_ctl: repeated runs' mailbox (1.2) */
#define SBX_PT_ADDR SBX_U64(0x20000)   /* page tables built by the monitor */
#define SBX_PT_END SBX_U64(0x100000)
#define SBX_KSTACK_ADDR SBX_U64(0x100000) /* kernel stacks: syscall stack, then the IST stacks */
#define SBX_KSTACK_END SBX_U64(0x200000)
#define SBX_KERNEL_ADDR SBX_U64(0x200000) /* the kernel image (struct sbx_kernel_header first) */
#define SBX_KERNEL_END SBX_U64(0x3f0000)
#define SBX_VDSO_ADDR SBX_U64(0x3f0000) /* the vDSO image (AT_SYSINFO_EHDR), < 60 KiB */
#define SBX_VDSO_END SBX_U64(0x3ff000)
#define SBX_DOORBELL_VA SBX_U64(0x3ff000)      /* CPL3 doorbell: a write here is an MMIO exit */
#define SBX_DOORBELL_GPA SBX_U64(0xfffffff000) /* outside every memslot */
#define SBX_USER_ADDR SBX_U64(0x400000) /* lowest user address: ET_EXEC text, static-PIE base */
/* The RFLAGS bits a syscall clears (the SFMASK MSR the monitor sets, and what a patched site's
 * entry clears itself): TF, DF and AC. IF stays set: a CPL3 popfq could never set it again. */
#define SBX_SFMASK_BITS 0x40500

/* 1.6: patched syscall sites. The first time a `syscall` traps, the kernel may rewrite its site
 * (`mov $nr, %eax; syscall`, or `syscall; cmp $imm32, %rax`) into `jmp *disp32` through a record
 * here, whose code enters the kernel as a call would (no trap). The window's address is chosen
 * so that the two bytes the site's `syscall` leaves behind, disp32's upper half, are 0x37 0x00:
 * an invalid instruction in 64-bit mode, so a jump straight to the old `syscall` traps (#UD)
 * and the monitor turns it into the syscall it was (sbx_patch_resume). */
#define SBX_PATCH_ADDR SBX_U64(0x370000)
#define SBX_PATCH_BYTES SBX_U64(0x10000)
#define SBX_PATCH_REC 64 /* bytes of one struct sbx_patch_rec */
/* code[0] of a record of the first form (`mov $nr, %eax` re-done there). */
#define SBX_PATCH_FORM_MOV 0xb8
/* Where in code a call through a record of the second form (`syscall; cmp ...`) returns. */
#define SBX_PATCH_B_RET 14
/* 1.22: a record of a cpuid site the monitor rewrote at load (docs/architecture.md, "CPUID
 * without a trap"): code[0] is SBX_PATCH_FORM_CPUID, code[1] where the site's cpuid starts,
 * code[2] the bytes replaced; what runs starts at code[SBX_PATCH_CPUID_CODE]. The monitor fills
 * them from the top of the window down; the kernel's own end below bootinfo.patch_limit. */
#define SBX_PATCH_FORM_CPUID 0x0f
#define SBX_PATCH_CPUID_CODE 3

/* Syscall stack and IST stacks inside [SBX_KSTACK_ADDR, SBX_KSTACK_END). */
#define SBX_SYSCALL_STACK_TOP SBX_U64(0x180000)		     /* 512 KiB for the kernel's C code */
#define SBX_SYSCALL_FRAME_ADDR (SBX_SYSCALL_STACK_TOP - 128) /* struct sbx_syscall_frame */
/* The frame's rip, 0 while no syscall is in flight on a thread's vCPU (k_thread_entry clears
 * it, 1.26): a crash report tells a thread not in the program yet from one in a syscall. */
#define SBX_SYSCALL_FRAME_RIP 104
#define SBX_IST_STACK_BYTES SBX_U64(0x4000)
#define SBX_IST_COUNT 3 /* IST1: faults, IST2: #DF, IST3: NMI/#MC */
#define SBX_UPCALL_STACK_TOP                                                                       \
	SBX_U64(0x1a0000) /* where the kernel delivers a CPU fault's signal                        \
			   */
/* 1.7: each vCPU's own view of the kernel's stacks and per-CPU data: the top GiB of the map of
 * RAM's PML4 slot, which each vCPU's page tables point at its own pages. vCPU 0's window is
 * guest-physical [0, 2 MiB) in one large page (window offset == GPA, so its stacks are the ones
 * above); another vCPU's has only the pages the kernel gave it (SBX_CPU_* offsets). The entry
 * code addresses the window with absolute 64-bit addresses, so it needs no free register. */
#define SBX_WINDOW_VA SBX_U64(0x7fffc0000000)
#define SBX_WINDOW_SYSCALL_TOP (SBX_WINDOW_VA + SBX_SYSCALL_STACK_TOP)
#define SBX_WINDOW_IST_TOP(i) (SBX_WINDOW_SYSCALL_TOP + (i)*SBX_IST_STACK_BYTES)
#define SBX_CPU_OFF SBX_U64(0x1ff000) /* the per-CPU page (struct k_cpu, kernel-private) */
#define SBX_CPU_VA (SBX_WINDOW_VA + SBX_CPU_OFF)
/* In the per-CPU page, a u32 the monitor reads for reports: the tid of the thread the vCPU
 * runs, 0 while it has none. */
#define SBX_CPU_TID_OFF 0x800
/* 1.8: in the per-CPU page of a vCPU other than 0, the struct sbx_upcall of a CPU fault its
 * thread's program handles (vCPU 0's stays at SBX_UPCALL_ADDR), and the stack the monitor
 * starts the kernel's upcall entry on: below the syscall frame, free while the program runs. */
#define SBX_CPU_UPCALL_OFF 0xc00
#define SBX_WINDOW_UPCALL_TOP (SBX_WINDOW_SYSCALL_TOP - 256)
/* What of the syscall stack another vCPU's window maps: its top 128 KiB. */
#define SBX_CPU_STACK_BYTES SBX_U64(0x20000)
#define SBX_SIGSTATE_ADDR SBX_U64(0x16000) /* struct sbx_sigstate, kept by the kernel */
#define SBX_UPCALL_ADDR SBX_U64(0x17000)   /* struct sbx_upcall, written by the monitor */
/* 1.22: what `cpuid` answers on this VM (struct sbx_cpuid_table, written by the monitor from
 * KVM_GET_CPUID2), so that a patched cpuid site is answered without a trap. */
#define SBX_CPUID_ADDR SBX_U64(0x18000)
#define SBX_CPUID_BYTES SBX_U64(0x2000)
/* 1.24: the page-table entries a reset of repeated runs put back (struct sbx_exec_fix, `nfix` of
 * them), then the syscall sites earlier runs patched (`nsites` addresses), written by the
 * monitor before the run that follows. */
#define SBX_EXEC_FIX_ADDR SBX_U64(0x1a000)
#define SBX_EXEC_FIX_BYTES SBX_U64(0x2000)
#define SBX_EXEC_SITES_ADDR SBX_U64(0x1c000)
#define SBX_EXEC_SITES_MAX 512

#ifndef __ASSEMBLER__
/* The user's registers at its latest syscall, as the kernel's entry saved them (the guest's
 * own account: the monitor uses it only to describe a program that ended itself). */
struct sbx_syscall_frame {
	uint64_t r15, r14, r13, r12, rbp, rbx, rax, r9, r8, r10, rdx, rsi, rdi;
	uint64_t rip;	 /* %rcx at syscall: the return address */
	uint64_t rflags; /* %r11 at syscall */
	uint64_t rsp;	 /* the user's stack pointer */
};
_Static_assert(sizeof(struct sbx_syscall_frame) == 128, "syscall frame size");
_Static_assert(__builtin_offsetof(struct sbx_syscall_frame, rip) == SBX_SYSCALL_FRAME_RIP,
	       "syscall frame rip");

struct sbx_patch_rec {
	uint64_t code_addr; /* the `jmp *disp32` target: &code */
	uint8_t code[48];   /* what the site did, then a jump to the kernel's entry */
	uint64_t site;	    /* the patched address */
};
_Static_assert(sizeof(struct sbx_patch_rec) == SBX_PATCH_REC, "patch record size");
#endif

/* ---- Ports (CPL0 exits; `out %al, $imm8` so no register is clobbered) ------------------ */
#define SBX_PORT_FAULT_BASE 0xc0 /* port = base + vector, vectors 0..31 */
#define SBX_PORT_DOORBELL 0xe0	 /* CPL0 doorbell: serve the ring */

/* ---- Segment selectors the monitor loads into its GDT ---------------------------------- */
#define SBX_SEL_KCODE 0x08
#define SBX_SEL_KDATA 0x10
#define SBX_SEL_UDATA 0x1b
#define SBX_SEL_UCODE 0x23
#define SBX_SEL_TSS 0x28

/* ---- The kernel image header: first bytes of the embedded kernel blob ------------------ */
#define SBX_KERNEL_MAGIC SBX_U64(0x4c4e524b58425353) /* "SSBXKRNL" */
#ifndef __ASSEMBLER__
struct sbx_kernel_header {
	uint64_t magic;		/* SBX_KERNEL_MAGIC */
	uint32_t abi_version;	/* SBX_ABI_VERSION the kernel was built against */
	uint32_t header_size;	/* sizeof(struct sbx_kernel_header) */
	uint64_t syscall_entry; /* LSTAR */
	uint64_t vectors;	/* address of vector 0's stub; stubs are vector_stride apart */
	uint32_t vector_stride; /* bytes between exception stubs */
	uint32_t nvectors;	/* stubs present (32) */
	uint64_t image_end;	/* end of loaded bytes (text+data) */
	uint64_t bss_end;	/* end of zero-initialised memory */
	uint64_t upcall_entry;	/* where a CPU fault with a signal handler is handed back */
	/* 1.2 (header_size >= 72): where a sandbox run many times from one snapshot starts
	 * when its point is the program's entry (struct sbx_exec_ctl) */
	uint64_t exec_start;
	/* 1.22 (header_size >= 80): what a patched cpuid site's record calls, on the vCPU's
	 * syscall stack, %eax and %ecx the leaf and subleaf: it leaves %eax-%edx as cpuid
	 * would, from struct sbx_cpuid_table, and every other register as it was. */
	uint64_t cpuid_entry;
};
_Static_assert(sizeof(struct sbx_kernel_header) == 80, "kernel header size");

/* 1.22: at SBX_CPUID_ADDR. The vCPU's entries as KVM_GET_CPUID2 gives them (KVM's runtime
 * bits, OSXSAVE and the XSAVE sizes, included), rewritten when XCR0 changes. A leaf not here is
 * left to a real cpuid (KVM's answer for a leaf out of range). Guest RAM: a program that
 * writes it only lies to itself. */
#define SBX_CPUID_ENTS 255
#define SBX_CPUID_SIGNIFICANT_INDEX 1 /* flags: the entry is for this index (subleaf) only */
#ifndef __ASSEMBLER__
struct sbx_cpuid_table {
	uint32_t n;
	uint32_t seq; /* odd while the monitor rewrites the table: a reader tries again */
	struct sbx_cpuid_ent {
		uint32_t function, index, flags, eax, ebx, ecx, edx, pad;
	} e[SBX_CPUID_ENTS];
};
_Static_assert(sizeof(struct sbx_cpuid_table) <= SBX_CPUID_BYTES, "cpuid table size");
#endif

/* Signal dispositions, kept by the kernel where the monitor can read them: on a CPU fault the
 * monitor looks here to decide between a report and handing the fault back (an upcall). */
struct sbx_sigaction {
	uint64_t handler; /* IN: SIG_DFL 0, SIG_IGN 1, or an address */
	uint64_t flags;	  /* IN: SA_* */
	uint64_t restorer;
	uint64_t mask;
};
_Static_assert(sizeof(struct sbx_sigaction) == 32, "sigaction size");

struct sbx_sigstate {
	struct sbx_sigaction act[65]; /* IN: indexed by signal number */
	uint64_t blocked;	      /* IN: the signal mask */
	uint64_t ss_sp;		      /* IN: sigaltstack */
	uint32_t ss_flags, pad;
	uint64_t ss_size;
	uint64_t pending; /* IN: signals sent while blocked */
};
_Static_assert(sizeof(struct sbx_sigstate) <= 4096, "sigstate fits its page");

/* A CPU fault handed back to the kernel to deliver as a signal: the registers as the CPU left
 * them (DWARF order: rax rdx rcx rbx rsi rdi rbp rsp r8..r15 rip). */
struct sbx_upcall {
	uint32_t signo;	 /* OUT */
	int32_t code;	 /* OUT: si_code */
	uint64_t addr;	 /* OUT: si_addr */
	uint64_t err;	 /* OUT: the CPU's error code */
	uint64_t trapno; /* OUT: the vector */
	uint64_t r[17];	 /* OUT */
	uint64_t rflags; /* OUT */
};
_Static_assert(sizeof(struct sbx_upcall) == 176, "upcall size");
#endif

/* ---- The kernel's table of mappings (1.4): one entry per range, sorted and disjoint ---- */
#define SBX_MAX_VMAS 4096 /* Linux allows 65530 by default; more here is ENOMEM */
#define SBX_VMA_ELF 1	  /* kinds: the program's or its interpreter's pages */
#define SBX_VMA_VDSO 2
#define SBX_VMA_HEAP 3
#define SBX_VMA_STACK 4
#define SBX_VMA_ANON 5
#define SBX_VMA_FILE 6
#define SBX_VMA_SHARED 7 /* 1.5: a shared file mapping, VA == its window's GPA */
#ifndef __ASSEMBLER__
struct sbx_vma {
	uint64_t start, end; /* page aligned, start < end */
	uint8_t prot;	     /* SBX_PROT_*: as mmap and mprotect set it */
	/* SBX_PROT_* the page tables give these pages (the kernel's own bookkeeping) */
	uint8_t ptprot;
	uint8_t kind;  /* SBX_VMA_* */
	uint8_t flags; /* SBX_VMA_F_* (1.5; zero before) */
	uint8_t pad[4];
};
_Static_assert(sizeof(struct sbx_vma) == 24, "vma size");
/* Pages on first touch (MAP_NORESERVE): the kernel takes a page when the program first touches
 * one (its page-fault handler), not at mmap. */
#define SBX_VMA_F_LAZY 1
#endif

/* ---- Boot information: the monitor fills this page before the first instruction ------- */
#define SBX_MAX_SYSCALL 512
#define SBX_BOOT_CPL0 1	       /* flags: user code and kernel run at CPL0 */
#define SBX_BOOT_STRACE 2      /* flags: report every syscall with SBX_CALL_TRACE */
#define SBX_BOOT_POLLING 4     /* flags: a monitor thread polls the ring */
#define SBX_BOOT_EXEC 8	       /* flags: run many times from a snapshot (sbx_exec_ctl, 1.2) */
#define SBX_BOOT_WARM 16       /* flags: the first read of fd 0 is the snapshot point (1.2) */
#define SBX_BOOT_EXIT_PARKS 32 /* flags: exit(status) ends a run, not the program (1.2) */
#define SBX_BOOT_NOPATCH 64    /* flags: never patch a syscall site (--no-patch, 1.6) */
/* flags: another vCPU may keep a translation a page-table change removed (hardware KVM: no
 * shadow page tables): the kernel asks for TLB_SHOOTDOWN after such a change (1.7). */
#define SBX_BOOT_SHOOTDOWN 128

/* Byte offset of sbx_bootinfo.xfeatures, for the kernel's assembly. */
#define SBX_BOOT_XFEATURES 472
/* XSAVE components (the bit numbers of XCR0). */
#define SBX_XFEATURES_LINUX SBX_U64(0xe7)  /* x87 SSE AVX opmask ZMM_Hi256 Hi16_ZMM */
#define SBX_XFEATURES_AMX SBX_U64(0x60000) /* XTILECFG, XTILEDATA: only on request */
/* Protections, as PROT_READ, PROT_WRITE and PROT_EXEC. */
#define SBX_PROT_READ 1
#define SBX_PROT_WRITE 2
#define SBX_PROT_EXEC 4
/* The protection a page fault with error code err needed: write, execute, or any at all (on x86
 * every mapping but PROT_NONE can be read). The guest's #PF entry and the monitor's report both
 * judge a first touch by it. */
#define SBX_PF_NEED(err)                                                                           \
	(((err)&SBX_PF_WRITE)	? SBX_PROT_WRITE                                                   \
	 : ((err)&SBX_PF_FETCH) ? SBX_PROT_EXEC                                                    \
				: SBX_PROT_READ | SBX_PROT_WRITE | SBX_PROT_EXEC)
/* Every page range a 16-PT_LOAD program can need (loader.h: LOADER_MAX_RANGES). */
#define SBX_BOOT_MAX_SEGS 32

#ifndef __ASSEMBLER__
/* One page range of the program's image, in pages (guest RAM is at most 64 GiB). */
struct sbx_boot_seg {
	uint32_t page;	 /* OUT: first page (address >> 12) */
	uint32_t npages; /* OUT: > 0 */
	uint32_t prot;	 /* OUT: SBX_PROT_* */
};
_Static_assert(sizeof(struct sbx_boot_seg) == 12, "boot segment size");

struct sbx_bootinfo {
	uint32_t abi_version; /* OUT: SBX_ABI_VERSION of the monitor */
	uint32_t flags;	      /* OUT: SBX_BOOT_* */
	uint64_t mem_size;    /* OUT: bytes of guest RAM */
	uint64_t brk_start;   /* OUT: first byte after the program's segments (page aligned) */
	uint64_t mmap_base;   /* OUT: lowest address mmap may hand out */
	uint64_t mmap_top;    /* OUT: mmap hands out addresses below this (the stack guard) */
	uint64_t stack_top;   /* OUT: highest stack address */
	uint64_t tsc_hz;      /* OUT: guest TSC frequency */
	uint64_t tsc_at_boot; /* OUT: guest TSC when the clocks below were read */
	int64_t realtime_ns;  /* OUT: CLOCK_REALTIME at tsc_at_boot */
	int64_t monotonic_ns; /* OUT: CLOCK_MONOTONIC at tsc_at_boot */
	uint32_t pid;	      /* OUT: the guest's pid (and tid) */
	uint32_t ppid;	      /* OUT */
	uint32_t uid, gid;    /* OUT */
	uint32_t umask;	      /* OUT: initial umask */
	uint32_t spin_us;     /* OUT: how long to spin on the ring before ringing the doorbell */
	uint64_t spin_tsc;    /* OUT: spin_us in TSC ticks */
	uint64_t nofile;      /* OUT: the sandbox's RLIMIT_NOFILE (1.3: SBX_CALL_NOFILE) */
	char exe_path[256];   /* OUT: guest path of the program (readlink /proc/self/exe) */
	char hostname[64];    /* OUT: uname nodename */
	uint64_t tsc_mult;    /* OUT: nanoseconds per TSC tick, 32.32 fixed point */
	/* OUT: CLOCK_MONOTONIC when the program started, as the guest counts it: its CPU time
	 * and uptime are measured from here. Not monotonic_ns, which a restore moves to keep the
	 * clocks continuous (1.1). */
	int64_t start_ns;
	/* OUT: bumped whenever the monitor moves the clock fields (restore, migration); readers
	 * retry when it changed under them. */
	uint32_t clock_seq;
	uint32_t pad0;
	/* IN: requests for memory refused for lack of it (mmap, brk), for out-of-memory
	 * reports (1.2) */
	uint32_t enomem;
	uint32_t pad1;
	/* 1.3: the extended (XSAVE) state. The kernel saves exactly the components of
	 * `xfeatures` in a signal frame or at the snapshot point, never what `xgetbv` says: under
	 * PVM on some hosts XCR0 shows the host's own set (AMX included), larger than the guest's
	 * save area. */
	uint64_t xfeatures;	     /* OUT: components enabled now (x87, SSE, AVX, AVX-512...) */
	uint64_t xfeatures_dynamic;  /* OUT: components the program may ask for (AMX) */
	uint64_t xfeatures_request;  /* IN: the set the kernel asks for at its next doorbell */
	uint32_t xsave_bytes;	     /* OUT: bytes of a standard-format XSAVE of `xfeatures` */
	uint32_t xsave_bytes_max;    /* OUT: the same with every dynamic component added */
	uint64_t xfeatures_reserved; /* zero */
	/* 1.3: the program's layout, from which the kernel builds its table of mappings (which
	 * buffers a syscall may read or write). A kernel of 1.2 or older never reads these. */
	uint32_t nsegs;	     /* OUT: entries used in segs (<= SBX_BOOT_MAX_SEGS) */
	uint32_t stack_prot; /* OUT: SBX_PROT_* of the stack [mmap_top + page, stack_top) */
	uint64_t vdso_end;   /* OUT: page-rounded end of the vDSO image at SBX_VDSO_ADDR */
	/* OUT: the ELF's pages, sorted and disjoint, as the monitor's page tables map them (a
	 * page two PT_LOADs share has the union of their protections); gaps are unmapped. */
	struct sbx_boot_seg segs[SBX_BOOT_MAX_SEGS];
	/* CPU time (1.3): CLOCK_PROCESS_CPUTIME_ID and its kin are the time since start_ns less
	 * the time the guest spent waiting on the host, still read without an exit.
	 * OUT: nanoseconds (the monitor's CLOCK_MONOTONIC) the monitor spent waiting for the
	 * guest's requests: SLEEP, POLL, reads and writes of its stdio blocking on a pipe or a
	 * terminal. Only grows, and only while a request is served. */
	uint64_t waited_ns;
	/* IN: what of waited_ns the kernel took off its CPU-time clocks: each request's share
	 * capped at the request's own duration on the guest's clock (the two clocks run at
	 * slightly different rates, and CPU time must never go back). Reset with start_ns. */
	uint64_t idle_ns;
	/* 1.4: where the kernel keeps its table of mappings (struct sbx_vma), so that the monitor
	 * can show /proc/self/maps and the Vm* lines of /proc/self/status. The monitor only reads
	 * them, copies them out once and checks every entry. */
	uint64_t vma_table; /* IN: guest address of struct sbx_vma[SBX_MAX_VMAS], or 0 */
	uint64_t vma_count; /* IN: guest address of the uint32_t count of entries in use */
	/* 1.5: page-table pages the kernel took from RAM outside [SBX_PT_ADDR, SBX_PT_END): a
	 * reset that puts one back must make KVM read the tables again. Read like vma_table. */
	uint64_t pt_table; /* IN: guest address of uint32_t page numbers, or 0 */
	uint64_t pt_count; /* IN: guest address of the uint32_t count of them */
	/* 1.6: syscall sites patched (records in use at SBX_PATCH_ADDR), and traps at sites of a
	 * patchable form that were not (the window full, a site across a page). */
	uint32_t patched;
	uint32_t patch_refused;
	/* 1.7: threads. OUT: guest threads (vCPUs) that may exist at once, main included
	 * (--max-threads), and host CPUs they may run on (--cpus): sched_getaffinity's mask. */
	uint32_t max_threads;
	uint32_t ncpus;
	/* IN: threads started, and the most alive at once, for --stats. */
	uint32_t threads_started;
	uint32_t threads_peak;
	/* 1.9: processes. OUT: the process group and session (setpgid, setsid change them
	 * through PGRP). sig_incoming, OUT: signals other processes of the sandbox sent (kill,
	 * SIGCHLD), a bit per signal, set by the monitor with an atomic or; the kernel takes
	 * them with an atomic exchange into its pending set. */
	uint32_t pgid;
	uint32_t sid;
	uint64_t sig_incoming;
	/* 1.11: OUT: the CPU time and the largest RAM of the children this process waited for,
	 * and theirs (getrusage RUSAGE_CHILDREN, times). */
	uint64_t children_cpu_ns;
	uint64_t children_maxrss_kib;
	/* IN and OUT: the nice value and the personality the program set, which fork copies
	 * with the page and the monitor carries across execve. */
	int32_t nice;
	uint32_t persona;
	/* IN: per-syscall counters of calls the kernel did not implement (ENOSYS) */
	uint32_t nosys_count[SBX_MAX_SYSCALL];
	/* 1.12: OUT: who sent each signal of sig_incoming, for its siginfo (the last sender: a
	 * standard signal does not queue), written by the monitor before it sets the bit. */
	struct sbx_sigfrom {
		uint32_t pid; /* the sender, or the child that ended (SIGCHLD); 0: a timer */
		int16_t code; /* si_code: SI_USER, SI_KERNEL, CLD_EXITED, CLD_KILLED, CLD_DUMPED */
		int16_t status; /* SIGCHLD: the child's exit code, or the signal that ended it */
	} sig_from[64];
	/* 1.13: OUT: the tid the process's next thread gets, which the monitor holds for it in
	 * the sandbox's pid space (0: none yet, TID asks). THREAD_START and THREAD_RUN name the
	 * tid they give and write the next one here. */
	uint32_t tid_next;
	/* 1.17: IN: prctl(PR_SET_PDEATHSIG)'s signal, 0 for none: the monitor sends it when the
	 * parent process ends. A fork's child starts with 0; execve keeps it. */
	uint32_t pdeathsig;
	/* 1.17: IN and OUT: the process's name (/proc's comm, PR_SET_NAME from its main thread),
	 * NUL-terminated: the monitor writes the last component of the path execve ran, the
	 * kernel what the program sets. */
	char comm[16];
	/* 1.22: OUT: patch records [0, patch_limit) at SBX_PATCH_ADDR are the kernel's to hand
	 * out; those above hold the cpuid sites the monitor rewrote at load. 0: all of them. */
	uint32_t patch_limit;
	/* 1.26: IN and OUT: ioprio_set's I/O priority (class << 13 | data, 0: none set), which fork
	 * copies with the page and the monitor carries across execve, as nice. */
	uint32_t ioprio;
	/* 1.28: IN and OUT: sched_setaffinity's vCPUs (a bit each, 0: all) of the thread that
	 * calls execve, which the monitor carries across it, as nice: the new image's thread
	 * starts with them, as Linux's keeps its affinity. */
	uint64_t affinity;
	uint8_t tail[4096 - 1024 - 4 * SBX_MAX_SYSCALL - 8 * 64 - 8 - 16 - 4 - 4 - 8 - 64];
	/* 1.23: KVM's, not the monitor's: vCPU 0's steal time (MSR_KVM_STEAL_TIME's record), the
	 * nanoseconds its host thread waited for a CPU while it had work, added by KVM as the
	 * vCPU enters the guest. The CPU-time clocks subtract it while threads_started is 0. The
	 * monitor zeroes it with the page (a new image), at a repeated run's reset, and in a fork
	 * child of a parent with threads; a fork copies it otherwise, as it copies idle_ns. All
	 * zero where the host keeps no steal time. */
	struct sbx_steal {
		uint64_t steal;
		uint32_t version;
		uint32_t flags;
		uint8_t preempted;
		uint8_t pad[47];
	} steal;
};
_Static_assert(sizeof(struct sbx_steal) == 64, "KVM's struct kvm_steal_time");
_Static_assert(__builtin_offsetof(struct sbx_bootinfo, steal) == 4032, "steal: 64-byte aligned");
_Static_assert(sizeof(struct sbx_bootinfo) == 4096, "bootinfo is one page");
_Static_assert(__builtin_offsetof(struct sbx_bootinfo, max_threads) == 968, "1.7 fields");
_Static_assert(__builtin_offsetof(struct sbx_bootinfo, xfeatures) == SBX_BOOT_XFEATURES,
	       "xfeatures offset (entry.S reads it)");
_Static_assert(__builtin_offsetof(struct sbx_bootinfo, xsave_bytes) == 496, "xsave_bytes offset");
_Static_assert(__builtin_offsetof(struct sbx_bootinfo, enomem) == 464, "bootinfo enomem");
_Static_assert(__builtin_offsetof(struct sbx_bootinfo, nsegs) == 512, "bootinfo nsegs");
_Static_assert(__builtin_offsetof(struct sbx_bootinfo, stack_prot) == 516, "bootinfo stack_prot");
_Static_assert(__builtin_offsetof(struct sbx_bootinfo, vdso_end) == 520, "bootinfo vdso_end");
_Static_assert(__builtin_offsetof(struct sbx_bootinfo, segs) == 528, "bootinfo segs");
_Static_assert(__builtin_offsetof(struct sbx_bootinfo, waited_ns) == 912, "waited_ns at 912");
_Static_assert(__builtin_offsetof(struct sbx_bootinfo, idle_ns) == 920, "idle_ns at 920");
_Static_assert(__builtin_offsetof(struct sbx_bootinfo, vma_table) == 928, "vma_table at 928");
_Static_assert(__builtin_offsetof(struct sbx_bootinfo, vma_count) == 936, "vma_count at 936");
_Static_assert(__builtin_offsetof(struct sbx_bootinfo, pt_table) == 944, "pt_table at 944");
_Static_assert(__builtin_offsetof(struct sbx_bootinfo, pt_count) == 952, "pt_count at 952");
_Static_assert(__builtin_offsetof(struct sbx_bootinfo, sig_incoming) == 992, "1.9 fields");
_Static_assert(__builtin_offsetof(struct sbx_bootinfo, children_cpu_ns) == 1000, "1.11 fields");
_Static_assert(__builtin_offsetof(struct sbx_bootinfo, persona) == 1020, "1.11 fields");
_Static_assert(__builtin_offsetof(struct sbx_bootinfo, nosys_count) == 1024, "bootinfo nosys");
_Static_assert(__builtin_offsetof(struct sbx_bootinfo, sig_from) == 3072, "1.12 fields");
_Static_assert(__builtin_offsetof(struct sbx_bootinfo, tid_next) == 3584, "1.13 fields");
_Static_assert(__builtin_offsetof(struct sbx_bootinfo, pdeathsig) == 3588, "1.17 fields");
_Static_assert(__builtin_offsetof(struct sbx_bootinfo, comm) == 3592, "1.17 fields");
_Static_assert(__builtin_offsetof(struct sbx_bootinfo, patch_limit) == 3608, "1.22 fields");
_Static_assert(__builtin_offsetof(struct sbx_bootinfo, affinity) == 3616, "1.28 fields");
#endif

/* ---- Hypercall numbers (sbx_calls.h describes each call) ------------------------------ */
#include "sbx_calls.h"
#ifndef __ASSEMBLER__
#define SBX_CALL_ENUM(NAME, nr, name, fn, flags, args) SBX_CALL_##NAME = nr,
enum sbx_call { SBX_CALL_NONE = 0, SBX_CALLS(SBX_CALL_ENUM) SBX_CALL_COUNT };
#undef SBX_CALL_ENUM
#endif

/* ---- Repeated runs from one snapshot (1.2; monitor/exec/, docs/exec.md) ----------------
 * A sandbox that serves many requests or fuzz inputs is snapshotted once, at a point, and
 * every run starts there. (A point reached after a thread started is POINT's, not a park, and
 * its runs end at the program's exit, 1.16, or at the fuzz driver's SBX_EXEC_OP_DONE, 1.25.) A run
 * ends when the kernel "parks": it bumps `done`, then waits, touching nothing but this page, until
 * the monitor bumps `go`. Meanwhile the monitor puts back the pages the run wrote (never this
 * page). The kernel then restores the point's context itself (registers, FS/GS bases, extended
 * state), so a run can start without a VM exit. When SBX_EXEC_NEED_WAKEUP is set the kernel rings
 * the doorbell once parked, and the monitor holds the vCPU in that exit until the next run. Every
 * field the kernel reads is rewritten by the monitor before each run; what the kernel writes is
 * only ever a hint to the monitor. */
#define SBX_EXEC_NEED_WAKEUP 1
#define SBX_EXEC_AT_POINT 0x100 /* `status` of the park at the point (not a run's end) */
/* 1.25: `status` of a run that ended at SBX_EXEC_OP_DONE after a point taken with threads (the
 * driver's POINT, as --warm's: every vCPU paused): the kernel cannot park such a process, so it
 * ends the run by EXIT with this status written first, and every run starts from a full reset. */
#define SBX_EXEC_RUN_DONE 0x200
/* The fuzz driver's private syscall (guest-abi/fuzz/sbx_fuzz.h): rdi = operation. */
#define SBX_SYS_EXEC 1024
#define SBX_EXEC_OP_POINT                                                                          \
	1 /* rsi: counters, rdx: their bytes, r10: input buffer, r8: its                           \
	   * bytes. Snapshot here; returns each run's input length n, whose                        \
	   * bytes end the buffer (at r10 + r8 - n), so a read past them                           \
	   * reaches the driver's guard page. */
#define SBX_EXEC_OP_DONE                                                                           \
	2 /* the run is over: no return once the driver's point is taken (-EINVAL before it, off   \
	   * the main thread, after --warm's point) */
/* 1.24: the kernel's first-use work now (the map of RAM, the page allocator), so that a
 * snapshot at the program's entry holds it and no run repeats it */
#define SBX_EXEC_OP_READY 3
#ifndef __ASSEMBLER__
struct sbx_exec_ctl {
	uint64_t go;	    /* OUT: changed to start a run */
	uint64_t done;	    /* IN: bumped when a run ends (and at the point) */
	uint32_t flags;	    /* OUT: SBX_EXEC_NEED_WAKEUP */
	uint32_t status;    /* IN: the run's exit status */
	uint64_t entry_rip; /* OUT: where a run starts when the point is the entry */
	uint64_t entry_rsp; /* OUT: its stack (argc), built by the monitor for this run */
	uint64_t input_len; /* OUT: SBX_EXEC_OP_POINT's result for this run */
	uint64_t counters;  /* IN: SBX_EXEC_OP_POINT's arguments, as the driver gave them */
	uint64_t ncounters; /* IN */
	uint64_t input;	    /* IN */
	uint64_t input_max; /* IN */
	uint32_t nfix;	    /* OUT (1.24): entries at SBX_EXEC_FIX_ADDR for the kernel to write */
	uint32_t nsites;    /* OUT (1.24): sites at SBX_EXEC_SITES_ADDR to patch before the run */
	uint32_t repatched; /* IN (1.24): how many of them the kernel patched */
	uint32_t pad;
};
_Static_assert(sizeof(struct sbx_exec_ctl) == 96, "exec control size");
/* 1.24: a page-table page the monitor put back with the run's vCPU spinning, and which of its
 * 512 entries changed. KVM shadows guest page tables and never sees the monitor's writes; the
 * kernel writes each changed entry again (its current value) before the run, then flushes its
 * TLB, so KVM drops exactly the translations that went (docs/architecture.md, "Repeated runs"). */
struct sbx_exec_fix {
	uint64_t gpa;	     /* the page, page-aligned */
	uint64_t changed[8]; /* bit i of word i / 64: entry i */
};
#define SBX_EXEC_FIX_MAX (SBX_EXEC_FIX_BYTES / sizeof(struct sbx_exec_fix))
#endif
#define SBX_EXEC_GO 0
#define SBX_EXEC_DONE 8
#define SBX_EXEC_FLAGS 16
#define SBX_EXEC_STATUS 20
#define SBX_EXEC_ENTRY_RIP 24
#define SBX_EXEC_ENTRY_RSP 32
#define SBX_EXEC_NFIX 80 /* and nsites after it: the two read as one word */

/* SBX_CALL_CLOSE a2 (1.10): a range (close_range), with Linux's CLOSE_RANGE_CLOEXEC (4). */
#define SBX_CLOSE_RANGE 0x80000000u
#define SBX_CLOSE_RANGE_CLOEXEC 4u

/* SBX_CALL_ITIMER (1.11): the process's ITIMER_REAL, in nanoseconds. IN: the new timer (when
 * setting); OUT: the one it replaces, value being the time left (0: disarmed). */
#ifndef __ASSEMBLER__
struct sbx_itimer {
	int64_t value_ns, interval_ns;
};
_Static_assert(sizeof(struct sbx_itimer) == 16, "sbx_itimer");
/* SBX_CALL_ITIMER a2 (1.13): 0 ITIMER_REAL, 1..SBX_PTIMERS the POSIX timer a2 - 1, whose
 * signal (a3; 0: none, SIGEV_NONE) comes with si_code SI_TIMER, its id and a4 as si_value's
 * int (struct sbx_sigfrom: pid the value, status the id). */
#define SBX_PTIMERS 8

/* SBX_CALL_TIMERFD a0 (1.13). */
#define SBX_TIMERFD_CREATE 0
#define SBX_TIMERFD_SETTIME 1
#define SBX_TIMERFD_GETTIME 2

/* SBX_CALL_READV/WRITEV off (1.11): with SBX_RW_SOCK, a recvmsg/sendmsg of a socket with the
 * MSG_* flags in the low 32 bits (ENOTSOCK on any other handle). SBX_CALL_SOCKOP a0. */
#define SBX_RW_SOCK (SBX_U64(1) << 62)
#define SBX_SOCKOP_CHECK 0    /* is a1 a socket: 0, ENOTSOCK, EBADF */
#define SBX_SOCKOP_SHUTDOWN 1 /* a2: how */
#define SBX_SOCKOP_GETOPT 2   /* a2: level, a3: name: the int value (a timeout: in us) */
#define SBX_SOCKOP_SETOPT 3   /* a2: level, a3: name, a4: the int value (a timeout: in us) */
/* 1.19: local sockets with names. a2: guest-physical address of a struct sockaddr_un (the
 * kernel's copy), a3: its length (2..110). BIND: a path on a writable mount (made there), an
 * abstract name (sun_path[0] 0: the sandbox's own namespace) or none (length 2: an abstract
 * name chosen). CONNECT: a socket this sandbox bound, by path or abstract name (EACCES for
 * any other socket file); it may wait (a full backlog), as ACCEPT does: both are made without
 * the kernel's lock and end with -EINTR for a signal or a pause. LISTEN a2: backlog. ACCEPT
 * a2: SOCK_NONBLOCK | SOCK_CLOEXEC: the new handle. NAME a2: 0 the socket's own address, 1
 * its peer's; a3: guest-physical address of 110 bytes: the address's length (ENOTCONN for a
 * peer it has not). */
#define SBX_SOCKOP_BIND 4
#define SBX_SOCKOP_CONNECT 5
#define SBX_SOCKOP_LISTEN 6
#define SBX_SOCKOP_ACCEPT 7
#define SBX_SOCKOP_NAME 8
/* 1.19: SCM_RIGHTS. SCM_SEND a2: guest-physical address of int32 guest fds, a3: how many
 * (1..253): staged for this vCPU's next WRITEV with SBX_RW_CTL, which sends them with its
 * bytes. A READV with SBX_RW_CTL installs the descriptors that came with its bytes; SCM_TAKE
 * a2: guest-physical address of the control buffer, a3: its length: them as one SCM_RIGHTS
 * message (those that do not fit closed): its length | (1 << 32 if MSG_CTRUNC). */
#define SBX_SCM_MAX 253 /* Linux's SCM_MAX_FD */
#define SBX_SOCKOP_SCM_SEND 9
#define SBX_SOCKOP_SCM_TAKE 10
#define SBX_RW_CTL (SBX_U64(1) << 61)
/* 1.20: addresses with datagrams, and the peer's credentials. SENDTO a2, a3: a struct
 * sockaddr_un as BIND's: the destination of this vCPU's next WRITEV with SBX_RW_NAME (0), or 1
 * when the socket ignores one (SOCK_SEQPACKET, as Linux's). A READV with SBX_RW_NAME keeps
 * the sender's address, which NAME_TAKE a2 (guest-physical address of 110 bytes) writes: its
 * length, 0 for an unnamed sender. PEERCRED a2: guest-physical address of a struct ucred
 * (pid, uid, gid): the peer's, as Linux's SO_PEERCRED (the pair's maker, the listener, or the
 * process that connected). */
#define SBX_SOCKOP_SENDTO 11
#define SBX_SOCKOP_NAME_TAKE 12
#define SBX_SOCKOP_PEERCRED 13
#define SBX_RW_NAME (SBX_U64(1) << 60)

/* Job control (1.21): PGRP's a0 for the caller's own stop, and WAIT's a1 bit for no ended child
 * (sbx_calls.h). */
#define SBX_PGRP_STOP 4
#define SBX_WAIT_NOEXIT 0x10

/* SBX_CALL_WAIT a2 (1.11), OUT: what the child reaped used, with its own reaped children: its
 * vCPU threads' CPU time (the guest's and the monitor's serving it) and its RAM at its end. */
struct sbx_rusage {
	int64_t cpu_ns, maxrss_kib;
};
_Static_assert(sizeof(struct sbx_rusage) == 16, "sbx_rusage");
#endif

/* Exit status encoding for SBX_CALL_EXIT: a status 0..255, or one of these with a signal. */
#define SBX_EXIT_SIGNALED 0x100	 /* | signal: killed by a fatal signal's default action */
#define SBX_EXIT_NODELIVER 0x800 /* | signal: the kernel could not deliver an upcall's signal */
#define SBX_EXIT_DEADLOCK 0x400	 /* futex wait with no other thread to wake it */

/* Linux-compatible constants the two sides share (values are the x86-64 Linux ones). */
#define SBX_AT_FDCWD (-100)

/* SBX_CALL_EXECVE a4, beside the AT_* flags (1.15), for a process with other threads, which
 * Linux ends at the point of no return. CHECK: everything up to that point (the file, the
 * policy, the interpreters, the ELF), then 0 or the error, nothing changed; the kernel ends
 * the other threads only after it. FINAL: they have ended, so a failure now ends the process
 * (SIGKILL, named) as Linux's does past that point. */
#define SBX_EXECVE_CHECK (1u << 30)
#define SBX_EXECVE_FINAL (1u << 29)

/* 1.27: FORK's a0 | SBX_FORK_VFORK_APART, from a threaded caller's CLONE_VFORK (which it leaves
 * out: its wait is the FORK with a1 after, without its kernel's lock): the child's writes go
 * back to the parent at VFORK_EXIT as a vfork's do, while the parent's other threads are held
 * for the lend of its RAM (docs/architecture.md, "Processes"). */
#define SBX_FORK_VFORK_APART (SBX_U64(1) << 40)

/* ---- Argument structs (all live inside a ring slot) ------------------------------------ */
#ifndef __ASSEMBLER__
struct sbx_rw {
	int32_t fd;   /* IN */
	uint32_t pad; /* IN: zero */
	uint64_t buf; /* IN: guest-physical address (1.5; VA == GPA before) */
	uint64_t len; /* IN: bytes (or iovcnt for READV/WRITEV) */
	int64_t off;  /* IN: file offset for PREAD/PWRITE */
};
_Static_assert(sizeof(struct sbx_rw) == 32, "sbx_rw size");
#endif

#ifndef __ASSEMBLER__
struct sbx_iovec {
	uint64_t base; /* IN: guest address */
	uint64_t len;  /* IN */
};
_Static_assert(sizeof(struct sbx_iovec) == 16, "sbx_iovec size");
#endif

/* The terminal requests IOCTL carries (1.20: the pseudo-terminals' with it), each with how its
 * argument travels: IN, the bytes the program points at, copied to the kernel (a2 their kernel
 * address); OUT, the bytes the monitor writes back (a2 a kernel buffer); VAL, the argument
 * itself (a2); NONE, no argument. Any other request is ENOTTY without a call. The kernel's
 * struct termios is 36 bytes, struct winsize 8. */
#define SBX_IOCTL_NONE 0
#define SBX_IOCTL_IN 1
#define SBX_IOCTL_OUT 2
#define SBX_IOCTL_VAL 3
#define SBX_TTY_IOCTLS(X)                                                                          \
	X(TCGETS, 0x5401, SBX_IOCTL_OUT, 36)                                                       \
	X(TCSETS, 0x5402, SBX_IOCTL_IN, 36)                                                        \
	X(TCSETSW, 0x5403, SBX_IOCTL_IN, 36)                                                       \
	X(TCSETSF, 0x5404, SBX_IOCTL_IN, 36)                                                       \
	X(TCSBRK, 0x5409, SBX_IOCTL_VAL, 0)                                                        \
	X(TCXONC, 0x540a, SBX_IOCTL_VAL, 0)                                                        \
	X(TCFLSH, 0x540b, SBX_IOCTL_VAL, 0)                                                        \
	X(TIOCSCTTY, 0x540e, SBX_IOCTL_VAL, 0)                                                     \
	X(TIOCGPGRP, 0x540f, SBX_IOCTL_OUT, 4)                                                     \
	X(TIOCSPGRP, 0x5410, SBX_IOCTL_IN, 4)                                                      \
	X(TIOCOUTQ, 0x5411, SBX_IOCTL_OUT, 4)                                                      \
	X(TIOCGWINSZ, 0x5413, SBX_IOCTL_OUT, 8)                                                    \
	X(TIOCSWINSZ, 0x5414, SBX_IOCTL_IN, 8)                                                     \
	X(FIONREAD, 0x541b, SBX_IOCTL_OUT, 4)                                                      \
	X(TIOCPKT, 0x5420, SBX_IOCTL_IN, 4)                                                        \
	X(TIOCNOTTY, 0x5422, SBX_IOCTL_NONE, 0)                                                    \
	X(TCSBRKP, 0x5425, SBX_IOCTL_VAL, 0)                                                       \
	X(TIOCGSID, 0x5429, SBX_IOCTL_OUT, 4)                                                      \
	X(TIOCGPTN, 0x80045430, SBX_IOCTL_OUT, 4)                                                  \
	X(TIOCSPTLCK, 0x40045431, SBX_IOCTL_IN, 4)                                                 \
	X(TIOCGPKT, 0x80045438, SBX_IOCTL_OUT, 4)                                                  \
	X(TIOCGPTLCK, 0x80045439, SBX_IOCTL_OUT, 4)                                                \
	X(TIOCGPTPEER, 0x5441, SBX_IOCTL_VAL, 0)

#ifndef __ASSEMBLER__
/* OPEN's answer for a FIFO whose open waits for its other end (1.19): never an errno. */
#define SBX_EOPEN_WAITS 1024
/* READ's and READV's answer for a signalfd (1.20): the kernel reads it (SIGNALFD). */
#define SBX_ESIGNALFD 1025
#define SBX_SIGFD_MAKE 0
#define SBX_SIGFD_ASK 1
#define SBX_SIGFD_SYNC 2

struct sbx_path {
	int32_t dirfd;	    /* IN: guest fd or SBX_AT_FDCWD */
	uint32_t flags;	    /* IN: O_* for OPEN, AT_* for STAT/UNLINK/ACCESS */
	uint64_t path;	    /* IN: guest address of the path (not NUL-terminated) */
	uint32_t path_len;  /* IN: bytes at path, < SBX_PATH_MAX */
	uint32_t mode;	    /* IN: creation mode, or access mode for ACCESS */
	uint64_t buf;	    /* IN: guest address of the result buffer (STAT, READLINK) */
	uint64_t buf_len;   /* IN: bytes at buf */
	int32_t dirfd2;	    /* IN: RENAME: new dirfd */
	uint32_t path2_len; /* IN: RENAME: bytes of the new path */
	uint64_t path2;	    /* IN: RENAME: guest address of the new path */
};
_Static_assert(sizeof(struct sbx_path) == 56, "sbx_path size");
#endif

#define SBX_PATH_MAX 4096
#define SBX_IOV_MAX 1024
#define SBX_MAX_POLL 1024   /* pollfd entries in one SBX_CALL_POLL */
#define SBX_EPOLL_BATCH 128 /* struct epoll_event (12 bytes) in one SBX_CALL_EPOLL_WAIT */

/* ---- The request ring ------------------------------------------------------------------ */
/* The guest is the only producer (head), the monitor the only consumer (tail). A request is
 * published by writing its slot, then `seq`, then advancing `head` (release). The monitor copies
 * the slot out before it looks at any field, then writes `ret` and finally `done = seq`
 * (release). When no thread polls, the monitor sets SBX_RING_NEED_WAKEUP and the guest rings
 * the doorbell after publishing (a full barrier between publishing head and reading flags). */
#define SBX_RING_SLOTS 32
#define SBX_RING_NEED_WAKEUP 1
/* 1.7, in a slot's pad: a request that waits (PARK, SLEEP) with the monitor's lock released;
 * only the calling vCPU's own thread serves it (after a doorbell), never the poller. */
#define SBX_SLOT_OWN 1
/* 1.29, OUT in a slot's `done` while it is not served: seq | this. A poller serving several
 * rings leaves a request that may wait to the vCPU's own thread: ring the doorbell now rather
 * than spin until spin_tsc. An older kernel spins, then rings. */
#define SBX_DONE_RING SBX_U64(0x8000000000000000)

#ifndef __ASSEMBLER__
struct sbx_slot {
	uint32_t nr;  /* IN: enum sbx_call */
	uint32_t pad; /* IN: zero, or SBX_SLOT_OWN (1.7) */
	uint64_t seq; /* IN: request sequence number, increasing from 1 */
	union {	      /* IN: arguments */
		uint64_t a[7];
		struct sbx_rw rw;
		struct sbx_path path;
	} u;
	int64_t ret;   /* OUT: result >= 0 or -errno */
	uint64_t done; /* OUT: seq of the completed request */
};
_Static_assert(sizeof(struct sbx_slot) == 88, "slot size");
#endif

#ifndef __ASSEMBLER__
struct sbx_ring {
	uint32_t abi_version; /* IN: the kernel writes SBX_ABI_VERSION before its first request */
	uint32_t flags;	      /* OUT: SBX_RING_NEED_WAKEUP */
	uint32_t head;	      /* IN: next slot the guest fills (free-running) */
	uint32_t pad0;
	uint32_t tail; /* OUT: next slot the monitor serves (free-running) */
	uint32_t pad1;
	uint64_t doorbells; /* IN: doorbells rung (informational) */
	uint8_t pad2[32];
	struct sbx_slot slots[SBX_RING_SLOTS];
};
_Static_assert(sizeof(struct sbx_ring) == 64 + 88 * SBX_RING_SLOTS, "ring size");
_Static_assert(sizeof(struct sbx_ring) <= SBX_RING_BYTES, "ring fits its pages");
#endif

#endif
