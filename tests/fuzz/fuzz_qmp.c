/* libFuzzer target for the QMP monitor's input path: make fuzz;
 * build-fuzz/fuzz_qmp -close_fd_mask=2 tests/fuzz/corpus/qmp */
#include "fuzz_qmp.h"
#include "util/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	log_set_level(LOG_ERROR);
	return fuzz_qmp_one(data, size);
}
