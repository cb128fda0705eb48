/* Regression run of a fuzz corpus without libFuzzer (built with the normal compiler for make
 * check, and with ASAN in build-asan): every file of the corpus goes to the same entry point
 * the fuzzer uses, one TAP line per file, in name order. A crash, a failed check of the
 * harness or a sanitizer report fails the run. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "corpus_run.h"
#include "util/log.h"

static int cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static unsigned char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	unsigned char *buf = NULL;
	size_t cap = 0, n = 0;
	for (;;) {
		if (n == cap) {
			cap = cap ? cap * 2 : 65536;
			unsigned char *p = realloc(buf, cap);
			if (!p)
				break;
			buf = p;
		}
		size_t got = fread(buf + n, 1, cap - n, f);
		n += got;
		if (got == 0)
			break;
	}
	fclose(f);
	*len = n;
	return buf ? buf : malloc(1);
}

int corpus_run(const char *name, int (*one)(const uint8_t *data, size_t size), int argc,
	       char **argv)
{
	const char *root = getenv("KESTREL_ROOT");
	char dir[4096];
	if (argc > 1)
		snprintf(dir, sizeof(dir), "%s", argv[1]);
	else
		snprintf(dir, sizeof(dir), "%s/tests/fuzz/corpus/%s", root ? root : ".", name);
	log_set_level(LOG_ERROR);
	DIR *d = opendir(dir);
	if (!d) {
		printf("not ok 1 - cannot open corpus %s\n1..1\n", dir);
		return 1;
	}
	char **names = NULL;
	size_t n = 0, cap = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 256;
			char **p = realloc(names, cap * sizeof(*names));
			if (!p)
				break;
			names = p;
		}
		names[n++] = strdup(e->d_name);
	}
	closedir(d);
	if (n)
		qsort(names, n, sizeof(names[0]), cmp);
	int failed = 0;
	for (size_t i = 0; i < n; i++) {
		char path[8192];
		size_t len = 0;
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		unsigned char *buf = slurp(path, &len);
		if (!buf) {
			printf("not ok %zu - %s: cannot read\n", i + 1, names[i]);
			failed = 1;
		} else {
			/* The TAP line first: if the input kills the process, the log names it. */
			printf("# %s\n", names[i]);
			fflush(stdout);
			one(buf, len);
			printf("ok %zu - corpus %s (%zu bytes)\n", i + 1, names[i], len);
		}
		free(buf);
		free(names[i]);
	}
	free(names);
	printf("1..%zu\n", n);
	return failed;
}
