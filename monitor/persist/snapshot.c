/* Snapshot files: the sandbox's state sections and guest RAM in the container of migrate/,
 * and a sandbox made again from one. A snapshot file is hostile input: the container checks
 * its structure and checksums, the state pieces (state.c) check every value, and the
 * restoring monitor's own policy decides what the guest may open again. */
#include <cpuid.h>
#include <errno.h>
#include <stddef.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#define XXH_INLINE_ALL
#include <xxhash.h>

#include "migrate.h"
#include "calls.h"
#include "persist.h"
#include "sandbox_priv.h"

#define SBX_STATE_VERSION 1

/* Vendor, family/model/stepping and the feature words a guest can see: a restore on a host
 * that differs is refused when the vendor differs and said aloud otherwise. */
static void cpuid_sig(uint8_t out[32])
{
	unsigned a = 0, b = 0, c = 0, d = 0;
	uint32_t w[8] = {0};
	__get_cpuid(0, &a, &b, &c, &d);
	w[0] = b;
	w[1] = d;
	w[2] = c;
	__get_cpuid(1, &a, &b, &c, &d);
	w[3] = a;
	w[4] = c;
	w[5] = d;
	__get_cpuid_count(7, 0, &a, &b, &c, &d);
	w[6] = b;
	w[7] = c;
	memcpy(out, w, 32);
}

/* Zeros when the file cannot be hashed: not a regular file (a FIFO, a device, a directory
 * named by a hostile snapshot), too large, unreadable. */

static int add_piece(struct mig_snap_writer *w, uint32_t type, uint16_t flags,
		     int (*piece)(struct sbx_vm *, struct sbx_sio *), struct sbx_vm *vm, char *err,
		     size_t errlen)
{
	struct sbx_sio io = {0};
	int r = piece(vm, &io);
	if (r < 0)
		snprintf(err, errlen, "section %s: %s", mig_sec_name(type), io.msg);
	else
		r = mig_snap_add(w, type, SBX_STATE_VERSION, flags, io.buf, io.len, err, errlen);
	free(io.buf);
	return r;
}

static int vcpu_piece(struct sbx_vm *vm, struct sbx_sio *io)
{
	return sbx_state_vcpu(vm, io, 0);
}

/* The image section carries the ELF's host path too, so a restored sandbox's crash reports
 * can find its symbols (used only when the file's hash still matches). Absolute, so that a
 * restore from another directory finds it. */
static int image_piece(struct sbx_vm *vm, struct sbx_sio *io)
{
	char prog[POLICY_PATH_MAX] = "";
	if (!io->load && vm->cfg.prog)
		snprintf(prog, sizeof(prog), "%s", vm->host.prog[0] ? vm->host.prog : vm->cfg.prog);
	sbx_state_image(vm, io);
	sbx_sio_str(io, prog, sizeof(prog));
	return io->err;
}

static int policy_json(struct sbx_vm *vm, char **buf, size_t *len)
{
	FILE *f = open_memstream(buf, len);
	if (!f)
		return -ENOMEM;
	int r = policy_write_json(vm->cfg.policy, f);
	fclose(f);
	return r < 0 ? -EINVAL : 0;
}

/* The client at the other end of a connection is gone (it closed, or was killed). */
static int hung_up(void *ctx)
{
	struct pollfd p = {.fd = *(const int *)ctx, .events = POLLRDHUP};
	return poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR));
}

