/* virtio-rng / entropy device (virtio 1.2 section 5.4): fills the driver's buffers from the
 * host's getrandom(), inline on the vCPU thread that rang the doorbell. */
#ifndef KESTREL_VIRTIO_RNG_H
#define KESTREL_VIRTIO_RNG_H

#include <stdint.h>

#include "virtio/virtio.h"

#define VIRTIO_RNG_QUEUE_SIZE 64

struct virtio_rng {
	struct virtio_pci vp;
	uint64_t bytes; /* handed to the guest so far */
};

int virtio_rng_init(struct virtio_rng *vr, const struct guest_mem *gm)
    __attribute__((warn_unused_result));
void virtio_rng_destroy(struct virtio_rng *vr);

#endif
