/* Whole-file reading. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/file.h"

int file_read_all(const char *path, const char *what, size_t max_size, uint8_t **data, size_t *size,
		  struct error *err)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return error_set(err, -errno, "cannot open %s '%s': %s", what, path,
				 strerror(errno));
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return error_set(err, -EINVAL, "%s '%s' is not a regular file", what, path);
	}
	if (st.st_size == 0) {
		close(fd);
		return error_set(err, -EINVAL, "%s '%s' is empty", what, path);
	}
	if ((uint64_t)st.st_size > max_size) {
		close(fd);
		return error_set(err, -EFBIG, "%s '%s' is too large (%lld MiB)", what, path,
				 (long long)(st.st_size >> 20));
	}
	uint8_t *buf = malloc(st.st_size);
	if (!buf) {
		close(fd);
		return error_set(err, -ENOMEM, "out of memory reading %s '%s'", what, path);
	}
	size_t done = 0;
	while (done < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + done, st.st_size - done);
		if (n <= 0) {
			int e = n < 0 ? errno : EIO;
			free(buf);
			close(fd);
			return error_set(err, -e, "cannot read %s '%s': %s", what, path,
					 strerror(e));
		}
		done += n;
	}
	close(fd);
	*data = buf;
	*size = done;
	return 0;
}