static int write_sections(struct sbx_vm *vm, int fd, int with_ram, int zstd, int watch_fd,
			  uint64_t *pages, char *err, size_t errlen)
{
	struct mig_snap_header h = {.major = MIG_SNAP_MAJOR,
				    .minor = MIG_SNAP_MINOR,
				    .abi_version = vm->proc.image.khdr.abi_version,
				    .mem_size = vm->proc.mem.size};
	int khz = ioctl(vm->proc.vcpu.fd, KVM_GET_TSC_KHZ, 0);
	h.tsc_khz = khz > 0 ? (uint64_t)khz : 0;
	cpuid_sig(h.cpuid_sig);
	memcpy(h.elf_hash, vm->origin.elf_hash, 16);
	if (getrandom(h.snap_id, sizeof(h.snap_id), 0) != (ssize_t)sizeof(h.snap_id))
		memset(h.snap_id, 0, sizeof(h.snap_id));
	memcpy(h.parent_id, vm->origin.parent_id, 16);
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	h.created_ns = (uint64_t)now.tv_sec * 1000000000ull + (uint64_t)now.tv_nsec;

	struct mig_snap_writer *w;
	int r = mig_snap_writer_new(&w, fd, &h, err, errlen);
	if (r < 0)
		return r;
	if (watch_fd >= 0)
		mig_snap_writer_watch(w, hung_up, &watch_fd);
	char *pj = NULL;
	size_t pjlen = 0;
	const uint16_t req = MIG_SEC_F_REQUIRED;
	if ((r = add_piece(w, MIG_SEC_VCPU, req, vcpu_piece, vm, err, errlen)) < 0 ||
	    (r = add_piece(w, MIG_SEC_CLOCK, req, sbx_state_clock, vm, err, errlen)) < 0 ||
	    (r = add_piece(w, MIG_SEC_MONITOR, req, sbx_state_monitor, vm, err, errlen)) < 0 ||
	    (r = add_piece(w, MIG_SEC_IMAGE, 0, image_piece, vm, err, errlen)) < 0)
		goto out;
	/* Only with threads: a single-threaded snapshot stays readable by older monitors. */
	struct sbx_thread_rec one;
	if (sbx_threads_records(vm, &one, 1) &&
	    (r = add_piece(w, MIG_SEC_THREADS, req, sbx_state_threads, vm, err, errlen)) < 0)
		goto out;
	int objects = 0;
	for (int i = 0; i < SBX_MAX_FDS && !objects; i++)
		objects = sbx_handle_is_object(&vm->proc.files->fds[i]);
	if (objects &&
	    (r = add_piece(w, MIG_SEC_OBJECTS, req, sbx_state_objects, vm, err, errlen)) < 0)
		goto out;
	if ((r = policy_json(vm, &pj, &pjlen)) < 0) {
		snprintf(err, errlen, "section policy: the policy cannot be written as JSON");
		goto out;
	}
	if ((r = mig_snap_add(w, MIG_SEC_POLICY, SBX_STATE_VERSION, req, pj, pjlen, err, errlen)) <
	    0)
		goto out;
	if (with_ram && (r = mig_snap_add_pages(w, vm->proc.mem.base, vm->proc.mem.size,
						vm->proc.mem.fd, zstd, pages, err, errlen)) < 0)
		goto out;
	/* No fsync here: mig_snap_commit makes it durable (in sandbox-ctl, or
	 * sbx_vm_snapshot), and a migration's state never touches a disk. */
	r = mig_snap_writer_finish(w, 0, err, errlen);
out:
	free(pj);
	mig_snap_writer_free(w);
	return r;
}

int sbx_snapshot_write_fd(struct sbx_vm *vm, int fd, int zstd_level, int watch_fd, uint64_t *pages,
			  char *err, size_t errlen)
{
	uint64_t n = 0;
	int r = write_sections(vm, fd, 1, zstd_level, watch_fd, &n, err, errlen);
	if (pages)
		*pages = n;
	return r;
}

int sbx_vm_snapshot(struct sbx_vm *vm, const char *path, char *err, size_t errlen)
{
	char tmp[4096];
	int fd = mig_snap_tmp_open(path, tmp, sizeof(tmp), err, errlen);
	if (fd < 0)
		return fd;
	int r = sbx_snapshot_write_fd(vm, fd, vm->cfg.snapshot_zstd, -1, NULL, err, errlen);
	if (r < 0) {
		mig_snap_abort(fd, tmp);
		return r;
	}
	if ((r = mig_snap_commit(fd, tmp, path, err, errlen)) < 0)
		mig_snap_abort(fd, tmp);
	return r;
}

