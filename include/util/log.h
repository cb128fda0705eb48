/* Levelled logging to stderr, and guest-error logging that is off by default. */
#ifndef KESTREL_UTIL_LOG_H
#define KESTREL_UTIL_LOG_H

#include <stdbool.h>

enum log_level { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };

/* Messages above this level are dropped; default LOG_WARN, -v raises it. */
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* Guest errors (a guest that programs a device wrongly) are logged only when enabled (-d guest-errors). */
void log_set_guest_errors(bool on);
bool log_guest_errors_enabled(void);

void log_msg(enum log_level level, const char *subsys, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void log_guest(const char *subsys, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Each file defines LOG_SUBSYS ("uart", "kvm", ...) before including this header. */
#ifndef LOG_SUBSYS
#define LOG_SUBSYS "kestrel"
#endif
#define log_error(...) log_msg(LOG_ERROR, LOG_SUBSYS, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, LOG_SUBSYS, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, LOG_SUBSYS, __VA_ARGS__)
#define log_debug(...)                                               \
	do {                                                         \
		if (log_get_level() >= LOG_DEBUG)                    \
			log_msg(LOG_DEBUG, LOG_SUBSYS, __VA_ARGS__); \
	} while (0)
#define log_guest_error(...)                                \
	do {                                                \
		if (log_guest_errors_enabled())             \
			log_guest(LOG_SUBSYS, __VA_ARGS__); \
	} while (0)

#endif
