/* libFuzzer target for whole virtio devices behind their PCI function: make fuzz;
 * build-fuzz/fuzz_virtio_dev -close_fd_mask=2 tests/fuzz/corpus/virtio_dev */
#include "fuzz_virtio_dev.h"
#include "util/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	log_set_level(LOG_ERROR);
	/* Guest errors are formatted and written (their messages take guest values); run with
	 * -close_fd_mask=2 to keep them off the terminal. */
	log_set_guest_errors(true);
	return fuzz_virtio_dev_one(data, size);
}
