/* Device tests for the virtio PCI transport and devices (virtio/virtio_pci.c, blk.c, rng.c,
 * console.c) with no CPU: the small driver in virtio_driver.h walks the PCI capabilities,
 * negotiates features, places rings in a guest_mem and rings doorbells through the MMIO bus,
 * like the Linux driver does. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "hw/pci.h"
#include "virtio/blk.h"
#include "virtio/console.h"
#include "virtio/rng.h"

#define DRV_DEVICE_FIELDS          \
	char path[64];             \
	struct virtio_blk *blk;    \
	struct virtio_rng rng;     \
	struct virtio_console con; \
	uint8_t out[256];          \
	size_t out_len;
#include "virtio_driver.h"

#define SLOT	 2
#define DISK_MIB 4

/* --- virtio-blk --------------------------------------------------------------------------- */

static int blk_setup_opts(void **state, bool readonly, bool discard, enum blk_cache cache,
			  bool sync_io)
{
	struct drv *d = calloc(1, sizeof(*d));
	drv_init(d);
	snprintf(d->path, sizeof(d->path), "/tmp/kestrel-test-vblk-%d.img", getpid());
	int fd = open(d->path, O_CREAT | O_TRUNC | O_RDWR, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, DISK_MIB << 20), 0);
	uint8_t pattern[512];
	for (unsigned i = 0; i < 512; i++)
		pattern[i] = (uint8_t)(i * 7);
	assert_int_equal(pwrite(fd, pattern, 512, 512 * 10), 512);
	close(fd);
	d->blk = calloc(1, sizeof(*d->blk));
	struct virtio_blk_opts o = {.path = d->path,
				    .format = BLK_FMT_RAW,
				    .readonly = readonly,
				    .discard = discard,
				    .cache = cache,
				    .sync_io = sync_io,
				    .num_queues = 2};
	struct error err = {0};
	assert_int_equal(virtio_blk_init(d->blk, &o, 0, &d->gm, &err), 0);
	drv_probe(d, &d->blk->vp.pci, SLOT);
	*state = d;
	return 0;
}

static int blk_setup(void **state)
{
	return blk_setup_opts(state, false, true, BLK_CACHE_WRITEBACK, false);
}

static int blk_setup_ro(void **state)
{
	return blk_setup_opts(state, true, false, BLK_CACHE_WRITEBACK, false);
}

/* aio=sync: the same tests over the synchronous path. */
static int blk_setup_sync(void **state)
{
	blk_setup_opts(state, false, true, BLK_CACHE_WRITEBACK, true);
	struct drv *d = *state;
	assert_false(blk_aio_uses_uring(d->blk->aio));
	return 0;
}

/* cache=none, where the file system has O_DIRECT (else the test is a SKIP). */
static int blk_setup_direct(void **state)
{
	char probe[64];
	snprintf(probe, sizeof(probe), "/tmp/kestrel-test-direct-%d", getpid());
	int fd = open(probe, O_CREAT | O_RDWR | O_DIRECT, 0600);
	unlink(probe);
	if (fd < 0) {
		*state = NULL;
		return 0;
	}
	close(fd);
	return blk_setup_opts(state, false, true, BLK_CACHE_NONE, false);
}

static int blk_teardown(void **state)
{
	struct drv *d = *state;
	if (!d)
		return 0;
	virtio_blk_destroy(d->blk);
	drv_fini(d);
	free(d->blk);
	unlink(d->path);
	free(d);
	return 0;
}

#define ALL_FEATURES (~0ULL)

static void blk_start_sized(struct drv *d, bool msix, uint16_t qsize)
{
	uint8_t st = negotiate(d, ALL_FEATURES);
	assert_true(st & VIRTIO_STATUS_FEATURES_OK);
	if (msix)
		msix_on(d, 3, 0x30);
	setup_queue(d, 0, qsize, msix ? 1 : VIRTIO_MSI_NO_VECTOR);
	setup_queue(d, 1, qsize, msix ? 2 : VIRTIO_MSI_NO_VECTOR);
	if (msix)
		wr(d, d->common + VIRTIO_PCI_MSIX_CONFIG, 2, 0);
	driver_ok(d);
}

static void blk_start(struct drv *d, bool msix)
{
	blk_start_sized(d, msix, 16);
}

static void put_hdr(struct drv *d, uint64_t a, uint32_t type, uint64_t sector)
{
	uint8_t h[16] = {0};
	memcpy(h, &type, 4);
	memcpy(h + 8, &sector, 8);
	assert_int_equal(gm_write(&d->gm, a, h, 16), 0);
}