int sbx_state_blob(struct sbx_vm *vm, uint8_t **buf, size_t *len, char *err, size_t errlen)
{
	int fd = memfd_create("sandbox-state", MFD_CLOEXEC);
	if (fd < 0)
		return sbx_fail(err, errlen, -errno, "memfd_create: %s", strerror(errno));
	int r = write_sections(vm, fd, 0, 0, -1, NULL, err, errlen);
	struct stat st;
	if (r == 0 && fstat(fd, &st) < 0)
		r = -errno;
	if (r == 0) {
		*len = (size_t)st.st_size;
		*buf = malloc(*len ? *len : 1);
		if (!*buf || pread(fd, *buf, *len, 0) != (ssize_t)*len) {
			free(*buf);
			*buf = NULL;
			snprintf(err, errlen, "reading back the state: %s", strerror(errno));
			r = -EIO;
		}
	}
	close(fd);
	return r;
}

/* ---- Restore ------------------------------------------------------------------------------ */

/* "Wider" means the restoring policy grants what the snapshot's did not: a mount the guest
 * never had, write access where it had read-only, or a limit lifted or raised. The snapshot's
 * policy is read as plain JSON: its host paths are the writer's and may not exist here. */
static int snap_grants(json_t *root, const char *guest, int rw)
{
	json_t *m, *t;
	size_t i;
	json_array_foreach(json_object_get(root, "mounts"), i, m)
	{
		const char *g = json_string_value(json_object_get(m, "guest"));
		const char *mode = json_string_value(json_object_get(m, "mode"));
		if (g && !strcmp(g, guest))
			return !rw || (mode && !strcmp(mode, "rw"));
	}
	json_array_foreach(json_object_get(root, "tmp"), i, t)
	{
		const char *g = json_string_value(t);
		if (g && !strcmp(g, guest))
			return 1;
	}
	return 0;
}

static int limit_wider(json_t *lim, const char *key, uint64_t mine, int is_time)
{
	json_t *v = json_object_get(lim, key);
	if (!v)
		return 0;
	uint64_t theirs = 0;
	if (json_is_integer(v))
		theirs = (uint64_t)json_integer_value(v) * (is_time ? 1000 : 1);
	else if (!json_is_string(v) ||
		 (is_time ? policy_parse_duration(json_string_value(v), &theirs)
			  : policy_parse_size(json_string_value(v), &theirs)) < 0)
		return 0;
	return theirs && (!mine || mine > theirs);
}

static int check_policy(struct sbx_vm *vm, const void *text, uint64_t len, char *err, size_t errlen)
{
	json_error_t je;
	json_t *root = json_loadb(text, len, 0, &je);
	if (!root || !json_is_object(root)) {
		char t[100];
		snprintf(err, errlen, "section policy: not a JSON object (line %d: %s)", je.line,
			 sbx_shown(je.text, t, sizeof(t)));
		json_decref(root);
		return -EINVAL;
	}
	const struct policy *p = vm->cfg.policy;
	char why[600] = "";
	for (size_t i = 0; i < p->nmounts && !why[0]; i++) {
		const struct policy_mount *m = &p->mounts[i];
		/* A --tmp (the private /dev/shm too) is a fresh empty directory: it shows nothing
		 * of the host, so a snapshot taken without one is not widened by it. */
		int tmp = 0;
		for (size_t k = 0; k < p->ntmp && !tmp; k++)
			tmp = !strcmp(p->tmp[k], m->guest);
		if (!tmp && !snap_grants(root, m->guest, m->rw))
			snprintf(why, sizeof(why), "%s %s", m->rw ? "--rw" : "--ro", m->guest);
	}
	json_t *lim = json_object_get(root, "limits");
	static const char *const keys[] = {"max_output", "max_write", "max_files", "cpu_time",
					   "timeout"};
	const uint64_t mine[] = {p->lim.max_output, p->lim.max_write, p->lim.max_files,
				 p->lim.cpu_ms, p->lim.wall_ms};
	for (size_t i = 0; i < 5 && !why[0]; i++)
		if (json_is_object(lim) && limit_wider(lim, keys[i], mine[i], i >= 3))
			snprintf(why, sizeof(why), "limit %s", keys[i]);
	json_decref(root);
	if (why[0] && !vm->cfg.allow_wider_policy) {
		snprintf(err, errlen,
			 "the restoring policy is wider than the snapshot's (%s); add "
			 "--allow-wider-policy to grant it",
			 why);
		return -EPERM;
	}
	return 0;
}

