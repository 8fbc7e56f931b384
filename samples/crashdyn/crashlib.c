/* The shared library of crash-dyn: a crash inside a library function, and a library function
 * that calls back into the program, so that a backtrace has to go through it. */
#include "crashlib.h"

int sbx_lib_calls;

__attribute__((noinline)) void sbx_lib_store(int *p, int v)
{
	*p = v; /* LIB-CRASH-LINE */
}

__attribute__((noinline)) void sbx_lib_call(void (*fn)(int *), int *p)
{
	fn(p);
	sbx_lib_calls++;
}