static void blk_config_and_features(void **state)
{
	struct drv *d = *state;
	assert_int_equal(cfg_rd(d, PCI_DEVICE_ID, 2), 0x1042);
	assert_int_equal(cfg_rd(d, 0x0b, 1), 0x01);
	assert_int_equal(rd(d, d->device + 0, 8), DISK_MIB * 2048);
	assert_int_equal(rd(d, d->device + 34, 2), 2); /* num_queues */
	assert_int_equal(rd(d, d->device + 20, 4), 512);
	assert_int_equal(rd(d, d->common + VIRTIO_PCI_NUM_QUEUES, 2), 2);
	wr(d, d->common + VIRTIO_PCI_DFSELECT, 4, 0);
	uint32_t lo = (uint32_t)rd(d, d->common + VIRTIO_PCI_DF, 4);
	assert_true(lo & FEAT(VIRTIO_BLK_F_FLUSH));
	assert_true(lo & FEAT(VIRTIO_BLK_F_MQ));
	assert_true(lo & FEAT(VIRTIO_BLK_F_DISCARD));
	assert_true(lo & FEAT(VIRTIO_F_EVENT_IDX));
	assert_true(lo & FEAT(VIRTIO_F_INDIRECT_DESC));
	assert_false(lo & FEAT(VIRTIO_BLK_F_RO));
	wr(d, d->common + VIRTIO_PCI_DFSELECT, 4, 1);
	assert_int_equal(rd(d, d->common + VIRTIO_PCI_DF, 4), 1); /* VERSION_1 */
	/* A legacy driver (no VERSION_1) is refused at FEATURES_OK. */
	assert_false(negotiate(d, FEAT(VIRTIO_BLK_F_FLUSH)) & VIRTIO_STATUS_FEATURES_OK);
	/* Features not offered are refused too. */
	wr(d, d->common + VIRTIO_PCI_STATUS, 1, 0);
	wr(d, d->common + VIRTIO_PCI_GFSELECT, 4, 1);
	wr(d, d->common + VIRTIO_PCI_GF, 4, 3); /* VERSION_1 | ACCESS_PLATFORM */
	wr(d, d->common + VIRTIO_PCI_STATUS, 1, VIRTIO_STATUS_FEATURES_OK);
	assert_false(status(d) & VIRTIO_STATUS_FEATURES_OK);
	/* Queue select beyond the queues: size 0. */
	wr(d, d->common + VIRTIO_PCI_Q_SELECT, 2, 5);
	assert_int_equal(rd(d, d->common + VIRTIO_PCI_Q_SIZE, 2), 0);
	/* A vector the function lacks reads back as NO_VECTOR. */
	wr(d, d->common + VIRTIO_PCI_Q_SELECT, 2, 0);
	wr(d, d->common + VIRTIO_PCI_Q_MSIX, 2, 40);
	assert_int_equal(rd(d, d->common + VIRTIO_PCI_Q_MSIX, 2), VIRTIO_MSI_NO_VECTOR);
	/* Queue notify offsets are the queue numbers. */
	wr(d, d->common + VIRTIO_PCI_Q_SELECT, 2, 1);
	assert_int_equal(rd(d, d->common + VIRTIO_PCI_Q_NOFF, 2), 1);
	/* DRIVER_OK without FEATURES_OK does not stick. */
	wr(d, d->common + VIRTIO_PCI_STATUS, 1, 0);
	wr(d, d->common + VIRTIO_PCI_STATUS, 1, VIRTIO_STATUS_DRIVER_OK);
	assert_false(status(d) & VIRTIO_STATUS_DRIVER_OK);
}

struct evfd_rec {
	int n; /* assigned minus deassigned */
	uint64_t addr[8];
	int fd;
	unsigned calls;
};

static int fake_ioeventfd(void *opaque, uint64_t addr, unsigned len, int fd, bool assign)
{
	struct evfd_rec *r = opaque;
	r->calls++;
	if (len != 2)
		return -EINVAL;
	if (assign) {
		if (r->n < 8)
			r->addr[r->n] = addr;
		r->n++;
		r->fd = fd;
	} else {
		r->n--;
	}
	return 0;
}

/* Doorbells follow BAR 4 onto the host's ioeventfd fast path. */
static void blk_ioeventfd(void **state)
{
	struct drv *d = *state;
	struct evfd_rec r = {0};
	/* Decoding off first: the fixture enabled it before the hook existed. */
	cfg_wr(d, PCI_COMMAND, 2, 0);
	d->host.ioeventfd = fake_ioeventfd;
	d->host.ioeventfd_opaque = &r;
	cfg_wr(d, PCI_COMMAND, 2, PCI_CMD_MEM | PCI_CMD_MASTER);
	assert_int_equal(r.n, 2); /* two queues */
	assert_int_equal(r.addr[0], d->bar4 + d->notify);
	assert_int_equal(r.addr[1], d->bar4 + d->notify + d->notify_mult);
	assert_int_equal(r.fd, d->blk->kick_fd);
	/* The eventfd alone (what KVM signals) gets a request served. */
	blk_start(d, false);
	put_hdr(d, BUF, VIRTIO_BLK_T_FLUSH, 0);
	struct vring_desc desc[2] = {
	    {.addr = BUF, .len = 16, .flags = VRING_DESC_F_NEXT, .next = 1},
	    {.addr = BUF + 0x3000, .len = 1, .flags = VRING_DESC_F_WRITE}};
	assert_int_equal(gm_write(&d->gm, RING(0), desc, sizeof(desc)), 0);
	uint16_t one = 1, head = 0;
	assert_int_equal(gm_write(&d->gm, RING(0) + 0x1000 + 4, &head, 2), 0);
	assert_int_equal(gm_write(&d->gm, RING(0) + 0x1000 + 2, &one, 2), 0);
	uint64_t kick = 1;
	assert_int_equal(write(r.fd, &kick, 8), 8);
	assert_int_equal(wait_used(d, 0), 1);
	/* Moving the BAR moves the doorbells; turning decoding off removes them. */
	unsigned calls = r.calls;
	cfg_wr(d, PCI_BAR0 + 16, 4, 0xd0000000 | 0xc);
	assert_int_equal(r.calls, calls + 4);
	assert_int_equal(r.n, 2);
	assert_int_equal(r.addr[0], 0xd0000000ULL + d->notify);
	cfg_wr(d, PCI_COMMAND, 2, 0);
	assert_int_equal(r.n, 0);
}

