/* Helpers shared by the loader test files. */
#ifndef SBX_LOADER_TEST_H
#define SBX_LOADER_TEST_H

#include <stddef.h>
#include <stdint.h>

#include "loader.h"

#define TEST_MEM_SIZE (64ull << 20)
#define TEST_MIN_ADDR 0x400000ull
#define TEST_SENTINEL 0xa5

/* Guest RAM for one test: TEST_MEM_SIZE bytes filled with `fill`. */
struct loader_mem test_mem_new(uint8_t fill);
void test_mem_free(struct loader_mem *mem);

/* The parameters every test starts from: [TEST_MIN_ADDR, mem size), PIEs at TEST_MIN_ADDR. */
struct loader_params test_params(const struct loader_mem *mem, int mem_is_zero);

/* The whole file at path, malloc'd; *len receives its size. Aborts the test on error. */
uint8_t *test_read_file(const char *path, size_t *len);

/* A fixture under tests/data/elf/. */
const char *test_data_path(const char *name, char *buf, size_t len);

/* One test's guest RAM, the parameters it starts from, an image and room for an error. */
struct test_env {
	struct loader_mem mem;
	struct loader_params p;
	struct loader_image img;
	char err[512];
};
void test_env_init(struct test_env *e);
void test_env_free(struct test_env *e);

/* loader_load_file of the fixture `name` (tests/data/elf/) into *img, e->err its message. */
int test_env_load(struct test_env *e, const char *name, struct loader_image *img);

/* Whether every byte of [p, p+len) equals b. */
int test_all_bytes(const uint8_t *p, size_t len, uint8_t b);

#endif
