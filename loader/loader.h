/* The ELF loader: checks an x86-64 Linux program, copies its PT_LOAD segments into guest RAM
 * and builds the initial stack the way Linux's binfmt_elf does, so an unmodified static glibc or
 * musl program can start at its entry point with nothing else set up. A dynamic program names
 * its interpreter (PT_INTERP): the caller opens that file, loads it with pie_top set, and joins
 * the two with loader_add_interp(), so execution starts in ld.so with AT_BASE and AT_ENTRY
 * pointing where Linux would have them. The libraries ld.so will open are found beforehand by
 * loader_needed_resolve() (needed.c), which reads ELF files and ld.so.cache as ld.so does.
 *
 * The loader knows nothing of the monitor: it sees guest RAM only as the window the caller
 * passes in, and every byte it writes there is bounds-checked against that window, because
 * the ELF file is as untrusted as the program it holds.
 *
 * Errors: every function returns 0 or a negative errno and, on failure, writes a one-line
 * reason to `err` (when err != NULL and errlen > 0) without a program-name prefix; the caller
 * adds that. Program headers are numbered in messages by their index in the program header
 * table, as in "PT_LOAD 2: ...". */
#ifndef SBX_LOADER_H
#define SBX_LOADER_H

#include <stddef.h>
#include <stdint.h>

/* Guest RAM as the loader sees it: guest address a lives at base + a, for a < size. */
struct loader_mem {
	uint8_t *base; /* host address of guest address 0 */
	uint64_t size; /* bytes of guest RAM behind base */
	/* With use_fd, the file behind base (a memfd): segments are written with pwrite, which
	 * fills new pages without a page fault each (a fault is dear under PVM). */
	int fd;
	int use_fd;
};

/* Where the caller allows the program to go. */
struct loader_params {
	uint64_t min_addr; /* lowest address a segment may occupy (SBX_USER_ADDR) */
	uint64_t max_addr; /* page-rounded segment ends must be at or below this (and mem.size) */
	uint64_t pie_base; /* static-PIE (ET_DYN) placement: rounded up to the largest p_align */
	/* Nonzero: place an ET_DYN image top-down instead, as high as it fits with its
	 * page-rounded end at or below pie_top (where Linux's mmap puts the interpreter). */
	uint64_t pie_top;
	int mem_is_zero; /* nonzero: guest RAM is fresh zeroes, so skip zeroing bss and padding */
	int cpuid_sites; /* nonzero: a load also finds the image's cpuid sites (not a check) */
	/* nonzero: loader_load_mem's and loader_check_mem's buffer is the caller's private,
	 * writable copy, which libelf may use in place rather than a copy of its own. */
	int buf_private;
};

/* PT_INTERP: at most PATH_MAX bytes with the NUL, as Linux allows. */
#define LOADER_INTERP_MAX 4096

/* At most this many PT_LOAD program headers; more are refused. */
#define LOADER_MAX_SEGS 16
/* Entries of loader_image.segs: a page shared by two segments becomes an entry of its own. */
#define LOADER_MAX_RANGES (2 * LOADER_MAX_SEGS)

/* A `cpuid` instruction and whole instructions before it that the monitor may replace by a jump
 * to code doing the same (docs/architecture.md, "CPUID without a trap"). */
#define LOADER_CPUID_SITE_MAX 16 /* bytes of one site, the cpuid included */
#define LOADER_CPUID_MAX 64	 /* sites of one image (the program, or its interpreter) */
struct loader_cpuid_site {
	uint64_t site; /* guest address of the first replaced byte */
	uint8_t len;   /* bytes replaced: the instructions before the cpuid, and the cpuid */
	uint8_t pre;   /* where the cpuid starts: 5, or 7 and more */
	/* An instruction starts 3 or 4 bytes in: the record must sit at an address whose low
	 * bytes, there in the jump, are an invalid instruction (0x37XX40, XX one of
	 * LOADER_CPUID_SPECIAL). */
	uint8_t special;
	uint8_t orig[LOADER_CPUID_SITE_MAX]; /* the bytes as the file has them */
};
/* One-byte opcodes invalid in 64-bit mode, also after a REX prefix. */
#define LOADER_CPUID_SPECIAL                                                                       \
	{                                                                                          \
		0x06, 0x07, 0x0e, 0x16, 0x17, 0x1e, 0x1f, 0x27, 0x2f, 0x37, 0x3f, 0x60, 0x61,      \
		    0x82, 0x9a, 0xce, 0xd4, 0xd5, 0xd6, 0xea                                       \
	}