/* The VIRTIO_PCI_CAP_PCI_CFG window: BAR 4 through config space. */
static void blk_pci_cfg_window(void **state)
{
	struct drv *d = *state;
	unsigned c = d->pcicfg;
	assert_true(c >= 0x40);
	assert_int_equal(cfg_rd(d, c + 2, 1), 20);
	cfg_wr(d, c + 4, 1, 4);
	cfg_wr(d, c + 8, 4, d->device); /* capacity, low dword */
	cfg_wr(d, c + 12, 4, 4);
	assert_int_equal(cfg_rd(d, c + 16, 4), DISK_MIB * 2048);
	cfg_wr(d, c + 8, 4, d->common + VIRTIO_PCI_NUM_QUEUES);
	cfg_wr(d, c + 12, 4, 2);
	assert_int_equal(cfg_rd(d, c + 16, 4), 2);
	/* A write through the window: device status. */
	cfg_wr(d, c + 8, 4, d->common + VIRTIO_PCI_STATUS);
	cfg_wr(d, c + 12, 4, 1);
	cfg_wr(d, c + 16, 4, VIRTIO_STATUS_ACKNOWLEDGE);
	assert_int_equal(status(d), VIRTIO_STATUS_ACKNOWLEDGE);
	/* Bad windows (another BAR, past the end, odd length) read the raw bytes, do nothing. */
	cfg_wr(d, c + 4, 1, 1);
	cfg_wr(d, c + 16, 4, 0);
	assert_int_equal(status(d), VIRTIO_STATUS_ACKNOWLEDGE);
	cfg_wr(d, c + 4, 1, 4);
	cfg_wr(d, c + 8, 4, VIRTIO_PCI_BAR_SIZE - 2);
	cfg_wr(d, c + 12, 4, 4);
	cfg_wr(d, c + 16, 4, 0x12345678);
	assert_int_equal(cfg_rd(d, c + 16, 4), 0x12345678);
	cfg_wr(d, c + 8, 4, d->common + VIRTIO_PCI_STATUS);
	cfg_wr(d, c + 12, 4, 3);
	cfg_wr(d, c + 16, 4, 0);
	assert_int_equal(status(d), VIRTIO_STATUS_ACKNOWLEDGE);
}

static void blk_read_write_msix(void **state)
{
	struct drv *d = *state;
	blk_start(d, true);
	/* Read sector 10 (the pattern) into two buffers. */
	put_hdr(d, BUF, VIRTIO_BLK_T_IN, 10);
	struct buf rq[] = {{BUF, 16, false},
			   {BUF + 0x1000, 200, true},
			   {BUF + 0x2000, 312, true},
			   {BUF + 0x3000, 1, true}};
	unsigned before = d->rec.n;
	submit(d, 0, rq, 4);
	assert_int_equal(wait_used(d, 0), 513);
	assert_int_equal(peek8(d, BUF + 0x3000), VIRTIO_BLK_S_OK);
	assert_int_equal(peek8(d, BUF + 0x1000 + 3), 21);
	assert_int_equal(peek8(d, BUF + 0x2000 + 1), (uint8_t)(201 * 7));
	for (int i = 0; i < 1000 && __atomic_load_n(&d->rec.n, __ATOMIC_SEQ_CST) == before; i++)
		usleep(1000);
	assert_true(__atomic_load_n(&d->rec.n, __ATOMIC_SEQ_CST) > before);
	assert_int_equal(__atomic_load_n(&d->rec.data, __ATOMIC_SEQ_CST),
			 0x31); /* queue 0's vector 1 */
	/* Write a sector on queue 1, read it back on queue 0. */
	uint8_t data[1024];
	for (unsigned i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i ^ 0x5a);
	assert_int_equal(gm_write(&d->gm, BUF + 0x4000, data, sizeof(data)), 0);
	put_hdr(d, BUF, VIRTIO_BLK_T_OUT, 100);
	struct buf wq[] = {{BUF, 16, false}, {BUF + 0x4000, 1024, false}, {BUF + 0x3000, 1, true}};
	submit(d, 1, wq, 3);
	assert_int_equal(wait_used(d, 1), 1);
	assert_int_equal(peek8(d, BUF + 0x3000), VIRTIO_BLK_S_OK);
	int fd = open(d->path, O_RDONLY);
	uint8_t back[1024];
	assert_int_equal(pread(fd, back, sizeof(back), 100 * 512), sizeof(back));
	close(fd);
	assert_memory_equal(back, data, sizeof(data));
	/* Flush and get-id. */
	put_hdr(d, BUF, VIRTIO_BLK_T_FLUSH, 0);
	struct buf fq[] = {{BUF, 16, false}, {BUF + 0x3000, 1, true}};
	submit(d, 0, fq, 2);
	assert_int_equal(wait_used(d, 0), 1);
	assert_int_equal(peek8(d, BUF + 0x3000), VIRTIO_BLK_S_OK);
	put_hdr(d, BUF, VIRTIO_BLK_T_GET_ID, 0);
	struct buf iq[] = {{BUF, 16, false}, {BUF + 0x5000, 20, true}, {BUF + 0x3000, 1, true}};
	submit(d, 0, iq, 3);
	assert_int_equal(wait_used(d, 0), 21);
	char id[21] = {0};
	assert_int_equal(gm_read(&d->gm, BUF + 0x5000, id, 20), 0);
	assert_string_equal(id, "kestrel-disk0");
	/* Beyond the end of the disk: IOERR, no crash. */
	put_hdr(d, BUF, VIRTIO_BLK_T_IN, DISK_MIB * 2048 - 1);
	struct buf eq[] = {{BUF, 16, false}, {BUF + 0x1000, 1024, true}, {BUF + 0x3000, 1, true}};
	submit(d, 0, eq, 3);
	assert_int_equal(wait_used(d, 0), 1);
	assert_int_equal(peek8(d, BUF + 0x3000), VIRTIO_BLK_S_IOERR);
	/* Unknown request type: UNSUPP. */
	put_hdr(d, BUF, 77, 0);
	submit(d, 0, fq, 2);
	assert_int_equal(wait_used(d, 0), 1);
	assert_int_equal(peek8(d, BUF + 0x3000), VIRTIO_BLK_S_UNSUPP);
	assert_false(status(d) & VIRTIO_STATUS_NEEDS_RESET);
}

