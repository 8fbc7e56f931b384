/* The only way the loader touches guest RAM: every access checked against the window. */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "loader_priv.h"

static int in_window(const struct loader_mem *mem, uint64_t addr, uint64_t len)
{
	return mem->base && addr <= mem->size && len <= mem->size - addr;
}

int loader_guest_write(struct loader_mem *mem, uint64_t addr, const void *src, uint64_t len)
{
	if (!in_window(mem, addr, len))
		return -EFAULT;
	const uint8_t *p = src;
	while (mem->use_fd && len) {
		ssize_t n = pwrite(mem->fd, p, len, (off_t)addr);
		if (n <= 0)
			break; /* the mapping takes the rest */
		p += n, addr += (uint64_t)n, len -= (uint64_t)n;
	}
	if (len)
		memcpy(mem->base + addr, p, len);
	return 0;
}

int loader_guest_zero(struct loader_mem *mem, uint64_t addr, uint64_t len)
{
	if (!in_window(mem, addr, len))
		return -EFAULT;
	if (len)
		memset(mem->base + addr, 0, len);
	return 0;
}
