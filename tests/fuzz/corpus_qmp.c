/* make check: every input of tests/fuzz/corpus/qmp through the fuzz entry point. */
#include "corpus_run.h"
#include "fuzz_qmp.h"

int main(int argc, char **argv)
{
	return corpus_run("qmp", fuzz_qmp_one, argc, argv);
}