static void blk_discard_write_zeroes(void **state)
{
	struct drv *d = *state;
	blk_start(d, false);
	uint8_t seg[16] = {0};
	uint64_t sector = 10;
	uint32_t num = 1, flags = 0;
	memcpy(seg, &sector, 8);
	memcpy(seg + 8, &num, 4);
	memcpy(seg + 12, &flags, 4);
	assert_int_equal(gm_write(&d->gm, BUF + 0x100, seg, 16), 0);
	put_hdr(d, BUF, VIRTIO_BLK_T_WRITE_ZEROES, 0);
	struct buf q[] = {{BUF, 16, false}, {BUF + 0x100, 16, false}, {BUF + 0x3000, 1, true}};
	submit(d, 0, q, 3);
	assert_int_equal(wait_used(d, 0), 1);
	assert_int_equal(peek8(d, BUF + 0x3000), VIRTIO_BLK_S_OK);
	int fd = open(d->path, O_RDONLY);
	uint8_t back[512], zero[512] = {0};
	assert_int_equal(pread(fd, back, 512, 10 * 512), 512);
	assert_memory_equal(back, zero, 512);
	/* INTx mode: the ISR says "queue", reading it lowers the line. */
	unsigned gsi = pci_slot_gsi(SLOT, 0);
	for (int i = 0; i < 1000 && !__atomic_load_n(&d->rec.line[gsi], __ATOMIC_SEQ_CST); i++)
		usleep(1000);
	assert_true(d->rec.line[gsi]);
	assert_int_equal(rd(d, d->isr, 1), 1);
	assert_false(d->rec.line[gsi]);
	assert_int_equal(rd(d, d->isr, 1), 0);
	/* Discard of the pattern written at sector 100 by hand. */
	uint8_t ones[512];
	memset(ones, 0xff, sizeof(ones));
	int wfd = open(d->path, O_WRONLY);
	assert_int_equal(pwrite(wfd, ones, 512, 200 * 512), 512);
	close(wfd);
	sector = 200;
	memcpy(seg, &sector, 8);
	assert_int_equal(gm_write(&d->gm, BUF + 0x100, seg, 16), 0);
	put_hdr(d, BUF, VIRTIO_BLK_T_DISCARD, 0);
	submit(d, 0, q, 3);
	assert_int_equal(wait_used(d, 0), 1);
	assert_int_equal(peek8(d, BUF + 0x3000), VIRTIO_BLK_S_OK);
	assert_int_equal(pread(fd, back, 512, 200 * 512), 512);
	assert_memory_equal(back, zero, 512);
	/* A range past the end: IOERR. */
	sector = DISK_MIB * 2048;
	memcpy(seg, &sector, 8);
	assert_int_equal(gm_write(&d->gm, BUF + 0x100, seg, 16), 0);
	submit(d, 0, q, 3);
	assert_int_equal(wait_used(d, 0), 1);
	assert_int_equal(peek8(d, BUF + 0x3000), VIRTIO_BLK_S_IOERR);
	close(fd);
}

/* Save a running device, reset it, load: it carries on with the same queues. */
static void blk_save_load(void **state)
{
	struct drv *d = *state;
	blk_start(d, true);
	put_hdr(d, BUF, VIRTIO_BLK_T_FLUSH, 0);
	struct buf fq[] = {{BUF, 16, false}, {BUF + 0x3000, 1, true}};
	submit(d, 0, fq, 2);
	assert_int_equal(wait_used(d, 0), 1);
	struct state_buf s, r;
	state_init_writer(&s);
	assert_int_equal(virtio_pci_save(&d->blk->vp, &s), 0);
	virtio_pci_reset(&d->blk->vp);
	pci_host_reset(&d->host);
	uint64_t v;
	assert_false(io_bus_read(&d->mmio, d->bar4, 4, &v)); /* BAR unmapped after reset */
	state_init_reader(&r, s.data, s.len);
	assert_int_equal(virtio_pci_load(&d->blk->vp, &r), 0);
	assert_int_equal(status(d), 0xf);
	assert_true(pci_msix_enabled(&d->blk->vp.pci));
	submit(d, 0, fq, 2);
	assert_int_equal(wait_used(d, 0), 1);
	assert_int_equal(peek8(d, BUF + 0x3000), VIRTIO_BLK_S_OK);
	/* Truncated or corrupt streams are refused. */
	state_init_reader(&r, s.data, s.len - 1);
	assert_int_equal(virtio_pci_load(&d->blk->vp, &r), -EINVAL);
	s.data[0] = 99;
	state_init_reader(&r, s.data, s.len);
	assert_int_equal(virtio_pci_load(&d->blk->vp, &r), -EINVAL);
	state_free(&s);
}

static void blk_readonly(void **state)
{
	struct drv *d = *state;
	wr(d, d->common + VIRTIO_PCI_DFSELECT, 4, 0);
	assert_true(rd(d, d->common + VIRTIO_PCI_DF, 4) & FEAT(VIRTIO_BLK_F_RO));
	assert_false(rd(d, d->common + VIRTIO_PCI_DF, 4) & FEAT(VIRTIO_BLK_F_DISCARD));
	blk_start(d, false);
	put_hdr(d, BUF, VIRTIO_BLK_T_OUT, 0);
	struct buf wq[] = {{BUF, 16, false}, {BUF + 0x4000, 512, false}, {BUF + 0x3000, 1, true}};
	submit(d, 0, wq, 3);
	assert_int_equal(wait_used(d, 0), 1);
	assert_int_equal(peek8(d, BUF + 0x3000), VIRTIO_BLK_S_IOERR);
	put_hdr(d, BUF, VIRTIO_BLK_T_WRITE_ZEROES, 0);
	submit(d, 0, wq, 3);
	assert_int_equal(wait_used(d, 0), 1);
	assert_int_equal(peek8(d, BUF + 0x3000), VIRTIO_BLK_S_IOERR);
	/* Reads still work. */
	put_hdr(d, BUF, VIRTIO_BLK_T_IN, 10);
	struct buf rq[] = {{BUF, 16, false}, {BUF + 0x1000, 512, true}, {BUF + 0x3000, 1, true}};
	submit(d, 0, rq, 3);
	assert_int_equal(wait_used(d, 0), 513);
	assert_int_equal(peek8(d, BUF + 0x3000), VIRTIO_BLK_S_OK);
}

