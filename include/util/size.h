/* Human sizes on the command line: "512M", "2G", "1.5G", "4096" (with a default unit). */
#ifndef KESTREL_UTIL_SIZE_H
#define KESTREL_UTIL_SIZE_H

#include <stdint.h>

/* Parse `s` as a size in bytes. Suffixes (case-insensitive) K, M, G, T, P, E are powers of
 * 1024, B is bytes; a bare number is multiplied by default_unit. Returns 0, or -EINVAL for
 * something that is not a size, -ERANGE for one that overflows 64 bits. */
int size_parse(const char *s, uint64_t default_unit, uint64_t *out)
    __attribute__((warn_unused_result));
/* Format bytes as "512 MiB", "1.5 GiB" into buf. */
const char *size_format(uint64_t bytes, char *buf, unsigned len);

#endif
