/* The corpus regression runner shared by the corpus_* test binaries (tests/fuzz/corpus_run.c). */
#ifndef KESTREL_TESTS_FUZZ_CORPUS_RUN_H
#define KESTREL_TESTS_FUZZ_CORPUS_RUN_H

#include <stddef.h>
#include <stdint.h>

/* Feed every file of tests/fuzz/corpus/NAME (under $KESTREL_ROOT, or argv[1] if given) to
 * `one`, one TAP line per file; returns main's exit status. */
int corpus_run(const char *name, int (*one)(const uint8_t *data, size_t size), int argc,
	       char **argv);

#endif
