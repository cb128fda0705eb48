/* make check: every input of tests/fuzz/corpus/virtqueue through the fuzz entry point. */
#include "corpus_run.h"
#include "fuzz_virtqueue.h"

int main(int argc, char **argv)
{
	return corpus_run("virtqueue", fuzz_virtqueue_one, argc, argv);
}
