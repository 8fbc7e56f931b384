/* Persistence: the sandbox's state as sections (state.c), snapshot files (snapshot.c), resets
 * to a snapshot kept in memory (reset.c), live migration (migration.c) and the control socket
 * that asks for them (control.c). One function per piece of state serves save and restore. */
#ifndef SBX_PERSIST_H
#define SBX_PERSIST_H

#include "vm.h"

/* ---- For the front ends -------------------------------------------------------------- */
/* Snapshots (docs/snapshots.md). The vCPU must be stopped: not running, or paused. */
int sbx_vm_snapshot(struct sbx_vm *vm, const char *path, char *err, size_t errlen);
/* A sandbox from a snapshot file, ready for sbx_vm_run. cfg's policy governs: files are
 * reopened by mount and path under it. LAZY maps guest RAM copy-on-write from the file
 * without reading it (its checksum is not verified: RAM is the guest's own data). */
#define SBX_RESTORE_LAZY 1
int sbx_vm_restore(const struct sbx_config *cfg, const char *path, int flags, struct sbx_vm **out,
		   char *err, size_t errlen);
/* Waits on addr ("tcp:HOST:PORT", "unix:PATH") for a live migration and returns the sandbox
 * it brought, ready for sbx_vm_run. */
int sbx_vm_incoming(const struct sbx_config *cfg, const char *addr, struct sbx_vm **out, char *err,
		    size_t errlen);
/* Reset to a snapshot kept in memory: after sbx_snapshot_take, sbx_reset puts back only the
 * pages written since (KVM's dirty log and the monitor's own writes), the vCPU and the
 * monitor's state. Both need the vCPU stopped; a program with threads, every vCPU paused
 * (and then only the exec engine's stopped reset puts them back: sbx_reset_threads). */
struct sbx_snap;
struct sbx_reset_stats {
	uint64_t pages;	 /* pages put back */
	int slot_reload; /* page tables were among them: the memslot was re-added */
	double us;	 /* time taken */
};
int sbx_snapshot_take(struct sbx_vm *vm, struct sbx_snap **out, char *err, size_t errlen);
int sbx_reset(struct sbx_vm *vm, struct sbx_snap *s, struct sbx_reset_stats *st, char *err,
	      size_t errlen);
/* Debug mode: compares all of guest RAM with the snapshot; -EIO naming the first page that
 * differs. */
int sbx_reset_verify(struct sbx_vm *vm, const struct sbx_snap *s, char *err, size_t errlen);
void sbx_snapshot_free(struct sbx_snap *s);

/* Binds the control socket (cfg.control_path) for sandbox-ctl: before the monitor confines
 * itself; it is served from a thread while the sandbox runs. */
int sbx_control_attach(struct sbx_vm *vm, char *err, size_t errlen);

/* ---- Inside the monitor ---------------------------------------------------------------- */

