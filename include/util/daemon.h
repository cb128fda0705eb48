/* Running in the background, as QEMU's -daemonize and -pidfile do.
 *
 * daemon_start() forks before anything else is set up (no threads yet): the parent waits until
 * the child says it is ready (daemon_ready(), after the VM and its monitor exist) and exits 0,
 * or exits with the child's status when the child fails first, its error message already on
 * the shared stderr. The child is a session leader without a controlling terminal; at
 * daemon_ready() its stdin/stdout/stderr go to /dev/null.
 *
 * A pid file holds the running process's pid under an exclusive lock (lockf), so a second
 * instance with the same file is refused while the first runs, and a stale file left by a
 * crash is simply taken over. It is removed on a normal exit. */
#ifndef KESTREL_UTIL_DAEMON_H
#define KESTREL_UTIL_DAEMON_H

#include "util/error.h"

/* Returns in the child (0) or on failure to fork (-errno); the parent never returns. */
int daemon_start(struct error *err) __attribute__((warn_unused_result));
/* The child is set up: release the parent, detach from its stdio. */
void daemon_ready(void);

/* Creates (or takes over) PATH with this process's pid and keeps it locked. */
int pidfile_create(const char *path, struct error *err) __attribute__((warn_unused_result));
/* Removes the pid file created by pidfile_create(), if any. */
void pidfile_remove(void);

#endif