static void blk_host_write_error(void **state)
{
	struct drv *d = *state;
	blk_start(d, false);
	/* Writes past 64 KiB of the image file fail on the host (EFBIG). */
	struct rlimit old, lim = {.rlim_cur = 64 << 10, .rlim_max = RLIM_INFINITY};
	signal(SIGXFSZ, SIG_IGN);
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	lim.rlim_max = old.rlim_max;
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
	put_hdr(d, BUF, VIRTIO_BLK_T_OUT, 1000);
	struct buf wq[] = {{BUF, 16, false}, {BUF + 0x4000, 512, false}, {BUF + 0x3000, 1, true}};
	submit(d, 0, wq, 3);
	int len = wait_used(d, 0);
	setrlimit(RLIMIT_FSIZE, &old);
	assert_int_equal(len, 1);
	assert_int_equal(peek8(d, BUF + 0x3000), VIRTIO_BLK_S_IOERR);
	assert_false(status(d) & VIRTIO_STATUS_NEEDS_RESET);
}

static void wait_needs_reset(struct drv *d)
{
	for (int i = 0; i < 2000 && !(status(d) & VIRTIO_STATUS_NEEDS_RESET); i++)
		usleep(1000);
	assert_true(status(d) & VIRTIO_STATUS_NEEDS_RESET);
}

static void blk_bad_chains(void **state)
{
	struct drv *d = *state;
	blk_start(d, true);
	/* Header in a device-writable buffer: not a request. */
	struct buf bq[] = {{BUF, 16, true}, {BUF + 0x3000, 1, true}};
	unsigned before = d->rec.n;
	submit(d, 0, bq, 2);
	wait_needs_reset(d);
	/* The config-change vector (0) fires. */
	for (int i = 0; i < 1000 && __atomic_load_n(&d->rec.n, __ATOMIC_SEQ_CST) == before; i++)
		usleep(1000);
	assert_int_equal(__atomic_load_n(&d->rec.data, __ATOMIC_SEQ_CST), 0x30);
	/* Further requests are ignored until a reset. */
	put_hdr(d, BUF, VIRTIO_BLK_T_FLUSH, 0);
	struct buf fq[] = {{BUF, 16, false}, {BUF + 0x3000, 1, true}};
	submit(d, 1, fq, 2);
	usleep(20000);
	uint16_t idx;
	assert_int_equal(gm_read(&d->gm, RING(1) + 0x2000 + 2, &idx, 2), 0);
	assert_int_equal(idx, 0);
	/* Reset brings it back; a buffer outside RAM then breaks it again. */
	memset(d->avail_idx, 0, sizeof(d->avail_idx));
	memset(d->used_seen, 0, sizeof(d->used_seen));
	wr(d, d->common + VIRTIO_PCI_STATUS, 1, 0);
	assert_int_equal(status(d), 0);
	for (unsigned q = 0; q < 2; q++)
		assert_int_equal(gm_write(&d->gm, RING(q) + 0x1000, (uint8_t[4]){0}, 4), 0);
	blk_start(d, true);
	submit(d, 1, fq, 2);
	assert_int_equal(wait_used(d, 1), 1);
	put_hdr(d, BUF, VIRTIO_BLK_T_IN, 0);
	struct buf oq[] = {{BUF, 16, false}, {RAM - 256, 512, true}, {BUF + 0x3000, 1, true}};
	submit(d, 0, oq, 3);
	wait_needs_reset(d);
	/* Read with data the device should read: wrong direction. */
	wr(d, d->common + VIRTIO_PCI_STATUS, 1, 0);
	memset(d->avail_idx, 0, sizeof(d->avail_idx));
	memset(d->used_seen, 0, sizeof(d->used_seen));
	for (unsigned q = 0; q < 2; q++)
		assert_int_equal(gm_write(&d->gm, RING(q) + 0x1000, (uint8_t[4]){0}, 4), 0);
	blk_start(d, true);
	struct buf dq[] = {{BUF, 16, false}, {BUF + 0x1000, 512, false}, {BUF + 0x3000, 1, true}};
	submit(d, 0, dq, 3);
	wait_needs_reset(d);
}

static void blk_bad_rings(void **state)
{
	struct drv *d = *state;
	negotiate(d, ALL_FEATURES);
	uint64_t c = d->common;
	wr(d, c + VIRTIO_PCI_Q_SELECT, 2, 0);
	wr(d, c + VIRTIO_PCI_Q_DESCLO, 4, RAM - 16);
	wr(d, c + VIRTIO_PCI_Q_ENABLE, 2, 1);
	assert_int_equal(rd(d, c + VIRTIO_PCI_Q_ENABLE, 2), 0);
	wr(d, c + VIRTIO_PCI_Q_SIZE, 2, 100); /* not a power of two */
	wr(d, c + VIRTIO_PCI_Q_DESCLO, 4, RING(0));
	wr(d, c + VIRTIO_PCI_Q_AVAILLO, 4, RING(0) + 0x1000);
	wr(d, c + VIRTIO_PCI_Q_USEDLO, 4, RING(0) + 0x2000);
	wr(d, c + VIRTIO_PCI_Q_ENABLE, 2, 1);
	assert_int_equal(rd(d, c + VIRTIO_PCI_Q_ENABLE, 2), 0);
	/* Doorbells for queues that do not exist or are not enabled are harmless. */
	wr(d, d->notify + 7 * d->notify_mult, 2, 7);
	wr(d, d->notify, 2, 0);
	/* Odd-sized accesses to the common config are ignored. */
	wr(d, c + VIRTIO_PCI_Q_SIZE, 4, 0xffffffff);
	wr(d, c + 0x37, 4, 0xffffffff);
	assert_int_equal(rd(d, c + VIRTIO_PCI_Q_SIZE, 2), 100);
}

/* --- virtio-blk: many requests in flight ------------------------------------------------ */

static unsigned inflight(struct drv *d)
{
	pthread_mutex_lock(&d->blk->vp.vdev.lock);
	unsigned n = blk_aio_inflight(d->blk->aio);
	pthread_mutex_unlock(&d->blk->vp.vdev.lock);
	return n;
}

