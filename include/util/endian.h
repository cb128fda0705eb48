/* Unaligned fixed-endian loads and stores for on-disk and in-guest formats (qcow2 is big
 * endian; the Linux boot protocol and virtio are little endian). */
#ifndef KESTREL_UTIL_ENDIAN_H
#define KESTREL_UTIL_ENDIAN_H

#include <endian.h>
#include <stdint.h>
#include <string.h>

#define ENDIAN_ACCESSORS(bits)                                            \
	static inline uint##bits##_t be##bits##_load(const uint8_t *p)    \
	{                                                                 \
		uint##bits##_t v;                                         \
		memcpy(&v, p, sizeof(v));                                 \
		return be##bits##toh(v);                                  \
	}                                                                 \
	static inline void be##bits##_store(uint8_t *p, uint##bits##_t v) \
	{                                                                 \
		v = htobe##bits(v);                                       \
		memcpy(p, &v, sizeof(v));                                 \
	}                                                                 \
	static inline uint##bits##_t le##bits##_load(const uint8_t *p)    \
	{                                                                 \
		uint##bits##_t v;                                         \
		memcpy(&v, p, sizeof(v));                                 \
		return le##bits##toh(v);                                  \
	}                                                                 \
	static inline void le##bits##_store(uint8_t *p, uint##bits##_t v) \
	{                                                                 \
		v = htole##bits(v);                                       \
		memcpy(p, &v, sizeof(v));                                 \
	}

ENDIAN_ACCESSORS(16)
ENDIAN_ACCESSORS(32)
ENDIAN_ACCESSORS(64)

#undef ENDIAN_ACCESSORS

#endif
