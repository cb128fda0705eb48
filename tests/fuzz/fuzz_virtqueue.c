/* libFuzzer target for split virtqueues: make fuzz;
 * build-fuzz/fuzz_virtqueue -close_fd_mask=2 tests/fuzz/corpus/virtqueue */
#include "fuzz_virtqueue.h"
#include "util/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	log_set_level(LOG_ERROR);
	/* Guest errors are formatted and written (their messages take guest values); run with
	 * -close_fd_mask=2 to keep them off the terminal. */
	log_set_guest_errors(true);
	return fuzz_virtqueue_one(data, size);
}
