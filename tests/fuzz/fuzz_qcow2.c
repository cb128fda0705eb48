/* libFuzzer target for qcow2 images: make fuzz; build-fuzz/fuzz_qcow2 tests/fuzz/corpus/qcow2 */
#include "fuzz_qcow2.h"
#include "util/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	log_set_level(LOG_ERROR);
	return fuzz_qcow2_one(data, size);
}
