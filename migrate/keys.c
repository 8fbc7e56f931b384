/* The migration key (migrate.h: mig_key_load): a file of at least 32 bytes of secret, readable
 * by its owner only, hashed (keyed BLAKE2b) to the 32-byte pre-shared key both ends of a
 * stream hold (docs/migration-stream.md, "Key file"); and libsodium's one-time set-up. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sodium.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mig_internal.h"

#define KEY_FILE_MAX 4096

static pthread_once_t sodium_once = PTHREAD_ONCE_INIT;
static int sodium_status;

static void sodium_init_once(void)
{
	sodium_status = sodium_init();
}

int mig_sodium_ready(char *err, size_t errlen)
{
	pthread_once(&sodium_once, sodium_init_once);
	if (sodium_status < 0)
		return mig_fail(err, errlen, -ENOSYS,
				MIG_STREAM_PFX "libsodium failed to initialise");
	return 0;
}

/* A regular file, private to its owner, small enough to be a key file. */
static int check_key_file(int fd, const char *path, char *err, size_t errlen)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return mig_fail(err, errlen, -errno, "%s: migration key: %s", path,
				strerror(errno));
	if (!S_ISREG(st.st_mode))
		return mig_fail(err, errlen, -EINVAL, "%s: migration key: not a regular file",
				path);
	/* As ssh does with private keys: a secret others can read is not a secret. */
	if (st.st_mode & 077)
		return mig_fail(
		    err, errlen, -EPERM,
		    "%s: migration key: mode %04o lets group or others at it (chmod 600)", path,
		    (unsigned)(st.st_mode & 07777));
	if (st.st_size > KEY_FILE_MAX)
		return mig_fail(err, errlen, -EFBIG,
				"%s: migration key: file is %lld bytes, at most %d", path,
				(long long)st.st_size, KEY_FILE_MAX);
	return 0;
}

/* Text keys lose their trailing whitespace so that `echo` and an editor agree. Random bytes are
 * never all printable, so a raw key is hashed exactly as it is. */
static size_t secret_length(const uint8_t *buf, size_t n)
{
	bool text = true;
	for (size_t i = 0; i < n && text; i++)
		text = (buf[i] >= 0x20 && buf[i] < 0x7f) || buf[i] == '\n' || buf[i] == '\r' ||
		       buf[i] == '\t';
	if (text)
		while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' ' ||
				 buf[n - 1] == '\t'))
			n--;
	return n;
}

/* The key file's bytes into buf (KEY_FILE_MAX + 1 bytes): the count or -errno. */
static ssize_t read_key_file(const char *path, uint8_t *buf, char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return mig_fail(err, errlen, -errno, "%s: migration key: %s", path,
				strerror(errno));
	int r = check_key_file(fd, path, err, errlen);
	ssize_t n = r < 0 ? r : mig_pread_all(fd, buf, KEY_FILE_MAX + 1, 0);
	close(fd);
	if (r < 0)
		return r;
	if (n < 0)
		return mig_fail(err, errlen, (int)n, "%s: migration key: read: %s", path,
				strerror((int)-n));
	if (n > KEY_FILE_MAX)
		return mig_fail(err, errlen, -EFBIG, "%s: migration key: file grew past %d bytes",
				path, KEY_FILE_MAX);
	return n;
}

int mig_key_load(const char *path, uint8_t key[MIG_KEY_BYTES], char *err, size_t errlen)
{
	static const uint8_t label[16] = "sbx-mig-key-v1\0";
	uint8_t buf[KEY_FILE_MAX + 1];
	int r = mig_sodium_ready(err, errlen);
	if (r < 0)
		return r;
	ssize_t got = read_key_file(path, buf, err, errlen);
	size_t n = got < 0 ? 0 : secret_length(buf, (size_t)got);
	if (got >= 0 && n < MIG_KEY_BYTES)
		got = mig_fail(err, errlen, -EINVAL,
			       "%s: migration key: only %zu bytes of secret, at least %d needed "
			       "(e.g. head -c 32 /dev/urandom > KEYFILE)",
			       path, n, MIG_KEY_BYTES);
	if (got >= 0)
		crypto_generichash(key, MIG_KEY_BYTES, buf, n, label, sizeof(label));
	sodium_memzero(buf, sizeof(buf));
	return got < 0 ? (int)got : 0;
}
