/* virtio-console, single port (virtio 1.2 section 5.3: receiveq 0, transmitq 1, config
 * 5.3.4 cols/rows/max_nr_ports/emerg_wr, none of them offered). See include/virtio/console.h.
 */
#define LOG_SUBSYS "virtio-console"
#include <errno.h>
#include <string.h>

#include "util/log.h"
#include "virtio/console.h"

/* Lock held. */
static void tx(struct virtio_console *vc)
{
	struct virtio_dev *vd = &vc->vp.vdev;
	struct virtqueue *vq = &vd->vqs[VIRTIO_CONSOLE_TX];
	static __thread struct vq_elem elem;
	unsigned done = 0;
	int r;
	while ((r = vq_pop(vq, &elem)) > 0) {
		if (elem.n_in) {
			log_guest_error("virtio-console: transmit buffer is device-writable");
			r = -EINVAL;
			break;
		}
		for (unsigned s = 0; s < elem.n_out; s++)
			if (vc->write)
				vc->write(vc->write_opaque, elem.seg[s].ptr, elem.seg[s].len);
		vc->tx_bytes += elem.out_len;
		vq_push(vq, elem.head, 0);
		done++;
	}
	if (r < 0)
		virtio_set_needs_reset(vd);
	else if (done)
		virtio_notify_queue(vd, VIRTIO_CONSOLE_TX);
}

static void console_notify(struct virtio_dev *vd, unsigned q)
{
	struct virtio_console *vc = vd->opaque;
	pthread_mutex_lock(&vd->lock);
	bool running = virtio_dev_running(vd);
	if (running && q == VIRTIO_CONSOLE_TX)
		tx(vc);
	pthread_mutex_unlock(&vd->lock);
	/* An RX kick says buffers were added: whoever holds input may offer it again (outside
	 * the lock: it calls virtio_console_input() from its own thread). */
	if (running && q == VIRTIO_CONSOLE_RX && vc->rx_ready)
		vc->rx_ready(vc->write_opaque);
}

static const struct virtio_dev_ops console_ops = {.notify = console_notify};

size_t virtio_console_input(struct virtio_console *vc, const uint8_t *buf, size_t len)
{
	struct virtio_dev *vd = &vc->vp.vdev;
	static __thread struct vq_elem elem;
	size_t taken = 0;
	pthread_mutex_lock(&vd->lock);
	struct virtqueue *vq = &vd->vqs[VIRTIO_CONSOLE_RX];
	while (taken < len && virtio_dev_running(vd)) {
		int r = vq_pop(vq, &elem);
		if (r == 0)
			break;
		if (r > 0 && elem.n_out) {
			log_guest_error("virtio-console: receive buffer is device-readable");
			r = -EINVAL;
		}
		if (r < 0) {
			virtio_set_needs_reset(vd);
			break;
		}
		size_t n = vq_elem_write(&elem, 0, buf + taken, len - taken);
		vq_push(vq, elem.head, (uint32_t)n);
		taken += n;
	}
	vc->rx_bytes += taken;
	if (taken)
		virtio_notify_queue(vd, VIRTIO_CONSOLE_RX);
	pthread_mutex_unlock(&vd->lock);
	return taken;
}

int virtio_console_init(struct virtio_console *vc, const struct guest_mem *gm,
			void (*write)(void *opaque, const uint8_t *buf, size_t len), void *opaque)
{
	memset(vc->config, 0, sizeof(vc->config));
	vc->config[4] = 1; /* max_nr_ports (meaningful only with MULTIPORT) */
	vc->write = write;
	vc->write_opaque = opaque;
	vc->tx_bytes = vc->rx_bytes = 0;
	virtio_dev_init(&vc->vp.vdev, "virtio-console", VIRTIO_ID_CONSOLE, 0, 2,
			VIRTIO_CONSOLE_QUEUE_SIZE, gm, vc->config, sizeof(vc->config), &console_ops,
			vc);
	return virtio_pci_init(&vc->vp, 0x078000); /* simple communication controller, other */
}

void virtio_console_destroy(struct virtio_console *vc)
{
	virtio_pci_destroy(&vc->vp);
}
