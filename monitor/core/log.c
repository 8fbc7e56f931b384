/* The monitor's messages: its log, and the one-line errors its functions return. */
#include <stdarg.h>
#include <stdio.h>

#include "vm.h"

void sbx_logf(struct sbx_vm *vm, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(vm->cfg.log, "%s: ", sbx_config_tool(&vm->cfg));
	vfprintf(vm->cfg.log, fmt, ap);
	fputc('\n', vm->cfg.log);
	va_end(ap);
}

int sbx_fail(char *err, size_t errlen, int r, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return r;
}
