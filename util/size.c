/* Size parsing and formatting. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/size.h"

static int unit_shift(char c)
{
	switch (toupper((unsigned char)c)) {
	case 'B':
		return 0;
	case 'K':
		return 10;
	case 'M':
		return 20;
	case 'G':
		return 30;
	case 'T':
		return 40;
	case 'P':
		return 50;
	case 'E':
		return 60;
	default:
		return -1;
	}
}

int size_parse(const char *s, uint64_t default_unit, uint64_t *out)
{
	if (!s || !isdigit((unsigned char)s[0]))
		return -EINVAL;
	char *end;
	errno = 0;
	unsigned long long whole = strtoull(s, &end, 10);
	if (errno)
		return -ERANGE;
	/* An optional fraction, as in "1.5G"; kept exact to 1/1024 of the unit. */
	unsigned long long frac_num = 0, frac_den = 1;
	if (*end == '.') {
		end++;
		if (!isdigit((unsigned char)*end))
			return -EINVAL;
		while (isdigit((unsigned char)*end)) {
			if (frac_den < 1000000000ULL) {
				frac_num = frac_num * 10 + (*end - '0');
				frac_den *= 10;
			}
			end++;
		}
	}
	uint64_t unit = default_unit;
	if (*end) {
		int shift = unit_shift(*end);
		if (shift < 0)
			return -EINVAL;
		unit = 1ULL << shift;
		end++;
		/* Accept "MiB"/"MB"-style spellings too. */
		if ((*end == 'i' || *end == 'I') && shift > 0)
			end++;
		if ((*end == 'b' || *end == 'B') && shift > 0)
			end++;
		if (*end)
			return -EINVAL;
	}
	if (unit && whole > UINT64_MAX / unit)
		return -ERANGE;
	uint64_t bytes = whole * unit;
	uint64_t extra = (uint64_t)((unsigned __int128)frac_num * unit / frac_den);
	if (bytes + extra < bytes)
		return -ERANGE;
	*out = bytes + extra;
	return 0;
}

const char *size_format(uint64_t bytes, char *buf, unsigned len)
{
	static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
	unsigned u = 0;
	double v = (double)bytes;
	while (v >= 1024 && u < 6) {
		v /= 1024;
		u++;
	}
	if (u == 0 || v == (uint64_t)v)
		snprintf(buf, len, "%llu %s", (unsigned long long)v, units[u]);
	else
		snprintf(buf, len, "%.1f %s", v, units[u]);
	return buf;
}
