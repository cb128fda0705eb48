/* Levelled logging. One line per message, written with a single write() so lines from
 * different threads do not interleave. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "util/log.h"

static enum log_level current_level = LOG_WARN;
static bool guest_errors;

void log_set_level(enum log_level level)
{
	current_level = level;
}

enum log_level log_get_level(void)
{
	return current_level;
}

void log_set_guest_errors(bool on)
{
	guest_errors = on;
}

bool log_guest_errors_enabled(void)
{
	return guest_errors;
}

static void log_vwrite(const char *tag, const char *subsys, const char *fmt, va_list ap)
{
	char buf[1024];
	int n = snprintf(buf, sizeof(buf), "kestrel: %s%s%s", tag, subsys, subsys[0] ? ": " : "");
	if (n < 0)
		return;
	if ((size_t)n < sizeof(buf))
		n += vsnprintf(buf + n, sizeof(buf) - n, fmt, ap);
	if ((size_t)n >= sizeof(buf) - 2)
		n = sizeof(buf) - 2;
	/* Raw-mode terminals need "\r\n"; a plain '\n' is fine for files and pipes too. */
	if (isatty(STDERR_FILENO))
		buf[n++] = '\r';
	buf[n++] = '\n';
	ssize_t r = write(STDERR_FILENO, buf, n);
	(void)r;
}

void log_msg(enum log_level level, const char *subsys, const char *fmt, ...)
{
	static const char *const tags[] = {"error: ", "warning: ", "", "debug: "};
	if (level > current_level)
		return;
	va_list ap;
	va_start(ap, fmt);
	log_vwrite(tags[level], subsys, fmt, ap);
	va_end(ap);
}

void log_guest(const char *subsys, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vwrite("guest-error: ", subsys, fmt, ap);
	va_end(ap);
}