/* The cpuid sites of one function's code fn[0..n), at guest address va, into out[0..max): how
 * many. Each is a cpuid of fn, decoded from its start, with movable instructions before it
 * (cpuid_sites.c says which). Any bytes are safe input. */
int loader_cpuid_scan(const uint8_t *fn, size_t n, uint64_t va, struct loader_cpuid_site *out,
		      unsigned max);

/* Where whole instructions start in code[0..n) decoded from code[0] (x86_decode.c): bit i set
 * for each start i < 32 the decoding reaches before n or an instruction it does not know. */
uint32_t loader_insn_starts(const uint8_t *code, size_t n);

/* A page-aligned address range with one protection. */
struct loader_segment {
	uint64_t start; /* first byte, page aligned */
	uint64_t end;	/* one past the last byte, page aligned, > start */
	uint32_t prot;	/* PROT_READ | PROT_WRITE | PROT_EXEC from p_flags */
};

/* What was loaded, in guest addresses (the bias already applied). */
struct loader_image {
	/* Where the first instruction runs: e_entry + bias, or once loader_add_interp() joined
	 * an interpreter, the interpreter's entry. */
	uint64_t entry;
	uint64_t prog_entry;  /* AT_ENTRY: the program's own e_entry + bias */
	uint64_t interp_base; /* AT_BASE: the interpreter's load bias, 0 without one */
	uint64_t bias;	      /* added to every p_vaddr: 0 for ET_EXEC, the placement for ET_DYN */
	uint64_t phdr;	/* AT_PHDR: guest address of the program headers, or 0 if not loaded */
	uint64_t phnum; /* AT_PHNUM: e_phnum */
	uint64_t phent; /* AT_PHENT: e_phentsize (always sizeof(Elf64_Phdr)) */
	uint64_t lo;	/* page-rounded start of the lowest PT_LOAD (of program or interpreter) */
	uint64_t hi;	/* page-rounded end of the highest PT_LOAD (of program or interpreter) */
	/* Where the program break starts: page-rounded end of the program's highest segment. */
	uint64_t brk;
	/* The pages to map, sorted by address and disjoint. Each PT_LOAD covers its page-rounded
	 * range; a page two segments share (Linux allows it) is split out with the union of their
	 * protections. Gaps between segments are not listed and stay unmapped. */
	struct loader_segment segs[LOADER_MAX_RANGES];
	unsigned nsegs;	    /* entries used in segs */
	int is_pie;	    /* 1 for static-PIE (ET_DYN), 0 for ET_EXEC */
	int exec_stack;	    /* 1 if PT_GNU_STACK asks for an executable stack (PF_X) */
	uint64_t tls_memsz; /* PT_TLS p_memsz (0 without PT_TLS) */
	uint64_t tls_align; /* PT_TLS p_align (0 without PT_TLS) */
	/* The PT_INTERP path, NUL-terminated, absolute, "" for a static program. Loading never
	 * follows it: the caller opens it (under its policy) and calls loader_add_interp(). */
	char interp[LOADER_INTERP_MAX];
	/* The cpuid sites the monitor may redirect (cpuid_sites.c; loader_params.cpuid_sites),
	 * the interpreter's after the program's once joined. */
	struct loader_cpuid_site cpuid[LOADER_CPUID_MAX];
	unsigned ncpuid;
};

