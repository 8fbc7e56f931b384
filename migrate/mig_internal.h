/* Private to migrate/: what snapfile.c and stream.c share. Not part of the module's API. */
#ifndef SBX_MIG_INTERNAL_H
#define SBX_MIG_INTERNAL_H

#include <stddef.h>

/* Fills err with one line (newlines in caller-supplied strings become spaces) and returns rc. */
__attribute__((format(printf, 4, 5))) int mig_fail(char *err, size_t errlen, int rc,
						   const char *fmt, ...);

#endif
