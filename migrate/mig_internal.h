/* Private to migrate/: what snapfile.c and stream.c share. Not part of the module's API. */
#ifndef SBX_MIG_INTERNAL_H
#define SBX_MIG_INTERNAL_H

#include <stddef.h>

/* Fills err with one line (newlines in caller-supplied strings become spaces) and returns rc. */
__attribute__((format(printf, 4, 5))) int mig_fail(char *err, size_t errlen, int rc,
						   const char *fmt, ...);

/* mig_snap_tmp_open's fallback for file systems without O_TMPFILE: always a named file. */
int mig_snap_tmp_open_named(const char *path, char *tmp, size_t tmplen, char *err, size_t errlen);

#endif