/* Load the ELF file at `path`: check every header, then copy its segments into `mem`.
 * Nothing is written to guest RAM unless every check passes. */
int loader_load_file(const char *path, const struct loader_params *params, struct loader_mem *mem,
		     struct loader_image *out, char *err, size_t errlen);

/* The same for an open file; `name` is only for messages. The fd is not closed. */
int loader_load_fd(int fd, const char *name, const struct loader_params *params,
		   struct loader_mem *mem, struct loader_image *out, char *err, size_t errlen);

/* The same for an ELF image already in host memory (`buf` is only read, unless
 * params->buf_private gives it to libelf). */
int loader_load_mem(const void *buf, size_t len, const struct loader_params *params,
		    struct loader_mem *mem, struct loader_image *out, char *err, size_t errlen);

/* Every check of loader_load_mem, and the image it would give, with nothing written: for an
 * execve, which must fail whole before the old image goes. */
int loader_check_mem(const void *buf, size_t len, const struct loader_params *params,
		     struct loader_mem *mem, struct loader_image *out, char *err, size_t errlen);

/* Join the interpreter `interp` (loaded with loader_load_* at its own place) to the program
 * `prog`, which named it: prog's page list gains the interpreter's pages, execution starts at
 * the interpreter's entry, AT_BASE is its bias; brk, AT_PHDR and AT_ENTRY stay the program's.
 * -ENOEXEC (and nothing changed) if the interpreter has a PT_INTERP of its own, overlaps the
 * program, or the two need more than LOADER_MAX_RANGES page ranges. `name` is for messages. */
int loader_add_interp(struct loader_image *prog, const struct loader_image *interp,
		      const char *name, char *err, size_t errlen);

/* The initial process stack. */
struct loader_stack_args {
	const char *const *argv; /* NULL-terminated; NULL or empty gives argv = { "" } as Linux */
	const char *const *envp; /* NULL-terminated; NULL means no environment */
	const char *execfn;	 /* AT_EXECFN string (the path given to exec); NULL: argv[0] */
	uint8_t random[16];	 /* AT_RANDOM bytes (the caller fills them from getrandom) */
	uint64_t hwcap;		 /* AT_HWCAP (CPUID.1:EDX on x86) */
	uint64_t hwcap2;	 /* AT_HWCAP2 */
	uint64_t uid, euid;	 /* AT_UID, AT_EUID */
	uint64_t gid, egid;	 /* AT_GID, AT_EGID */
	uint64_t secure;	 /* AT_SECURE */
	uint64_t clktck;	 /* AT_CLKTCK (100 on Linux) */
	uint64_t sysinfo_ehdr;	 /* AT_SYSINFO_EHDR: guest address of the vDSO; 0 leaves it out */
	uint64_t minsigstksz;	 /* AT_MINSIGSTKSZ; 0 leaves the entry out */
	uint64_t stack_top;	 /* highest stack address + 1, 16-byte aligned */
	uint64_t stack_limit;	 /* lowest address the initial stack may use */
};

/* Build the initial stack below args->stack_top as Linux does. From the top down: 8 zero bytes,
 * the AT_EXECFN string, the envp strings, the argv strings, then (16-byte aligned) the
 * "x86_64" platform string and the 16 AT_RANDOM bytes, and finally, 16-byte aligned:
 * argc, argv[], NULL, envp[], NULL, the auxv pairs, AT_NULL. *rsp_out receives the address of
 * argc. -E2BIG if it does not fit above stack_limit; -EINVAL for a bad window (top not 16-byte
 * aligned or outside guest RAM, limit not below top, or overlapping the image's lo..hi). */
int loader_build_stack(struct loader_mem *mem, const struct loader_image *img,
		       const struct loader_stack_args *args, uint64_t *rsp_out, char *err,
		       size_t errlen);

/* needed.c, dynamic.c, ldcache.c: the files ld.so will open for a dynamic program, found the
 * way ld.so finds them, so a sandbox can show exactly those. Every file is as untrusted as the
 * program: sizes, counts and string offsets are bounded and checked. */