/* state.c: one function per piece of state serves both save and restore. */
struct mig_stream;
struct sbx_sio {
	int load;
	int reset; /* the state a reset puts back: no handles (reset.c copies them), no stats */
	uint8_t *buf;
	size_t len, cap, pos;
	int err;
	char msg[256];
};
void sbx_sio_bytes(struct sbx_sio *io, void *p, size_t n);
void sbx_sio_u64(struct sbx_sio *io, uint64_t *v);
void sbx_sio_u32(struct sbx_sio *io, uint32_t *v);
void sbx_sio_i32(struct sbx_sio *io, int32_t *v);
void sbx_sio_str(struct sbx_sio *io, char *s, size_t cap);
/* A string from input fit for a one-line message: control bytes shown as '?'. */
const char *sbx_shown(const char *s, char *buf, size_t n);
void sbx_sio_fail(struct sbx_sio *io, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int sbx_state_vcpu(struct sbx_vm *vm, struct sbx_sio *io, int reset);
int sbx_state_monitor(struct sbx_vm *vm, struct sbx_sio *io);
int sbx_state_image(struct sbx_vm *vm, struct sbx_sio *io);
int sbx_state_clock(struct sbx_vm *vm, struct sbx_sio *io);
/* The threads' vCPUs (a section only a program with threads has). */
int sbx_state_threads(struct sbx_vm *vm, struct sbx_sio *io);
/* objects.c: the pipes, eventfds and epoll instances the program made (a section only a
 * program with some has); which handles those are. */
int sbx_state_objects(struct sbx_vm *vm, struct sbx_sio *io);
struct sbx_handle;
int sbx_handle_is_object(const struct sbx_handle *h);
/* The clock fields of the boot page, moved so that the guest's clocks go on from where they
 * were when guest_tsc was read: realtime follows the host's, monotonic and CPU time do not
 * count the time the sandbox was stopped. */
void sbx_clock_rebase(struct sbx_vm *vm, uint64_t guest_tsc, int64_t host_rt_then);

/* reset.c: the pieces of sbx_reset, for exec.c, which resets with the vCPU parked or
 * spinning. */
#define SBX_RESET_PT_RELOAD 1 /* page tables put back: may re-add the memslot (vCPU held) */
#define SBX_RESET_PT_GUEST 2  /* ... may list them for the parked kernel (exec runs) */
int sbx_reset_pages(struct sbx_vm *vm, struct sbx_snap *s, int how, uint64_t *pages, int *pt,
		    uint32_t *nfix, char *err, size_t errlen);
/* Whether two images of guest RAM (a run's end, the snapshot) map the kernel's ranges alike,
 * entry for entry, in tables read from each (guest values, bounded): what a reset's list of
 * page-table entries for the kernel to write again needs. */
int sbx_reset_kernel_maps_alike(const uint8_t *now, const uint8_t *then, uint64_t size);
int sbx_reset_vcpu(struct sbx_vm *vm, struct sbx_snap *s, char *err, size_t errlen);
int sbx_reset_monitor(struct sbx_vm *vm, struct sbx_snap *s, char *err, size_t errlen);
/* A snapshot taken paused with threads: 1 if it holds them. Putting them back needs their host
 * threads ended (sbx_threads_reset), and for a run vCPU 0 put back first (their clocks follow
 * its); they start with the next sbx_vm_run. */
int sbx_snapshot_threads(const struct sbx_snap *s);
int sbx_reset_threads(struct sbx_vm *vm, struct sbx_snap *s, char *err, size_t errlen);
/* Guest pages [lo, hi) and the page at `page` (if non-zero) are never put back. */
void sbx_snapshot_keep(struct sbx_snap *s, uint64_t lo, uint64_t hi, uint64_t page);
/* The snapshot's copy of the page at gpa. */
const uint8_t *sbx_snapshot_page(const struct sbx_snap *s, uint64_t gpa);

/* snapshot.c */
/* The snapshot into fd. With watch_fd >= 0 (the connection of the client that asked), the
 * write is abandoned with -ECANCELED as soon as that client hangs up. */
int sbx_snapshot_write_fd(struct sbx_vm *vm, int fd, int zstd_level, int watch_fd, uint64_t *pages,
			  char *err, size_t errlen);
/* The state sections (no RAM) as a snapshot file image in memory, for migration. */
int sbx_state_blob(struct sbx_vm *vm, uint8_t **buf, size_t *len, char *err, size_t errlen);
/* Applies every state section of an opened snapshot to a VM whose RAM is in place. */
struct mig_snap_reader;
int sbx_state_apply(struct sbx_vm *vm, struct mig_snap_reader *r, char *err, size_t errlen);
/* A VM shell for a restore: RAM of mem_size, KVM objects, no program loaded. */
int sbx_vm_create_empty(const struct sbx_config *cfg, uint64_t mem_size, struct sbx_vm **out,
			char *err, size_t errlen);

/* migration.c: the source side, run on the control thread; the stream takes over fd. msg gets
 * one line either way. */
int sbx_migrate_out(struct sbx_vm *vm, int fd, const char *addr, char *msg, size_t msglen);

/* control.c: the control socket (sandbox-ctl), bound now (before confinement) and served
 * from a thread while the sandbox runs. */
struct sbx_control {
	int fd;
	pthread_t thread;
	int started;
	atomic_int stop;
};

#endif
