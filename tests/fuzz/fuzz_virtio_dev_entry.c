/* Fuzz entry for whole virtio devices (virtio-blk, virtio-rng, virtio-console, virtio-net)
 * driven the way a hostile guest can drive them: through their PCI function (BAR 4 common
 * config, ISR, device config and doorbells; config space; the MSI-X table) and guest RAM
 * (rings, descriptors, buffers). Input format in fuzz_virtio_dev.h.
 *
 * Guest RAM is a malloc'd buffer of exactly FUZZ_DEV_RAM bytes, so ASAN reports any access
 * outside it. After every step the harness checks what virtio 1.2 section 2.1.2 and issue 4
 * ask: a device that found a bad chain on an enabled queue has set NEEDS_RESET. At the end it
 * checks that the device still works: a driver reset, a clean set-up and one request of each
 * kind the device serves must succeed, whatever the guest did before. Shared by the libFuzzer
 * target and the corpus runner.
 *
 * The devices run on the calling thread: virtio-blk's iothread is stopped right after it is
 * created and the harness serves the queues (virtio_blk_process) instead; virtio-net's
 * backend is a fake whose loop the harness steps (net_backend_run_once). */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz_virtio_dev.h"
#include "hw/pci.h"
#include "net/net.h"
#include "util/endian.h"
#include "virtio/blk.h"
#include "virtio/console.h"
#include "virtio/net.h"
#include "virtio/rng.h"

#define FUZZ_NAME "fuzz_virtio_dev"
#include "fuzz_ops.h"

#define SLOT	    3
#define MAX_QUEUES  4
#define CHECK_QSIZE 16 /* queue size of the final check */

enum { DEV_BLK, DEV_RNG, DEV_CONSOLE, DEV_NET };

enum {
	OP_WRITE,      /* le16 off, u8 size, size bytes: BAR 4 write */
	OP_READ,       /* le16 off, u8 size: BAR 4 read */
	OP_CFG_WRITE,  /* u8 off, u8 size, le32 value: config space */
	OP_CFG_READ,   /* u8 off, u8 size */
	OP_MSIX,       /* le16 off, le32 value: MSI-X table / PBA (BAR 1) */
	OP_POKE,       /* le16 addr, u8 n, n bytes: guest RAM */
	OP_SETUP,      /* u8 drop, u8 qlog, u8 flags: reset and bring the device up */
	OP_DESC,       /* u8 q, u8 i, le16 addr, le16 len, u8 flags, u8 next: a descriptor */
	OP_PUBLISH,    /* u8 q, u8 k, k x u8 head: offer chains, ring, serve */
	OP_NOTIFY,     /* u8 q, u8 size: a doorbell write */
	OP_PROCESS,    /* serve the queues (blk) / step the backend's loop (net) */
	OP_HOST_INPUT, /* le16 len, len bytes: a frame from the network / console input */
	OP_MACHINE,    /* machine reset of the function (PCI and virtio) */
	OP_SAVE_LOAD,  /* u8 k, k x (le16 off, u8 val): save, corrupt k bytes, load */
	OP_CFG_WINDOW, /* u8 bar, le32 off, u8 len, u8 write, le32 value: VIRTIO_PCI_CAP_PCI_CFG */
	OP_COUNT
};

struct fake_net {
	unsigned sent;
	size_t sent_bytes;
};

struct ctx {
	unsigned kind;
	uint8_t opts;
	struct guest_mem gm;
	uint8_t *ram;
	struct io_bus pio, mmio;
	struct irq_router irq;
	unsigned msis, lines;
	struct pci_host host;
	bool host_ok;
	struct virtio_pci *vp;
	uint64_t bar4, msix;
	uint32_t bar_cfg[6]; /* BARs as firmware assigned them */
	/* the devices (one of them) */
	struct virtio_blk *blk;
	struct virtio_rng *rng;
	struct virtio_console *con;
	struct virtio_net *net;
	struct net_backend *nb;
	struct fake_net fake;
	size_t con_out;
	int disk_fd;
	/* the driver's view */
	uint16_t qsize[MAX_QUEUES], avail_idx[MAX_QUEUES];
	struct fuzz_ops ops;
};

