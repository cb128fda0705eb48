/* struct error helpers. */
#include <stdarg.h>
#include <stdio.h>

#include "util/error.h"

int error_set(struct error *err, int code, const char *fmt, ...)
{
	if (err) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
		va_end(ap);
		err->code = code;
	}
	return code;
}
