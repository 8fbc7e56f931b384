/* nullptr: prints "about to crash", then writes through a NULL pointer: dies with SIGSEGV (the
 * sandbox prints a fault report and exits 139). */
#include <stdio.h>

int main(void)
{
	/* both volatile: the compiler can neither see the NULL (and emit a trap instead) nor drop
	 * the store */
	volatile int *volatile p = NULL;
	printf("about to crash\n");
	fflush(stdout);
	*p = 42;
	printf("still alive?\n");
	return 0;
}
