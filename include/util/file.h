/* Whole-file reading for kernels, initrds and firmware. */
#ifndef KESTREL_UTIL_FILE_H
#define KESTREL_UTIL_FILE_H

#include <stddef.h>
#include <stdint.h>

#include "util/error.h"

/* Read `path` into a malloc'd buffer. Fails with a message naming the file if it cannot be
 * opened, is not a regular file, is empty, or is larger than max_size. */
int file_read_all(const char *path, const char *what, size_t max_size, uint8_t **data, size_t *size,
		  struct error *err) __attribute__((warn_unused_result));

#endif