/* --- the machine around the device ------------------------------------------------------ */

static void rec_msi(void *opaque, uint64_t addr, uint32_t data)
{
	((struct ctx *)opaque)->msis++;
}

static void rec_line(void *opaque, unsigned gsi, bool level)
{
	((struct ctx *)opaque)->lines++;
}

static const struct irq_router_ops rec_ops = {.set_line = rec_line, .send_msi = rec_msi};

static void fake_send(struct net_backend *nb, const struct iovec *iov, unsigned iovcnt, size_t len)
{
	struct fake_net *f = nb->priv;
	size_t total = 0;
	for (unsigned i = 0; i < iovcnt; i++) {
		/* Touch the first and last byte of each piece: ASAN checks they are RAM. */
		const volatile uint8_t *p = iov[i].iov_base;
		if (iov[i].iov_len)
			(void)(p[0] + p[iov[i].iov_len - 1]);
		total += iov[i].iov_len;
	}
	FUZZ_CHECK(total == len, "frame of %zu bytes in pieces of %zu", len, total);
	f->sent++;
	f->sent_bytes += len;
}

static void fake_poll_fill(struct net_backend *nb, int *timeout_ms, bool rx)
{
}

static void fake_poll_done(struct net_backend *nb, bool err)
{
}

static int fake_set_offload(struct net_backend *nb, unsigned offloads)
{
	return 0;
}

static void fake_destroy(struct net_backend *nb)
{
}

static const struct net_backend_ops fake_ops = {
    .kind = "fuzz",
    .send = fake_send,
    .poll_fill = fake_poll_fill,
    .poll_done = fake_poll_done,
    .set_offload = fake_set_offload,
    .destroy = fake_destroy,
};

static void con_write(void *opaque, const uint8_t *buf, size_t len)
{
	struct ctx *c = opaque;
	const volatile uint8_t *p = buf;
	if (len)
		(void)(p[0] + p[len - 1]);
	c->con_out += len;
}

static uint32_t cfg_rd(struct ctx *c, unsigned reg, unsigned size)
{
	return pci_host_cfg_read(&c->host, 0, SLOT << 3, reg, size);
}

static void cfg_wr(struct ctx *c, unsigned reg, unsigned size, uint32_t v)
{
	pci_host_cfg_write(&c->host, 0, SLOT << 3, reg, size, v);
}

/* Where the BARs are now (the guest may move them). */
static void find_bars(struct ctx *c)
{
	c->bar4 = (cfg_rd(c, PCI_BAR0 + 16, 4) & ~0xfull) | (uint64_t)cfg_rd(c, PCI_BAR0 + 20, 4)
								<< 32;
	c->msix = cfg_rd(c, PCI_BAR0 + 4 * VIRTIO_PCI_MSIX_BAR, 4) & ~0xfull;
}

static uint64_t rd(struct ctx *c, uint64_t off, unsigned size)
{
	uint64_t v = 0;
	(void)io_bus_read(&c->mmio, c->bar4 + off, size, &v);
	return v;
}

static void wr(struct ctx *c, uint64_t off, unsigned size, uint64_t v)
{
	(void)io_bus_write(&c->mmio, c->bar4 + off, size, v);
}

static int make_disk(void)
{
	int fd = memfd_create("fuzz-vblk", MFD_CLOEXEC);
	if (fd < 0)
		return -1;
	uint8_t sector[512];
	for (unsigned s = 0; s < FUZZ_DEV_DISK / 512; s++) {
		for (unsigned i = 0; i < 512; i++)
			sector[i] = (uint8_t)(s + i * 7);
		if (pwrite(fd, sector, 512, s * 512) != 512) {
			close(fd);
			return -1;
		}
	}
	return fd;
}

