#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "loader_test.h"

struct loader_mem test_mem_new(uint8_t fill)
{
	void *p =
	    mmap(NULL, TEST_MEM_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	cr_assert(p != MAP_FAILED, "mmap guest RAM");
	if (fill)
		memset(p, fill, TEST_MEM_SIZE);
	return (struct loader_mem){.base = p, .size = TEST_MEM_SIZE};
}

void test_mem_free(struct loader_mem *mem)
{
	munmap(mem->base, mem->size);
	mem->base = NULL;
}

struct loader_params test_params(const struct loader_mem *mem, int mem_is_zero)
{
	return (struct loader_params){.min_addr = TEST_MIN_ADDR,
				      .max_addr = mem->size,
				      .pie_base = TEST_MIN_ADDR,
				      .mem_is_zero = mem_is_zero};
}

uint8_t *test_read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	cr_assert(f, "open %s", path);
	cr_assert(fseek(f, 0, SEEK_END) == 0);
	long n = ftell(f);
	cr_assert(n >= 0);
	rewind(f);
	uint8_t *buf = malloc((size_t)n + 1);
	cr_assert(buf);
	cr_assert(fread(buf, 1, (size_t)n, f) == (size_t)n, "read %s", path);
	fclose(f);
	*len = (size_t)n;
	return buf;
}

const char *test_data_path(const char *name, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s", SBX_ELF_DATA_DIR, name);
	return buf;
}

int test_all_bytes(const uint8_t *p, size_t len, uint8_t b)
{
	for (size_t i = 0; i < len; i++)
		if (p[i] != b)
			return 0;
	return 1;
}

void test_env_init(struct test_env *e)
{
	memset(e, 0, sizeof(*e));
	e->mem = test_mem_new(0);
	e->p = test_params(&e->mem, 1);
}

void test_env_free(struct test_env *e)
{
	test_mem_free(&e->mem);
}

int test_env_load(struct test_env *e, const char *name, struct loader_image *img)
{
	char path[4096];
	e->err[0] = 0;
	return loader_load_file(test_data_path(name, path, sizeof(path)), &e->p, &e->mem, img,
				e->err, sizeof(e->err));
}