static int apply_piece(struct sbx_vm *vm, struct mig_snap_reader *r, uint32_t type,
		       int (*piece)(struct sbx_vm *, struct sbx_sio *), char *err, size_t errlen)
{
	const void *data;
	uint64_t len;
	uint16_t version;
	int e = mig_snap_section(r, type, &version, &data, &len, err, errlen);
	if (e == -ENOENT &&
	    (type == MIG_SEC_IMAGE || type == MIG_SEC_THREADS || type == MIG_SEC_OBJECTS))
		return 0;
	if (e == -ENOENT)
		snprintf(err, errlen, "section %s: missing", mig_sec_name(type));
	if (e < 0)
		return e;
	if (version != SBX_STATE_VERSION)
		return sbx_fail(err, errlen, -EINVAL,
				"section %s: version %u, this monitor reads %u", mig_sec_name(type),
				version, SBX_STATE_VERSION);
	struct sbx_sio io = {.load = 1, .buf = (uint8_t *)data, .len = (size_t)len};
	e = piece(vm, &io);
	if (e == 0 && io.pos != io.len)
		return sbx_fail(err, errlen, -EINVAL, "section %s: %zu bytes left over",
				mig_sec_name(type), io.len - io.pos);
	if (e < 0)
		snprintf(err, errlen, "section %s: %s", mig_sec_name(type), io.msg);
	return e;
}

static int image_load(struct sbx_vm *vm, struct sbx_sio *io)
{
	sbx_state_image(vm, io);
	sbx_sio_str(io, vm->origin.snap_prog, sizeof(vm->origin.snap_prog));
	return io->err;
}

