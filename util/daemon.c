/* --daemonize and --pidfile (see include/util/daemon.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util/daemon.h"

static int ready_fd = -1; /* the child's end of the pipe its parent waits on */
static int pid_fd = -1;	  /* the locked pid file */
static char *pid_path;

int daemon_start(struct error *err)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC))
		return error_set(err, -errno, "--daemonize: pipe: %s", strerror(errno));
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0) {
		int e = errno;
		close(p[0]);
		close(p[1]);
		return error_set(err, -e, "--daemonize: fork: %s", strerror(e));
	}
	if (pid > 0) {
		/* Parent: one byte means ready; end of file means the child failed (or died). */
		close(p[1]);
		char c;
		ssize_t n;
		do
			n = read(p[0], &c, 1);
		while (n < 0 && errno == EINTR);
		if (n == 1)
			_exit(0);
		int status;
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
		_exit(WIFEXITED(status) && WEXITSTATUS(status) ? WEXITSTATUS(status) : 1);
	}
	close(p[0]);
	ready_fd = p[1];
	setsid(); /* no controlling terminal: a hangup of the parent's terminal does not reach us */
	return 0;
}

void daemon_ready(void)
{
	if (ready_fd < 0)
		return;
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null >= 0) {
		dup2(null, STDIN_FILENO);
		dup2(null, STDOUT_FILENO);
		dup2(null, STDERR_FILENO);
		close(null);
	}
	ssize_t n;
	do
		n = write(ready_fd, "r", 1);
	while (n < 0 && errno == EINTR);
	close(ready_fd);
	ready_fd = -1;
}

int pidfile_create(const char *path, struct error *err)
{
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return error_set(err, -errno, "--pidfile: cannot open '%s': %s", path,
				 strerror(errno));
	if (lockf(fd, F_TLOCK, 0)) {
		int e = errno;
		char buf[32] = "";
		ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
		buf[n > 0 ? n : 0] = '\0';
		buf[strcspn(buf, "\n")] = '\0';
		close(fd);
		if (e == EACCES || e == EAGAIN)
			return error_set(err, -EEXIST,
					 "--pidfile: '%s' is locked: another instance is running "
					 "(pid %s)",
					 path, buf[0] ? buf : "?");
		return error_set(err, -e, "--pidfile: cannot lock '%s': %s", path, strerror(e));
	}
	char buf[32];
	int len = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
	if (ftruncate(fd, 0) || pwrite(fd, buf, len, 0) != len) {
		int e = errno;
		close(fd);
		return error_set(err, -e, "--pidfile: cannot write '%s': %s", path, strerror(e));
	}
	pid_fd = fd;
	free(pid_path);
	pid_path = strdup(path);
	return 0;
}

void pidfile_remove(void)
{
	if (pid_fd < 0)
		return;
	if (pid_path)
		unlink(pid_path);
	close(pid_fd);
	pid_fd = -1;
	free(pid_path);
	pid_path = NULL;
}
