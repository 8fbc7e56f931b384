/* The layout shared by the BPF program (exits.bpf.c) and the monitor (trace_exits.c): one
 * struct in the program's .bss, which libbpf maps into the monitor, so that reading it needs
 * no bpf() call (the monitor reads it after it has confined itself with seccomp). Plain C
 * types only: both sides compile it. */
#ifndef SBX_BPF_EXITS_H
#define SBX_BPF_EXITS_H

/* Reason keys: class << 24 | code. 0 is a free slot. */
#define SBX_TR_CLASS_VMX 1   /* kvm_exit on Intel VMX: basic exit reason */
#define SBX_TR_CLASS_SVM 2   /* kvm_exit on AMD SVM: exit code */
#define SBX_TR_CLASS_USER 3  /* kvm_userspace_exit: KVM_EXIT_*, or 0x8000|errno */
#define SBX_TR_CLASS_PVM 4   /* PVM: derived from the vCPU's exit counters */
#define SBX_TR_CLASS_EVENT 5 /* other kvm tracepoints inside an exit (emulation, faults) */
#define SBX_TR_KEY(cls, code) (((unsigned int)(cls) << 24) | ((unsigned int)(code)&0xffffff))

/* SBX_TR_CLASS_PVM codes: how PVM's vcpu->stat counters split the exits it handled. */
#define SBX_TR_PVM_PF 1		/* shadow page faults fixed in the kernel (pf_taken - pf_emulate) */
#define SBX_TR_PVM_PF_EMULATE 2 /* page faults that needed instruction emulation (MMIO) */
#define SBX_TR_PVM_IRQ 3	/* host interrupts */
#define SBX_TR_PVM_HALT 4
#define SBX_TR_PVM_TRAP 5 /* everything else: syscall traps, exceptions, cpuid, ... */

/* SBX_TR_CLASS_EVENT codes */
#define SBX_TR_EV_EMULATE 1    /* kvm_emulate_insn */
#define SBX_TR_EV_PAGE_FAULT 2 /* kvm_page_fault (hardware: EPT/NPT violations) */

#define SBX_TR_NSLOTS 64   /* distinct reasons (a power of two) */
#define SBX_TR_NBUCKETS 40 /* log2 histogram of nanoseconds: bucket i holds [2^i, 2^(i+1)) */
#define SBX_TR_NRIPS 16	   /* distinct guest RIPs kept per reason (a power of two) */

struct sbx_tr_slot {
	unsigned int key;
	unsigned int timed; /* durations were measured for this reason */
	unsigned long long count;
	unsigned long long total_ns;
	unsigned long long hist[SBX_TR_NBUCKETS];
	unsigned long long rip[SBX_TR_NRIPS];
	unsigned long long rip_count[SBX_TR_NRIPS];
	unsigned long long rip_other; /* events whose RIP found no free entry */
};

struct sbx_tr_data {
	unsigned long long runs;	 /* KVM_RUN calls */
	unsigned long long run_ns;	 /* time inside KVM_RUN */
	unsigned long long kvm_exits;	 /* kvm_exit events seen (0 on PVM) */
	unsigned long long lost;	 /* events whose reason found no free slot */
	unsigned long long vcpu_missing; /* KVM_RUN calls whose vCPU could not be found */
	struct sbx_tr_slot slot[SBX_TR_NSLOTS];
};

#endif