static struct blk_aio_stats aio_stats(struct drv *d)
{
	struct blk_aio_stats st;
	pthread_mutex_lock(&d->blk->vp.vdev.lock);
	blk_aio_get_stats(d->blk->aio, &st);
	pthread_mutex_unlock(&d->blk->vp.vdev.lock);
	return st;
}

static void wait_inflight(struct drv *d, unsigned n)
{
	for (int i = 0; i < 5000 && inflight(d) != n; i++)
		usleep(1000);
	assert_int_equal(inflight(d), n);
}

#define NREQ		 40 /* per queue */
#define REQ_SZ		 0x2000u
#define REQ_AT(q, i)	 (BUF + ((q)*NREQ + (i)) * REQ_SZ) /* header; status +0x10; data +0x1000 */
#define REQ_SECTOR(q, i) (64u + ((q)*NREQ + (i)) * 8u)

static uint8_t req_byte(unsigned q, unsigned i, unsigned k)
{
	return (uint8_t)((q * NREQ + i) * 3 + k * 7);
}

/* Offer NREQ requests of one type on each queue (4 KiB each, distinct sectors), status bytes
 * preset to 0xff, and ring both doorbells. */
static void offer_batch(struct drv *d, uint32_t type)
{
	for (unsigned q = 0; q < 2; q++)
		for (unsigned i = 0; i < NREQ; i++) {
			uint64_t a = REQ_AT(q, i);
			put_hdr(d, a, type, REQ_SECTOR(q, i));
			uint8_t ff = 0xff;
			assert_int_equal(gm_write(&d->gm, a + 0x10, &ff, 1), 0);
			uint8_t data[4096];
			for (unsigned k = 0; k < sizeof(data); k++)
				data[k] = type == VIRTIO_BLK_T_OUT ? req_byte(q, i, k) : 0;
			assert_int_equal(gm_write(&d->gm, a + 0x1000, data, sizeof(data)), 0);
			struct buf b[] = {{a, 16, false},
					  {a + 0x1000, 4096, type == VIRTIO_BLK_T_IN},
					  {a + 0x10, 1, true}};
			offer(d, q, (uint16_t)(3 * i), b, 3);
		}
	kick(d, 0);
	kick(d, 1);
}

/* Every request of the batch comes back once, OK, with the right length. */
static void collect_batch(struct drv *d, uint32_t len)
{
	for (unsigned q = 0; q < 2; q++) {
		bool seen[NREQ] = {false};
		for (unsigned n = 0; n < NREQ; n++) {
			uint16_t id = 0xffff;
			assert_int_equal(wait_used_id(d, q, &id), len);
			assert_true(id % 3 == 0 && id / 3 < NREQ);
			assert_false(seen[id / 3]);
			seen[id / 3] = true;
			assert_int_equal(peek8(d, REQ_AT(q, id / 3) + 0x10), VIRTIO_BLK_S_OK);
		}
	}
}

/* 80 requests in flight at once on two queues: all complete, each once, with the right data;
 * with io_uring the iothread really had all 80 in the kernel together (completions were held
 * back until then, and virtio_blk_drain() answered them all). The reads go the usual way. */
static void blk_many_inflight(void **state)
{
	struct drv *d = *state;
	bool uring = blk_aio_uses_uring(d->blk->aio);
	blk_start_sized(d, true, 128);
	if (uring)
		atomic_store(&d->blk->hold_completions, true);
	offer_batch(d, VIRTIO_BLK_T_OUT);
	if (uring) {
		wait_inflight(d, 2 * NREQ);
		assert_int_equal(used_idx(d, 0), 0); /* nothing returned while held */
		assert_int_equal(used_idx(d, 1), 0);
		/* Drained: every one of them answered before this returns. */
		virtio_blk_drain(d->blk);
		assert_int_equal(inflight(d), 0);
		assert_int_equal(used_idx(d, 0), NREQ);
		assert_int_equal(used_idx(d, 1), NREQ);
		atomic_store(&d->blk->hold_completions, false);
	}
	collect_batch(d, 1);
	int fd = open(d->path, O_RDONLY);
	for (unsigned q = 0; q < 2; q++)
		for (unsigned i = 0; i < NREQ; i++) {
			uint8_t back[4096];
			assert_int_equal(pread(fd, back, 4096, REQ_SECTOR(q, i) * 512ull), 4096);
			for (unsigned k = 0; k < 4096; k++)
				assert_int_equal(back[k], req_byte(q, i, k));
		}
	close(fd);
	/* And read back through the device, all at once again. */
	offer_batch(d, VIRTIO_BLK_T_IN);
	collect_batch(d, 4097);
	for (unsigned q = 0; q < 2; q++)
		for (unsigned i = 0; i < NREQ; i++) {
			uint8_t back[4096];
			assert_int_equal(gm_read(&d->gm, REQ_AT(q, i) + 0x1000, back, 4096), 0);
			for (unsigned k = 0; k < 4096; k++)
				assert_int_equal(back[k], req_byte(q, i, k));
		}
	struct blk_aio_stats st = aio_stats(d);
	if (uring) {
		assert_int_equal(st.max_inflight, 2 * NREQ);
		assert_int_equal(st.uring, 4 * NREQ);
	} else {
		assert_int_equal(st.sync, 4 * NREQ);
	}
	assert_int_equal(inflight(d), 0);
	assert_false(status(d) & VIRTIO_STATUS_NEEDS_RESET);
}

/* A reset (the driver's, then the machine's) while requests are in flight waits for them and
 * returns none of them into the reset rings; the device then works normally. */
