/* Regression run of the qcow2 fuzz corpus without libFuzzer (built with gcc for make
 * check, and with ASAN+UBSAN by `make asan` into build-asan, which `tests/run.sh build-asan`
 * runs): feeds every file in tests/fuzz/corpus/qcow2/ to the fuzz entry point and prints one
 * TAP line per file. A crash or sanitizer report fails the run. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_qcow2.h"
#include "util/log.h"

static int cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv)
{
	const char *root = getenv("KESTREL_ROOT");
	char dir[4096];
	snprintf(dir, sizeof(dir), "%s/tests/fuzz/corpus/qcow2",
		 argc > 1 ? argv[1]
		 : root	  ? root
			  : ".");
	if (argc > 1)
		snprintf(dir, sizeof(dir), "%s", argv[1]);
	log_set_level(LOG_ERROR);
	DIR *d = opendir(dir);
	if (!d) {
		printf("not ok 1 - cannot open corpus %s\n1..1\n", dir);
		return 1;
	}
	char *names[4096];
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)) && n < 4096)
		if (e->d_name[0] != '.')
			names[n++] = strdup(e->d_name);
	closedir(d);
	qsort(names, (size_t)n, sizeof(names[0]), cmp);
	for (int i = 0; i < n; i++) {
		char p[8192];
		snprintf(p, sizeof(p), "%s/%s", dir, names[i]);
		FILE *f = fopen(p, "rb");
		if (!f) {
			printf("not ok %d - %s: cannot read\n", i + 1, names[i]);
			free(names[i]);
			continue;
		}
		fseek(f, 0, SEEK_END);
		long sz = ftell(f);
		fseek(f, 0, SEEK_SET);
		unsigned char *buf = malloc(sz > 0 ? (size_t)sz : 1);
		size_t got = fread(buf, 1, (size_t)(sz > 0 ? sz : 0), f);
		fclose(f);
		fuzz_qcow2_one(buf, got);
		free(buf);
		printf("ok %d - corpus %s (%zu bytes)\n", i + 1, names[i], got);
		free(names[i]);
	}
	printf("1..%d\n", n);
	return 0;
}
