/* virtio-rng (virtio 1.2 section 5.4: one requestq of device-writable buffers the device
 * fills with random bytes). See include/virtio/rng.h. */
#define LOG_SUBSYS "virtio-rng"
#include <errno.h>
#include <string.h>
#include <sys/random.h>

#include "util/log.h"
#include "virtio/rng.h"

#define RNG_MAX_FILL (64u << 10)

/* Fill every writable byte of the chain; returns the count or -EINVAL if the chain is not a
 * request (device-readable buffers in it). */
static int fill(struct virtio_rng *vr, const struct vq_elem *e)
{
	if (e->n_out) {
		log_guest_error("virtio-rng: request with device-readable buffers");
		return -EINVAL;
	}
	uint64_t total = 0;
	/* The device may fill less than offered (5.4.6.1): at most RNG_MAX_FILL per request
	 * keeps the vCPU thread's time bounded. */
	for (unsigned s = 0; s < e->n_in && total < RNG_MAX_FILL; s++) {
		const struct vq_seg *g = &e->seg[s];
		size_t want = g->len < RNG_MAX_FILL - total ? g->len : RNG_MAX_FILL - total;
		size_t done = 0;
		while (done < want) {
			ssize_t n = getrandom(g->ptr + done, want - done, 0);
			if (n < 0) {
				if (errno == EINTR)
					continue;
				log_warn("getrandom failed: %s", strerror(errno));
				return (int)total;
			}
			done += (size_t)n;
		}
		total += done;
	}
	vr->bytes += total;
	return (int)total;
}

static void rng_notify(struct virtio_dev *vd, unsigned q)
{
	struct virtio_rng *vr = vd->opaque;
	static __thread struct vq_elem elem; /* per vCPU thread: too big for the stack */
	pthread_mutex_lock(&vd->lock);
	if (virtio_dev_running(vd)) {
		struct virtqueue *vq = &vd->vqs[0];
		unsigned done = 0;
		int r;
		while ((r = vq_pop(vq, &elem)) > 0) {
			int n = fill(vr, &elem);
			if (n < 0) {
				r = n;
				break;
			}
			vq_push(vq, elem.head, (uint32_t)n);
			done++;
		}
		if (r < 0)
			virtio_set_needs_reset(vd);
		else if (done)
			virtio_notify_queue(vd, 0);
	}
	pthread_mutex_unlock(&vd->lock);
}

static const struct virtio_dev_ops rng_ops = {.notify = rng_notify};

int virtio_rng_init(struct virtio_rng *vr, const struct guest_mem *gm)
{
	vr->bytes = 0;
	virtio_dev_init(&vr->vp.vdev, "virtio-rng", VIRTIO_ID_RNG, 0, 1, VIRTIO_RNG_QUEUE_SIZE, gm,
			NULL, 0, &rng_ops, vr);
	return virtio_pci_init(&vr->vp, 0x00ff00); /* unclassified, as QEMU's virtio-rng */
}

void virtio_rng_destroy(struct virtio_rng *vr)
{
	virtio_pci_destroy(&vr->vp);
}
