/* make check: every input of tests/fuzz/corpus/virtio_dev through the fuzz entry point. */
#include "corpus_run.h"
#include "fuzz_virtio_dev.h"

int main(int argc, char **argv)
{
	return corpus_run("virtio_dev", fuzz_virtio_dev_one, argc, argv);
}