static bool create_device(struct ctx *c)
{
	struct error err = {0};
	switch (c->kind) {
	case DEV_BLK: {
		c->disk_fd = make_disk();
		if (c->disk_fd < 0)
			return false;
		char path[64];
		snprintf(path, sizeof(path), "/proc/self/fd/%d", c->disk_fd);
		struct virtio_blk_opts o = {.path = path,
					    .format = BLK_FMT_RAW,
					    .readonly = c->opts & 8,
					    .discard = c->opts & 16,
					    .sync_io = !(c->opts & 4),
					    .num_queues = c->opts & 32 ? 2 : 1};
		c->blk = calloc(1, sizeof(*c->blk));
		if (!c->blk || virtio_blk_init(c->blk, &o, 0, &c->gm, &err)) {
			free(c->blk);
			c->blk = NULL;
			return false;
		}
		/* Serve requests here, not on the iothread: every run the same. */
		atomic_store(&c->blk->stop, true);
		uint64_t one = 1;
		if (write(c->blk->kick_fd, &one, sizeof(one)) != sizeof(one))
			return false;
		pthread_join(c->blk->thread, NULL);
		c->blk->thread_started = false;
		c->vp = &c->blk->vp;
		return true;
	}
	case DEV_RNG:
		c->rng = calloc(1, sizeof(*c->rng));
		if (!c->rng || virtio_rng_init(c->rng, &c->gm))
			return false;
		c->vp = &c->rng->vp;
		return true;
	case DEV_CONSOLE:
		c->con = calloc(1, sizeof(*c->con));
		if (!c->con || virtio_console_init(c->con, &c->gm, con_write, c))
			return false;
		c->vp = &c->con->vp;
		return true;
	case DEV_NET:
		c->nb = net_backend_new(&fake_ops, &c->fake, 0, NULL);
		if (!c->nb)
			return false;
		if (c->opts & 4) {
			c->nb->vnet_hdr_len = NET_VNET_HDR_LEN;
			c->nb->offloads = true;
		}
		c->net = calloc(1, sizeof(*c->net));
		if (!c->net) {
			net_backend_destroy(c->nb);
			return false;
		}
		/* The backend is the device's from here on, even on failure. */
		if (virtio_net_init(c->net, c->nb, NULL, 0, &c->gm, &err))
			return false;
		c->vp = &c->net->vp;
		return true;
	}
	return false;
}

static void destroy(struct ctx *c)
{
	if (c->blk) {
		virtio_blk_destroy(c->blk);
	} else if (c->rng) {
		virtio_rng_destroy(c->rng);
	} else if (c->con) {
		virtio_console_destroy(c->con);
	} else if (c->net && c->vp) {
		virtio_net_destroy(c->net);
	}
	if (c->host_ok)
		pci_host_destroy(&c->host);
	free(c->blk);
	free(c->rng);
	free(c->con);
	free(c->net);
	io_bus_destroy(&c->pio);
	io_bus_destroy(&c->mmio);
	if (c->disk_fd >= 0)
		close(c->disk_fd);
	free(c->ram); /* last: the kernel may write io_uring reads there until the device is gone */
}

/* --- what the device does with the queues -------------------------------------------------- */

static void serve(struct ctx *c)
{
	if (c->blk) {
		virtio_blk_process(c->blk);
		/* io_uring requests finish in the kernel: wait for them, as the iothread would. */
		pthread_mutex_lock(&c->vp->vdev.lock);
		blk_aio_drain(c->blk->aio);
		pthread_mutex_unlock(&c->vp->vdev.lock);
		virtio_blk_process(c->blk);
	} else if (c->nb) {
		net_backend_run_once(c->nb, 0);
	}
}

/* A queue the device found a bad chain on must have put the device in NEEDS_RESET. */
static void check_needs_reset(struct ctx *c)
{
	struct virtio_dev *vd = &c->vp->vdev;
	for (unsigned q = 0; q < vd->num_queues; q++)
		FUZZ_CHECK(!vd->vqs[q].enabled || !vd->vqs[q].broken ||
			       (vd->status & VIRTIO_STATUS_NEEDS_RESET),
			   "%s: queue %u is broken, status %#x", vd->name, q, vd->status);
}

