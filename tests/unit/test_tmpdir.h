/* A scratch directory for tests that make files (tests/unit/test_qcow2.c, test_blk_aio.c):
 * created in a cmocka group setup, removed with everything in it in the teardown. */
#ifndef KESTREL_TEST_TMPDIR_H
#define KESTREL_TEST_TMPDIR_H

#include <stdio.h>
#include <stdlib.h>

static char dir[256];

/* dir/name; the last four results stay valid, so a call can take several paths. */
static inline const char *tmp(const char *name)
{
	static char buf[4][512];
	static int i;
	i = (i + 1) % 4;
	snprintf(buf[i], sizeof(buf[i]), "%s/%s", dir, name);
	return buf[i];
}

/* /tmp/PREFIX-XXXXXX; 0 or -1, as a cmocka setup returns. */
static inline int tmpdir_create(const char *prefix)
{
	snprintf(dir, sizeof(dir), "/tmp/%s-XXXXXX", prefix);
	return mkdtemp(dir) ? 0 : -1;
}

static inline int tmpdir_remove(void)
{
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

#endif