int sbx_state_apply(struct sbx_vm *vm, struct mig_snap_reader *r, char *err, size_t errlen)
{
	const struct mig_snap_header *h = mig_snap_header_of(r);
	if (!sbx_abi_ok(h->abi_version)) {
		snprintf(err, errlen,
			 "header: the guest kernel inside speaks hypercall ABI %u.%u, this monitor "
			 "%u.%u",
			 h->abi_version >> 16, h->abi_version & 0xffff, SBX_ABI_MAJOR,
			 SBX_ABI_MINOR);
		return -EINVAL;
	}
	if (h->mem_size != vm->proc.mem.size)
		return sbx_fail(err, errlen, -EINVAL, "header: guest RAM %llu bytes, expected %llu",
				(unsigned long long)h->mem_size,
				(unsigned long long)vm->proc.mem.size);
	/* The kernel that runs is the one inside the snapshot: its header, from guest RAM, says
	 * where signals are handed back; it is guest data, so every field is checked. */
	struct sbx_kernel_header kh;
	if (sbx_copy_from_guest(vm, &kh, SBX_KERNEL_ADDR, sizeof(kh)) < 0 ||
	    kh.magic != SBX_KERNEL_MAGIC || !sbx_abi_ok(kh.abi_version) ||
	    kh.upcall_entry < SBX_KERNEL_ADDR || kh.upcall_entry >= SBX_KERNEL_END ||
	    kh.syscall_entry < SBX_KERNEL_ADDR || kh.syscall_entry >= SBX_KERNEL_END)
		return sbx_fail(err, errlen, -EINVAL,
				"section pages: no valid guest kernel at 0x%llx",
				(unsigned long long)SBX_KERNEL_ADDR);
	/* Fields a kernel of an older minor does not have (its header is shorter). */
	if (kh.header_size < offsetof(struct sbx_kernel_header, exec_start) + 8)
		kh.exec_start = 0; /* a 1.1 kernel: no repeated runs */
	if (kh.header_size < offsetof(struct sbx_kernel_header, cpuid_entry) + 8)
		kh.cpuid_entry = 0; /* before 1.22: no cpuid sites */
	vm->proc.image.khdr = kh;
	/* Before the threads' ids are checked against the pid. */
	sbx_procs_adopt_ids(vm);
	uint8_t sig[32];
	cpuid_sig(sig);
	if (memcmp(sig, h->cpuid_sig, 12))
		return sbx_fail(err, errlen, -EINVAL,
				"header: written on a CPU of another vendor (%.12s)",
				(const char *)h->cpuid_sig);
	if (memcmp(sig, h->cpuid_sig, 32))
		sbx_log(vm, 1,
			"the snapshot was written on a different CPU model: the guest keeps "
			"the CPUID it started with");
	const void *pj;
	uint64_t pjlen;
	uint16_t pver;
	int e = mig_snap_section(r, MIG_SEC_POLICY, &pver, &pj, &pjlen, err, errlen);
	if (e == -ENOENT)
		snprintf(err, errlen, "section policy: missing");
	if (e < 0 || (e = check_policy(vm, pj, pjlen, err, errlen)) < 0)
		return e;
	if ((e = apply_piece(vm, r, MIG_SEC_IMAGE, image_load, err, errlen)) < 0 ||
	    (e = apply_piece(vm, r, MIG_SEC_MONITOR, sbx_state_monitor, err, errlen)) < 0 ||
	    (e = apply_piece(vm, r, MIG_SEC_OBJECTS, sbx_state_objects, err, errlen)) < 0 ||
	    (e = apply_piece(vm, r, MIG_SEC_VCPU, vcpu_piece, err, errlen)) < 0 ||
	    (e = apply_piece(vm, r, MIG_SEC_CLOCK, sbx_state_clock, err, errlen)) < 0 ||
	    (e = apply_piece(vm, r, MIG_SEC_THREADS, sbx_state_threads, err, errlen)) < 0)
		return e;
	if (vm->proc.vcpu.cpl == 0 && vm->proc.kvm.is_pvm) {
		snprintf(err, errlen,
			 "section monitor: the snapshot runs its kernel at CPL0, which this host's "
			 "KVM (PVM) cannot run");
		return -EINVAL;
	}
	memcpy(vm->origin.parent_id, h->snap_id, 16);
	memcpy(vm->origin.elf_hash, h->elf_hash, 16);
	/* Symbols for crash reports, from the ELF the snapshot names, if it is the same file. */
	if (!vm->cfg.prog && vm->origin.snap_prog[0]) {
		static const uint8_t none[16];
		uint8_t hash[16];
		char shown_prog[200];
		sbx_elf_hash(vm->origin.snap_prog, hash);
		if (memcmp(hash, none, 16) && !memcmp(hash, h->elf_hash, 16))
			vm->cfg.prog = vm->origin.snap_prog;
		else
			sbx_log(vm, 1,
				"%s is not the program the snapshot ran: crash reports will "
				"have no symbols",
				sbx_shown(vm->origin.snap_prog, shown_prog, sizeof(shown_prog)));
	}
	return 0;
}

int sbx_vm_create_empty(const struct sbx_config *cfg, uint64_t mem_size, struct sbx_vm **out,
			char *err, size_t errlen)
{
	struct sbx_config c = *cfg;
	/* The restoring side's --mem bounds what a file or a peer may make it allocate. */
	if (cfg->mem_size && mem_size > cfg->mem_size) {
		snprintf(err, errlen,
			 "header: the sandbox has %llu MiB of guest RAM, more than this policy's "
			 "--mem %llu MiB",
			 (unsigned long long)(mem_size >> 20),
			 (unsigned long long)(cfg->mem_size >> 20));
		*out = NULL;
		return -EPERM;
	}
	c.mem_size = mem_size;
	int r = sbx_vm_create_bare(&c, out, err, errlen);
	if (r == 0)
		r = sbx_procs_attach(*out, err, errlen); /* the restored process is the first */
	if (r < 0)
		return r;
	struct sbx_vm *vm = *out;
	if (vm->proc.mem.size != mem_size)
		return sbx_fail(err, errlen, -EINVAL,
				"header: guest RAM of %llu bytes is not a multiple of 2 MiB",
				(unsigned long long)mem_size);
	vm->proc.kvm.is_pvm = sbx_kvm_is_pvm();
	vm->proc.vcpu.cpl = vm->proc.kvm.is_pvm ? 3 : 0;
	sbx_vm_choose_cpus(vm);
	/* The handle table comes from the snapshot, not from this monitor's stdio. */
	sbx_fd_close_all(vm);
	return 0;
}