/* What ld.so reads from one ELF object: its interpreter and the dynamic-section strings that
 * decide which libraries it needs and where they are searched. All strings are malloc'd. */
#define LOADER_DYN_MAX_NEEDED 1024 /* DT_NEEDED entries of one object */
struct loader_dyninfo {
	int is_dyn;	/* ET_DYN (a shared object or PIE), else ET_EXEC */
	char *interp;	/* PT_INTERP, or NULL */
	char **needed;	/* DT_NEEDED names, in order */
	size_t nneeded; /* entries in needed */
	char *runpath;	/* DT_RUNPATH, DT_RPATH, DT_SONAME, or NULL */
	char *rpath;
	char *soname;
};
/* From an ELF image in memory, or from an open file (read with pread, never mapped). A file
 * with no PT_DYNAMIC gives no names. -ENOEXEC with a one-line reason for anything malformed. */
int loader_dyninfo_mem(const void *buf, size_t len, const char *name, struct loader_dyninfo *out,
		       char *err, size_t errlen);
int loader_dyninfo_fd(int fd, const char *name, struct loader_dyninfo *out, char *err,
		      size_t errlen);
void loader_dyninfo_free(struct loader_dyninfo *d);

/* glibc's /etc/ld.so.cache (the "glibc-ld.so.cache1.1" format, alone or after the old
 * "ld.so-1.7.0" one): the path of the x86-64 library `soname`, as ld.so's cache lookup gives it
 * (baseline entries: glibc-hwcaps subdirectory entries are not chosen). 0 and the path in out,
 * -ENOENT when the cache has no entry, -EINVAL for a malformed cache. */
int loader_ldcache_lookup(const void *cache, size_t len, const char *soname, char *out,
			  size_t outlen);

/* How the resolver sees the file system: `open` opens a path read-only as the sandbox will see
 * it and returns an fd (the resolver closes it) or -errno. */
struct loader_needed_io {
	int (*open)(void *ctx, const char *path);
	void *ctx;
	/* ld.so's search directories after the cache (NULL: the Debian x86-64 glibc list, or musl's
	 * /lib, /usr/local/lib, /usr/lib for a musl interpreter). NULL-terminated. */
	const char *const *default_dirs;
	const char *cwd; /* where relative names and directories start (NULL: "/") */
};

#define LOADER_NEEDED_MAX 256 /* objects in one closure, the program included */
struct loader_needed {
	char **paths;	 /* every file ld.so opens to start the program, by the path it uses: the
			    interpreter, ld.so.cache or musl's path file if read, the libraries */
	size_t npaths;	 /* entries in paths */
	int origin_used; /* a library was found through the program's own $ORIGIN */
	int musl;	 /* the interpreter is musl's */
};
/* The DT_NEEDED closure of the program open at `prog_fd`, whose path in the sandbox is
 * `prog_path` (for $ORIGIN and messages), resolved as its interpreter will: for glibc, a name
 * with a slash as it is; else DT_RPATH of the object and its loaders (unless it has
 * DT_RUNPATH), DT_RUNPATH, /etc/ld.so.cache, then the default directories; for musl, RPATH and
 * RUNPATH alike, /etc/ld-musl-x86_64.path or the defaults, and libc's own names are the
 * interpreter. $ORIGIN, $LIB and $PLATFORM are expanded; paths are normalised lexically. A
 * static program gives no paths. -ENOENT with a line naming the library, who needs it and where
 * it was looked for when one is missing; -ENOEXEC for a malformed object; -E2BIG past
 * LOADER_NEEDED_MAX objects. out is empty on failure. */
int loader_needed_resolve(const char *prog_path, int prog_fd, const struct loader_needed_io *io,
			  struct loader_needed *out, char *err, size_t errlen);
void loader_needed_free(struct loader_needed *n);

#endif
