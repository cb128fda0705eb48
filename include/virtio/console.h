/* virtio-console with one port (virtio 1.2 section 5.3, no VIRTIO_CONSOLE_F_MULTIPORT): the
 * guest sees it as hvc0. Output (transmitq) goes to a backend write function, inline on the
 * vCPU thread; input is offered with virtio_console_input() into the receiveq, and rx_ready
 * says when the driver posted receive buffers (input that did not fit can be offered again). */
#ifndef KESTREL_VIRTIO_CONSOLE_H
#define KESTREL_VIRTIO_CONSOLE_H

#include <stddef.h>
#include <stdint.h>

#include "virtio/virtio.h"

#define VIRTIO_CONSOLE_QUEUE_SIZE  64
#define VIRTIO_CONSOLE_CONFIG_SIZE 12
#define VIRTIO_CONSOLE_RX	   0
#define VIRTIO_CONSOLE_TX	   1

struct virtio_console {
	struct virtio_pci vp;
	uint8_t config[VIRTIO_CONSOLE_CONFIG_SIZE];
	void (*write)(void *opaque, const uint8_t *buf, size_t len);
	void *write_opaque;
	void (*rx_ready)(void *opaque); /* optional; vCPU thread; same opaque as write */
	uint64_t tx_bytes, rx_bytes;
};

int virtio_console_init(struct virtio_console *vc, const struct guest_mem *gm,
			void (*write)(void *opaque, const uint8_t *buf, size_t len), void *opaque)
    __attribute__((warn_unused_result));
void virtio_console_destroy(struct virtio_console *vc);
/* Offer host input to the guest: returns the bytes taken (0 while the driver has posted no
 * receive buffers, or before DRIVER_OK). Any thread. */
size_t virtio_console_input(struct virtio_console *vc, const uint8_t *buf, size_t len);

#endif
