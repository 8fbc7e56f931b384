/* A program that wrecks what the report is built from before it faults: its stack pointers,
 * the kernel's descriptor tables, its page tables. The monitor must still end it with a report
 * and never crash. (The addresses are this project's guest layout: guest-abi/include.) */
#include <stdio.h>
#include <string.h>

static void (*volatile garbage)(void) = (void (*)(void))0xdeadbeef000;

int main(int argc, char **argv)
{
	const char *how = argc > 1 ? argv[1] : "";
	printf("wreck: %s\n", how);
	fflush(stdout);
	if (!strcmp(how, "stack")) {
		/* rsp and rbp into unmapped memory, then a jump to nowhere. */
		__asm__ volatile("mov $0x8, %%rsp\n\tmov $0x10, %%rbp\n\tjmp *%0" ::"r"(garbage));
	} else if (!strcmp(how, "idt")) {
		memset((void *)0x12000, 0xff, 4096); /* the IDT */
		*(volatile int *)(long)argc = 0;
	} else if (!strcmp(how, "pagetables")) {
		memset((void *)0x20000, 0, 3 * 4096); /* PML4, PDPT, first PD */
		puts("still here");
	} else if (!strcmp(how, "ist")) {
		memset((void *)0x180000, 0xff, 0xc000); /* the IST stacks */
		*(volatile int *)(long)argc = 0;
	}
	return 1;
}
