/* A small error value: a negative errno for code and a message for a person.
 * Functions that can fail for reasons a user must be told take a `struct error *` and
 * return error_set(...)'s result, so `return error_set(err, -EINVAL, "...")` is one line. */
#ifndef KESTREL_UTIL_ERROR_H
#define KESTREL_UTIL_ERROR_H

struct error {
	int code; /* negative errno, 0 when no error */
	char msg[512];
};

/* Record the error (if err is not NULL) and return code. */
int error_set(struct error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