/* Allocating guest RAM in bulk for the pages the file stores (its data ranges: holes are zero
 * pages) is several times cheaper than a page fault per page while reading them in. */
static void prefault_stored(struct sbx_vm *vm, struct mig_snap_reader *rd, int fd)
{
	uint64_t off, len;
	char e[200];
	if (mig_snap_pages_extent(rd, 0, &off, &len, e, sizeof(e)) < 0 || len > vm->proc.mem.size)
		return; /* compressed: no layout to follow */
	off_t at = (off_t)off, end = (off_t)(off + len);
	while (at < end) {
		off_t d = lseek(fd, at, SEEK_DATA);
		if (d < 0 || d >= end)
			break;
		off_t h = lseek(fd, d, SEEK_HOLE);
		if (h < 0 || h > end)
			h = end;
		madvise(vm->proc.mem.base + (d - (off_t)off), (size_t)(h - d), MADV_POPULATE_WRITE);
		at = h;
	}
}

int sbx_vm_restore(const struct sbx_config *cfg, const char *path, int flags, struct sbx_vm **out,
		   char *err, size_t errlen)
{
	*out = NULL;
	char e2[400];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return sbx_fail(err, errlen, -errno, "%s: %s", path, strerror(errno));
	struct mig_snap_reader *rd = NULL;
	int r = mig_snap_open(&rd, fd, e2, sizeof(e2));
	struct sbx_vm *vm = NULL;
	if (r < 0)
		goto out;
	const struct mig_snap_header *h = mig_snap_header_of(rd);
	if ((r = sbx_vm_create_empty(cfg, h->mem_size, &vm, e2, sizeof(e2))) < 0)
		goto out;
	int lazy = (flags & SBX_RESTORE_LAZY) != 0;
	uint64_t off, len;
	if (lazy && (r = mig_snap_pages_extent(rd, 0, &off, &len, e2, sizeof(e2))) == -EOPNOTSUPP) {
		/* Compressed pages have no image to map: they are decompressed into guest RAM
		 * (its memfd), as --restore does. */
		sbx_log(vm, 1, "%s: compressed snapshot: its RAM is read in, not mapped", path);
		lazy = 0;
	} else if (lazy && r < 0) {
		goto out;
	}
	if (lazy) {
		/* Copy-on-write from the file: pages come in on first touch, and many
		 * sandboxes restored from one file share its page cache. */
		void *p = mmap(vm->proc.mem.base, vm->proc.mem.size, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_FIXED | MAP_NORESERVE, fd, (off_t)off);
		if (p == MAP_FAILED) {
			r = -errno;
			snprintf(e2, sizeof(e2), "section pages: mmap: %s", strerror(errno));
			goto out;
		}
		close(vm->proc.mem.fd);
		vm->proc.mem.fd = -1;
	} else {
		prefault_stored(vm, rd, fd);
		if ((r = mig_snap_read_pages(rd, vm->proc.mem.base, vm->proc.mem.size, e2,
					     sizeof(e2))) < 0)
			goto out;
	}
	if ((r = sbx_vm_empty_kvm(vm, e2, sizeof(e2))) < 0 ||
	    (r = sbx_state_apply(vm, rd, e2, sizeof(e2))) < 0)
		goto out;
out:
	if (r < 0) {
		snprintf(err, errlen, "%s: %s", path, e2);
		sbx_vm_destroy(vm);
		vm = NULL;
	}
	mig_snap_reader_free(rd);
	close(fd);
	*out = vm;
	return r;
}
