/* dlopen: loads LIB (default libm.so.6) at run time, as Python extension modules and NSS are,
 * and calls SYMBOL (default cos) with 0.0; prints the result, or dlerror() and exits 1. A
 * dynamic program's default view holds only what ld.so needs to start it, so in the sandbox
 * the library must be shown with --ro. glibc only. */
#include <dlfcn.h>
#include <stdio.h>

int main(int argc, char **argv)
{
	const char *lib = argc > 1 ? argv[1] : "libm.so.6";
	const char *sym = argc > 2 ? argv[2] : "cos";
	void *h = dlopen(lib, RTLD_NOW);
	if (!h) {
		printf("dlopen: %s\n", dlerror());
		return 1;
	}
	double (*f)(double) = (double (*)(double))dlsym(h, sym);
	if (!f) {
		printf("dlsym: %s\n", dlerror());
		return 1;
	}
	printf("%s(0) = %g\n", sym, f(0.0));
	dlclose(h);
	return 0;
}