static void blk_reset_inflight(void **state)
{
	struct drv *d = *state;
	if (!blk_aio_uses_uring(d->blk->aio)) {
		print_message("SKIP reason: no io_uring here: requests never stay in flight\n");
		skip();
	}
	for (int round = 0; round < 2; round++) {
		memset(d->avail_idx, 0, sizeof(d->avail_idx));
		memset(d->used_seen, 0, sizeof(d->used_seen));
		for (unsigned q = 0; q < 2; q++) {
			assert_int_equal(gm_write(&d->gm, RING(q) + 0x1000, (uint8_t[4]){0}, 4), 0);
			assert_int_equal(gm_write(&d->gm, RING(q) + 0x2000, (uint8_t[4]){0}, 4), 0);
		}
		blk_start_sized(d, true, 128);
		atomic_store(&d->blk->hold_completions, true);
		uint64_t dropped = d->blk->nr_dropped;
		offer_batch(d, round == 0 ? VIRTIO_BLK_T_IN : VIRTIO_BLK_T_OUT);
		wait_inflight(d, 2 * NREQ);
		if (round == 0) {
			wr(d, d->common + VIRTIO_PCI_STATUS, 1, 0); /* the driver's reset */
		} else {
			virtio_pci_reset(&d->blk->vp); /* the machine's */
			pci_host_reset(&d->host);
			cfg_wr(d, PCI_BAR0 + 16, 4, (uint32_t)d->bar4);
			cfg_wr(d, PCI_BAR0 + 20, 4, (uint32_t)(d->bar4 >> 32));
			cfg_wr(d, PCI_BAR0 + 4, 4, (uint32_t)d->msix);
			cfg_wr(d, PCI_COMMAND, 2, PCI_CMD_MEM | PCI_CMD_MASTER);
		}
		assert_int_equal(status(d), 0);
		assert_int_equal(inflight(d), 0);
		assert_int_equal(d->blk->nr_dropped - dropped, 2 * NREQ);
		usleep(20000);
		for (unsigned q = 0; q < 2; q++) {
			assert_int_equal(used_idx(d, q), 0);
			for (unsigned i = 0; i < NREQ; i++)
				assert_int_equal(peek8(d, REQ_AT(q, i) + 0x10), 0xff);
		}
		atomic_store(&d->blk->hold_completions, false);
	}
	/* Working again after the reset. */
	memset(d->avail_idx, 0, sizeof(d->avail_idx));
	memset(d->used_seen, 0, sizeof(d->used_seen));
	for (unsigned q = 0; q < 2; q++)
		assert_int_equal(gm_write(&d->gm, RING(q) + 0x1000, (uint8_t[4]){0}, 4), 0);
	blk_start(d, true);
	put_hdr(d, BUF, VIRTIO_BLK_T_FLUSH, 0);
	struct buf fq[] = {{BUF, 16, false}, {BUF + 0x3000, 1, true}};
	submit(d, 0, fq, 2);
	assert_int_equal(wait_used(d, 0), 1);
	assert_int_equal(peek8(d, BUF + 0x3000), VIRTIO_BLK_S_OK);
}

/* cache=none with guest buffers at odd addresses (bounced through aligned memory). */
static void blk_direct_unaligned(void **state)
{
	struct drv *d = *state;
	if (!d) {
		print_message("SKIP reason: /tmp has no O_DIRECT\n");
		skip();
	}
	blk_start(d, false);
	uint8_t data[1024], back[1024];
	for (unsigned i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 5 + 1);
	assert_int_equal(gm_write(&d->gm, BUF + 0x4001, data, 512), 0);
	assert_int_equal(gm_write(&d->gm, BUF + 0x5003, data + 512, 512), 0);
	put_hdr(d, BUF, VIRTIO_BLK_T_OUT, 100);
	struct buf wq[] = {{BUF, 16, false},
			   {BUF + 0x4001, 512, false},
			   {BUF + 0x5003, 512, false},
			   {BUF + 0x3000, 1, true}};
	submit(d, 0, wq, 4);
	assert_int_equal(wait_used(d, 0), 1);
	assert_int_equal(peek8(d, BUF + 0x3000), VIRTIO_BLK_S_OK);
	int fd = open(d->path, O_RDONLY);
	assert_int_equal(pread(fd, back, sizeof(back), 100 * 512), sizeof(back));
	close(fd);
	assert_memory_equal(back, data, sizeof(data));
	/* Read it back into odd addresses too, and the pattern at sector 10 into a third. */
	put_hdr(d, BUF, VIRTIO_BLK_T_IN, 100);
	struct buf rq[] = {{BUF, 16, false},
			   {BUF + 0x6005, 700, true},
			   {BUF + 0x7007, 324, true},
			   {BUF + 0x3000, 1, true}};
	submit(d, 0, rq, 4);
	assert_int_equal(wait_used(d, 0), 1025);
	assert_int_equal(peek8(d, BUF + 0x3000), VIRTIO_BLK_S_OK);
	assert_int_equal(gm_read(&d->gm, BUF + 0x6005, back, 700), 0);
	assert_int_equal(gm_read(&d->gm, BUF + 0x7007, back + 700, 324), 0);
	assert_memory_equal(back, data, sizeof(data));
	put_hdr(d, BUF, VIRTIO_BLK_T_IN, 10);
	struct buf pq[] = {{BUF, 16, false}, {BUF + 0x8009, 512, true}, {BUF + 0x3000, 1, true}};
	submit(d, 0, pq, 3);
	assert_int_equal(wait_used(d, 0), 513);
	assert_int_equal(peek8(d, BUF + 0x8009 + 201), (uint8_t)(201 * 7));
	if (blk_aio_uses_uring(d->blk->aio))
		assert_true(aio_stats(d).bounced >=
			    2); /* both reads; the write too where possible */
}

/* --- virtio-rng --------------------------------------------------------------------------- */

static int rng_setup(void **state)
{
	struct drv *d = calloc(1, sizeof(*d));
	drv_init(d);
	assert_int_equal(virtio_rng_init(&d->rng, &d->gm), 0);
	drv_probe(d, &d->rng.vp.pci, SLOT);
	*state = d;
	return 0;
}

static int rng_teardown(void **state)
{
	struct drv *d = *state;
	virtio_rng_destroy(&d->rng);
	drv_fini(d);
	free(d);
	return 0;
}