static uint16_t used_idx(struct ctx *c, unsigned q)
{
	uint16_t idx = 0;
	(void)!gm_read(&c->gm, FUZZ_DEV_USED(q) + 2, &idx, 2);
	return idx;
}

/* --- driver macros ----------------------------------------------------------------------- */

static unsigned nr_queues(struct ctx *c)
{
	unsigned n = c->vp->vdev.num_queues;
	return n < MAX_QUEUES ? n : MAX_QUEUES;
}

static void msix_on(struct ctx *c)
{
	unsigned p = c->vp->pci.msix_cap;
	if (!p)
		return;
	cfg_wr(c, p + 2, 2, PCI_MSIX_CTRL_ENABLE);
	for (unsigned v = 0; v < c->vp->pci.msix_vecs; v++) {
		(void)io_bus_write(&c->mmio, c->msix + 16 * v, 4, 0xfee00000);
		(void)io_bus_write(&c->mmio, c->msix + 16 * v + 8, 4, 0x30 + v);
		(void)io_bus_write(&c->mmio, c->msix + 16 * v + 12, 4, 0);
	}
}

/* What the Linux driver does at probe (virtio 1.2 section 3.1.1), with the features in
 * `drop` left out (bit 0 INDIRECT_DESC, 1 EVENT_IDX, 2 VERSION_1, 3 the device's own
 * features, 4 ask for one that is not offered), queue size 1 << (qlog % 10) or the
 * device's maximum for 0, MSI-X when flags bit 0 is set. */
static void setup(struct ctx *c, uint8_t drop, uint8_t qlog, uint8_t flags)
{
	const uint64_t common = VIRTIO_PCI_COMMON_OFF;
	wr(c, common + VIRTIO_PCI_STATUS, 1, 0);
	wr(c, common + VIRTIO_PCI_STATUS, 1, VIRTIO_STATUS_ACKNOWLEDGE);
	wr(c, common + VIRTIO_PCI_STATUS, 1, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	wr(c, common + VIRTIO_PCI_DFSELECT, 4, 0);
	uint64_t f = rd(c, common + VIRTIO_PCI_DF, 4);
	wr(c, common + VIRTIO_PCI_DFSELECT, 4, 1);
	f |= rd(c, common + VIRTIO_PCI_DF, 4) << 32;
	if (drop & 1)
		f &= ~(1ULL << VIRTIO_F_INDIRECT_DESC);
	if (drop & 2)
		f &= ~(1ULL << VIRTIO_F_EVENT_IDX);
	if (drop & 4)
		f &= ~(1ULL << VIRTIO_F_VERSION_1);
	if (drop & 8)
		f &= ~0xffffffULL;
	if (drop & 16)
		f |= 1ULL << 40;
	wr(c, common + VIRTIO_PCI_GFSELECT, 4, 0);
	wr(c, common + VIRTIO_PCI_GF, 4, (uint32_t)f);
	wr(c, common + VIRTIO_PCI_GFSELECT, 4, 1);
	wr(c, common + VIRTIO_PCI_GF, 4, (uint32_t)(f >> 32));
	wr(c, common + VIRTIO_PCI_STATUS, 1,
	   VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK);
	if (flags & 1)
		msix_on(c);
	for (unsigned q = 0; q < nr_queues(c); q++) {
		wr(c, common + VIRTIO_PCI_Q_SELECT, 2, q);
		uint16_t max = (uint16_t)rd(c, common + VIRTIO_PCI_Q_SIZE, 2);
		uint16_t size = qlog ? (uint16_t)(1u << (qlog % 10)) : max;
		wr(c, common + VIRTIO_PCI_Q_SIZE, 2, size);
		wr(c, common + VIRTIO_PCI_Q_MSIX, 2, flags & 1 ? q + 1 : VIRTIO_MSI_NO_VECTOR);
		wr(c, common + VIRTIO_PCI_Q_DESCLO, 8, FUZZ_DEV_RING(q));
		wr(c, common + VIRTIO_PCI_Q_AVAILLO, 8, FUZZ_DEV_AVAIL(q));
		wr(c, common + VIRTIO_PCI_Q_USEDLO, 8, FUZZ_DEV_USED(q));
		wr(c, common + VIRTIO_PCI_Q_ENABLE, 2, 1);
		c->qsize[q] = size;
		c->avail_idx[q] = 0;
	}
	if (flags & 1)
		wr(c, common + VIRTIO_PCI_MSIX_CONFIG, 2, 0);
	wr(c, common + VIRTIO_PCI_STATUS, 1,
	   VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK |
	       VIRTIO_STATUS_DRIVER_OK);
}

static void put_desc(struct ctx *c, unsigned q, unsigned i, uint64_t addr, uint32_t len,
		     uint16_t flags, uint16_t next)
{
	struct vring_desc d = {.addr = addr, .len = len, .flags = flags, .next = next};
	(void)!gm_write(&c->gm, FUZZ_DEV_RING(q) + 16u * i, &d, sizeof(d));
}

static void publish(struct ctx *c, unsigned q, const uint16_t *heads, unsigned k)
{
	uint16_t size = c->qsize[q] ? c->qsize[q] : 1;
	for (unsigned i = 0; i < k; i++) {
		uint64_t slot = (uint16_t)(c->avail_idx[q] + i) % size;
		(void)!gm_write(&c->gm, FUZZ_DEV_AVAIL(q) + 4 + 2 * slot, &heads[i], 2);
	}
	c->avail_idx[q] = (uint16_t)(c->avail_idx[q] + k);
	(void)!gm_write(&c->gm, FUZZ_DEV_AVAIL(q) + 2, &c->avail_idx[q], 2);
	wr(c, VIRTIO_PCI_NOTIFY_OFF + VIRTIO_PCI_NOTIFY_MULT * q, 2, q);
	serve(c);
}

static void host_input(struct ctx *c, const uint8_t *buf, size_t len)
{
	if (c->nb) {
		net_backend_deliver(c->nb, buf, len);
		net_backend_run_once(c->nb, 0);
	} else if (c->con) {
		(void)virtio_console_input(c->con, buf, len);
	}
}

/* --- the steps --------------------------------------------------------------------------- */

static const unsigned widths[4] = {1, 2, 4, 8};

static void step(struct ctx *c, unsigned op)
{
	switch (op) {
	case OP_WRITE: {
		uint16_t off = fuzz_u16(&c->ops) % VIRTIO_PCI_BAR_SIZE;
		unsigned size = widths[fuzz_u8(&c->ops) & 3];
		uint64_t v = 0;
		for (unsigned i = 0; i < size; i++)
			v |= (uint64_t)fuzz_u8(&c->ops) << (8 * i);
		wr(c, off, size, v);
		break;
	}
	case OP_READ: {
		uint16_t off = fuzz_u16(&c->ops) % VIRTIO_PCI_BAR_SIZE;
		(void)rd(c, off, widths[fuzz_u8(&c->ops) & 3]);
		break;
	}
	case OP_CFG_WRITE: {
		uint8_t off = fuzz_u8(&c->ops);
		unsigned size = widths[fuzz_u8(&c->ops) % 3];
		cfg_wr(c, off & ~(size - 1), size, fuzz_u32(&c->ops));
		find_bars(c);
		break;
	}
	case OP_CFG_READ: {
		uint8_t off = fuzz_u8(&c->ops);
		unsigned size = widths[fuzz_u8(&c->ops) % 3];
		(void)cfg_rd(c, off & ~(size - 1), size);
		break;
	}
	case OP_MSIX: {
		uint16_t off = fuzz_u16(&c->ops) & 0xffc;
		(void)io_bus_write(&c->mmio, c->msix + off, 4, fuzz_u32(&c->ops));
		break;
	}
	case OP_POKE: {
		uint16_t addr = fuzz_u16(&c->ops);
		unsigned n = fuzz_u8(&c->ops);
		for (unsigned i = 0; i < n; i++) {
			uint8_t b = fuzz_u8(&c->ops);
			(void)!gm_write(&c->gm, (uint64_t)addr + i, &b, 1);
		}
		break;
	}
	case OP_SETUP: {
		uint8_t drop = fuzz_u8(&c->ops), qlog = fuzz_u8(&c->ops);
		setup(c, drop, qlog, fuzz_u8(&c->ops));
		break;
	}
	case OP_DESC: {
		unsigned q = fuzz_u8(&c->ops) % MAX_QUEUES, i = fuzz_u8(&c->ops);
		uint16_t addr = fuzz_u16(&c->ops), len = fuzz_u16(&c->ops);
		uint8_t flags = fuzz_u8(&c->ops);
		put_desc(c, q, i, addr, len, flags, fuzz_u8(&c->ops));
		break;
	}
	case OP_PUBLISH: {
		unsigned q = fuzz_u8(&c->ops) % MAX_QUEUES, k = fuzz_u8(&c->ops) % 17;
		uint16_t heads[16];
		for (unsigned i = 0; i < k; i++)
			heads[i] = fuzz_u8(&c->ops);
		publish(c, q, heads, k);
		break;
	}
	case OP_NOTIFY: {
		unsigned q = fuzz_u8(&c->ops);
		wr(c, VIRTIO_PCI_NOTIFY_OFF + VIRTIO_PCI_NOTIFY_MULT * (q % 8),
		   widths[fuzz_u8(&c->ops) % 3], q);
		break;
	}
	case OP_PROCESS:
		serve(c);
		break;
	case OP_HOST_INPUT: {
		static uint8_t buf[4096];
		size_t len = fuzz_u16(&c->ops) % sizeof(buf);
		for (size_t i = 0; i < len; i++)
			buf[i] = fuzz_u8(&c->ops);
		host_input(c, buf, len);
		break;
	}
	case OP_MACHINE:
		pci_host_reset(&c->host);
		virtio_pci_reset(c->vp);
		find_bars(c);
		break;
	case OP_CFG_WINDOW: {
		/* The driver programs the capability, then goes through pci_cfg_data. */
		unsigned cap = c->vp->pci_cfg_cap;
		uint8_t bar = fuzz_u8(&c->ops);
		uint32_t off = fuzz_u32(&c->ops);
		uint8_t len = fuzz_u8(&c->ops), write = fuzz_u8(&c->ops);
		uint32_t v = fuzz_u32(&c->ops);
		if (!cap)
			break;
		cfg_wr(c, cap + 4, 1, bar);
		cfg_wr(c, cap + 8, 4, off);
		cfg_wr(c, cap + 12, 4, len);
		if (write & 1)
			cfg_wr(c, cap + 16, 4, v);
		else
			(void)cfg_rd(c, cap + 16, 4);
		break;
	}
	case OP_SAVE_LOAD: {
		unsigned k = fuzz_u8(&c->ops) % 8;
		struct state_buf s;
		state_init_writer(&s);
		int ret = virtio_pci_save(c->vp, &s);
		FUZZ_CHECK(ret == 0, "save: %d", ret);
		for (unsigned i = 0; i < k; i++) {
			uint16_t off = fuzz_u16(&c->ops);
			uint8_t v = fuzz_u8(&c->ops);
			if (off < s.len)
				s.data[off] = v;
		}
		struct state_buf r;
		state_init_reader(&r, s.data, s.len);
		ret = virtio_pci_load(c->vp, &r);
		/* The device's own state always loads back. */
		FUZZ_CHECK(ret == 0 || k > 0, "load of the saved state: %d", ret);
		state_free(&s);
		find_bars(c);
		break;
	}
	}
}

/* --- the end: the device must still work --------------------------------------------------- */

static void check_works(struct ctx *c)
{
	struct virtio_dev *vd = &c->vp->vdev;
	/* Firmware's BARs, decoding on; then the driver's reset and a clean set-up. */
	pci_host_reset(&c->host);
	cfg_wr(c, PCI_COMMAND, 2, PCI_CMD_MEM | PCI_CMD_MASTER);
	find_bars(c);
	wr(c, VIRTIO_PCI_COMMON_OFF + VIRTIO_PCI_STATUS, 1, 0);
	FUZZ_CHECK(vd->status == 0, "%s: status %#x after reset", vd->name, vd->status);
	memset(c->ram, 0, FUZZ_DEV_BUF);
	setup(c, 0, 4, 0);
	uint8_t st = (uint8_t)rd(c, VIRTIO_PCI_COMMON_OFF + VIRTIO_PCI_STATUS, 1);
	FUZZ_CHECK(st == (VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
			  VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK),
		   "%s: status %#x after a clean set-up", vd->name, st);
	const uint64_t b = FUZZ_DEV_BUF;
	uint16_t head = 0;
	switch (c->kind) {
	case DEV_BLK: {
		/* Read sector 3: header, 512 bytes, status. */
		uint8_t hdr[16] = {0};
		hdr[8] = 3;
		(void)!gm_write(&c->gm, b, hdr, sizeof(hdr));
		(void)!gm_write(&c->gm, b + 1024, "\xff", 1);
		put_desc(c, 0, 0, b, 16, VRING_DESC_F_NEXT, 1);
		put_desc(c, 0, 1, b + 512, 512, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 2);
		put_desc(c, 0, 2, b + 1024, 1, VRING_DESC_F_WRITE, 0);
		publish(c, 0, &head, 1);
		FUZZ_CHECK(used_idx(c, 0) == 1, "virtio-blk: read not completed");
		FUZZ_CHECK(c->ram[b + 1024] == VIRTIO_BLK_S_OK, "virtio-blk: read status %u",
			   c->ram[b + 1024]);
		break;
	}
	case DEV_RNG:
		put_desc(c, 0, 0, b, 64, VRING_DESC_F_WRITE, 0);
		publish(c, 0, &head, 1);
		FUZZ_CHECK(used_idx(c, 0) == 1, "virtio-rng: request not completed");
		break;
	case DEV_CONSOLE: {
		size_t before = c->con_out;
		(void)!gm_write(&c->gm, b, "hello", 5);
		put_desc(c, VIRTIO_CONSOLE_TX, 0, b, 5, 0, 0);
		publish(c, VIRTIO_CONSOLE_TX, &head, 1);
		FUZZ_CHECK(used_idx(c, VIRTIO_CONSOLE_TX) == 1 && c->con_out == before + 5,
			   "virtio-console: output not taken");
		put_desc(c, VIRTIO_CONSOLE_RX, 0, b + 512, 64, VRING_DESC_F_WRITE, 0);
		publish(c, VIRTIO_CONSOLE_RX, &head, 1);
		FUZZ_CHECK(virtio_console_input(c->con, (const uint8_t *)"x", 1) == 1 &&
			       used_idx(c, VIRTIO_CONSOLE_RX) == 1,
			   "virtio-console: input not delivered");
		break;
	}
	case DEV_NET: {
		/* Frames the guest left no room for earlier still wait in the backend, in front
		 * of ours: the network drops them here. */
		while (c->nb->rxq_head) {
			struct net_frame *f = c->nb->rxq_head;
			c->nb->rxq_head = f->next;
			free(f);
		}
		c->nb->rxq_tail = &c->nb->rxq_head;
		c->nb->rxq_len = 0;
		unsigned sent = c->fake.sent;
		put_desc(c, VIRTIO_NET_RX, 0, b, 2048, VRING_DESC_F_WRITE, 0);
		publish(c, VIRTIO_NET_RX, &head, 1);
		uint8_t frame[64] = {0};
		memset(frame, 0xff, 6);
		if (c->nb->vnet_hdr_len) {
			memmove(frame + NET_VNET_HDR_LEN, frame, sizeof(frame) - NET_VNET_HDR_LEN);
			memset(frame, 0, NET_VNET_HDR_LEN);
		}
		host_input(c, frame, sizeof(frame));
		FUZZ_CHECK(used_idx(c, VIRTIO_NET_RX) == 1, "virtio-net: nothing received");
		uint8_t pkt[12 + 60] = {0};
		(void)!gm_write(&c->gm, b + 4096, pkt, sizeof(pkt));
		put_desc(c, VIRTIO_NET_TX, 0, b + 4096, sizeof(pkt), 0, 0);
		publish(c, VIRTIO_NET_TX, &head, 1);
		FUZZ_CHECK(used_idx(c, VIRTIO_NET_TX) == 1 && c->fake.sent == sent + 1,
			   "virtio-net: frame not sent");
		break;
	}
	}
	FUZZ_CHECK(!(vd->status & VIRTIO_STATUS_NEEDS_RESET), "%s: NEEDS_RESET on good requests",
		   vd->name);
}

int fuzz_virtio_dev_one(const uint8_t *data, size_t size)
{
	if (size < FUZZ_DEV_HDR)
		return 0;
	struct ctx *c = calloc(1, sizeof(*c));
	if (!c)
		return 0;
	c->disk_fd = -1;
	c->kind = data[0] & 3;
	c->opts = data[0];
	size_t nops = le16_load(data + 1);
	const uint8_t *rest = data + FUZZ_DEV_HDR;
	size_t left = size - FUZZ_DEV_HDR;
	if (nops > left)
		nops = left;
	c->ops.p = rest;
	c->ops.end = rest + nops;
	rest += nops;
	left -= nops;

	io_bus_init(&c->pio, "io");
	io_bus_init(&c->mmio, "memory");
	c->ram = calloc(1, FUZZ_DEV_RAM);
	if (!c->ram)
		goto out;
	memcpy(c->ram, rest, left < FUZZ_DEV_RAM ? left : FUZZ_DEV_RAM);
	c->gm.regions[0] = (struct gm_region){.gpa = 0, .size = FUZZ_DEV_RAM, .host = c->ram};
	c->gm.nr_regions = 1;
	c->gm.ram_size = FUZZ_DEV_RAM;
	c->irq = (struct irq_router){.ops = &rec_ops, .opaque = c};
	if (pci_host_init(&c->host, &c->pio, &c->mmio, &c->irq, 0, 0))
		goto out;
	c->host_ok = true;
	if (!create_device(c))
		goto out;
	uint64_t next = 0xc0000000;
	if (pci_host_add(&c->host, &c->vp->pci, SLOT, &next))
		goto out;
	cfg_wr(c, PCI_COMMAND, 2, PCI_CMD_MEM | PCI_CMD_MASTER);
	find_bars(c);

	while (c->ops.p < c->ops.end) {
		step(c, fuzz_u8(&c->ops) % OP_COUNT);
		check_needs_reset(c);
	}
	serve(c);
	check_needs_reset(c);
	if (getenv("FUZZ_DEV_DEBUG")) { /* what a seed did, before the final check */
		struct virtio_dev *vd = &c->vp->vdev;
		fprintf(stderr, "%s: status %#x features %#llx, msi %u, lines %u", vd->name,
			vd->status, (unsigned long long)vd->guest_features, c->msis, c->lines);
		for (unsigned q = 0; q < nr_queues(c); q++)
			fprintf(stderr, ", q%u used %u%s", q, used_idx(c, q),
				vd->vqs[q].broken ? " broken" : "");
		if (c->blk)
			fprintf(stderr, ", %llu requests %llu errors (%s)",
				(unsigned long long)c->blk->nr_requests,
				(unsigned long long)c->blk->nr_errors,
				blk_aio_uses_uring(c->blk->aio) ? "io_uring" : "sync");
		if (c->net)
			fprintf(stderr, ", rx %llu (%llu dropped) tx %llu",
				(unsigned long long)c->net->rx_frames,
				(unsigned long long)c->net->rx_dropped,
				(unsigned long long)c->net->tx_frames);
		fprintf(stderr, ", console out %zu\n", c->con_out);
	}
	check_works(c);
out:
	destroy(c);
	free(c);
	return 0;
}