static void rng_fills(void **state)
{
	struct drv *d = *state;
	assert_int_equal(cfg_rd(d, PCI_DEVICE_ID, 2), 0x1044);
	assert_true(negotiate(d, ALL_FEATURES) & VIRTIO_STATUS_FEATURES_OK);
	setup_queue(d, 0, 8, VIRTIO_MSI_NO_VECTOR);
	driver_ok(d);
	uint8_t zero[64] = {0}, got[64];
	struct buf b[] = {{BUF, 64, true}};
	submit(d, 0, b, 1);
	assert_int_equal(wait_used(d, 0), 64);
	assert_int_equal(gm_read(&d->gm, BUF, got, 64), 0);
	assert_memory_not_equal(got, zero, 64);
	assert_int_equal(d->rng.bytes, 64);
	/* A readable buffer is the wrong direction. */
	struct buf bad[] = {{BUF, 64, false}};
	submit(d, 0, bad, 1);
	assert_true(status(d) & VIRTIO_STATUS_NEEDS_RESET);
}

/* --- virtio-console ----------------------------------------------------------------------- */

static void con_write(void *opaque, const uint8_t *buf, size_t len)
{
	struct drv *d = opaque;
	if (d->out_len + len <= sizeof(d->out)) {
		memcpy(d->out + d->out_len, buf, len);
		d->out_len += len;
	}
}

static int con_setup(void **state)
{
	struct drv *d = calloc(1, sizeof(*d));
	drv_init(d);
	assert_int_equal(virtio_console_init(&d->con, &d->gm, con_write, d), 0);
	drv_probe(d, &d->con.vp.pci, SLOT);
	*state = d;
	return 0;
}

static int con_teardown(void **state)
{
	struct drv *d = *state;
	virtio_console_destroy(&d->con);
	drv_fini(d);
	free(d);
	return 0;
}

static void console_io(void **state)
{
	struct drv *d = *state;
	assert_int_equal(cfg_rd(d, PCI_DEVICE_ID, 2), 0x1043);
	/* Before DRIVER_OK, input is not taken. */
	assert_int_equal(virtio_console_input(&d->con, (const uint8_t *)"x", 1), 0);
	assert_true(negotiate(d, ALL_FEATURES) & VIRTIO_STATUS_FEATURES_OK);
	setup_queue(d, 0, 8, VIRTIO_MSI_NO_VECTOR);
	setup_queue(d, 1, 8, VIRTIO_MSI_NO_VECTOR);
	driver_ok(d);
	assert_int_equal(gm_write(&d->gm, BUF, "hello hvc0\n", 11), 0);
	struct buf t[] = {{BUF, 6, false}, {BUF + 6, 5, false}};
	submit(d, 1, t, 2);
	assert_int_equal(wait_used(d, 1), 0);
	assert_int_equal(d->out_len, 11);
	assert_memory_equal(d->out, "hello hvc0\n", 11);
	/* Input: nothing until the driver posts a buffer. */
	assert_int_equal(virtio_console_input(&d->con, (const uint8_t *)"ls\n", 3), 0);
	struct buf r[] = {{BUF + 0x1000, 2, true}};
	for (unsigned i = 0; i < 1; i++) {
		struct vring_desc desc = {
		    .addr = BUF + 0x1000, .len = 2, .flags = VRING_DESC_F_WRITE};
		assert_int_equal(gm_write(&d->gm, RING(0), &desc, 16), 0);
	}
	submit(d, 0, r, 1);
	assert_int_equal(virtio_console_input(&d->con, (const uint8_t *)"ls\n", 3), 2);
	assert_int_equal(wait_used(d, 0), 2);
	assert_int_equal(peek8(d, BUF + 0x1000), 'l');
	/* A writable transmit buffer breaks the device. */
	struct buf bad[] = {{BUF, 4, true}};
	submit(d, 1, bad, 1);
	assert_true(status(d) & VIRTIO_STATUS_NEEDS_RESET);
	/* Machine reset clears everything. */
	virtio_pci_reset(&d->con.vp);
	assert_int_equal(status(d), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(blk_config_and_features, blk_setup, blk_teardown),
	    cmocka_unit_test_setup_teardown(blk_pci_cfg_window, blk_setup, blk_teardown),
	    cmocka_unit_test_setup_teardown(blk_ioeventfd, blk_setup, blk_teardown),
	    cmocka_unit_test_setup_teardown(blk_read_write_msix, blk_setup, blk_teardown),
	    cmocka_unit_test_setup_teardown(blk_discard_write_zeroes, blk_setup, blk_teardown),
	    cmocka_unit_test_setup_teardown(blk_save_load, blk_setup, blk_teardown),
	    cmocka_unit_test_setup_teardown(blk_readonly, blk_setup_ro, blk_teardown),
	    cmocka_unit_test_setup_teardown(blk_host_write_error, blk_setup, blk_teardown),
	    cmocka_unit_test_setup_teardown(blk_many_inflight, blk_setup, blk_teardown),
	    cmocka_unit_test_setup_teardown(blk_reset_inflight, blk_setup, blk_teardown),
	    cmocka_unit_test_setup_teardown(blk_direct_unaligned, blk_setup_direct, blk_teardown),
	    {"blk_read_write_msix_aio_sync", blk_read_write_msix, blk_setup_sync, blk_teardown,
	     NULL},
	    {"blk_many_inflight_aio_sync", blk_many_inflight, blk_setup_sync, blk_teardown, NULL},
	    {"blk_host_write_error_aio_sync", blk_host_write_error, blk_setup_sync, blk_teardown,
	     NULL},
	    cmocka_unit_test_setup_teardown(blk_bad_chains, blk_setup, blk_teardown),
	    cmocka_unit_test_setup_teardown(blk_bad_rings, blk_setup, blk_teardown),
	    cmocka_unit_test_setup_teardown(rng_fills, rng_setup, rng_teardown),
	    cmocka_unit_test_setup_teardown(console_io, con_setup, con_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
