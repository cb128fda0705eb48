/* The whole-device virtio fuzz entry point (tests/fuzz/fuzz_virtio_dev_entry.c). */
#ifndef KESTREL_TESTS_FUZZ_VIRTIO_DEV_H
#define KESTREL_TESTS_FUZZ_VIRTIO_DEV_H

#include <stddef.h>
#include <stdint.h>

#define FUZZ_DEV_RAM  (64u << 10) /* guest RAM: one malloc'd region at 0 */
#define FUZZ_DEV_HDR  3
#define FUZZ_DEV_DISK (64u << 10) /* virtio-blk's raw image (a memfd) */

/* Where the driver macros of the harness put queue q (q < 4): descriptors at RING(q), the
 * available ring at +0x1000, the used ring at +0x1400; buffers live from 0x8000 on. */
#define FUZZ_DEV_RING(q)  (0x2000u * (q))
#define FUZZ_DEV_AVAIL(q) (FUZZ_DEV_RING(q) + 0x1000u)
#define FUZZ_DEV_USED(q)  (FUZZ_DEV_RING(q) + 0x1400u)
#define FUZZ_DEV_BUF	  0x8000u

/* Input: FUZZ_DEV_HDR bytes of header, the op stream, then the RAM image.
 *   0     device and options: bits 0-1 0 virtio-blk, 1 virtio-rng, 2 virtio-console,
 *         3 virtio-net; blk: bit 2 io_uring (else aio=sync), bit 3 read-only, bit 4
 *         discard=on, bit 5 two queues; net: bit 2 a backend with a vnet header and offloads
 *   1..2  length of the op stream (le16)
 * The ops (fuzz_virtio_dev_entry.c) are what a guest can do to the PCI function: BAR 4
 * reads and writes (common config, ISR, device config, doorbells), config space (BARs,
 * command, capabilities, the PCI cfg window), the MSI-X table, guest RAM; plus driver
 * macros (bring the device up, write a descriptor, publish chains), host-side events
 * (a frame from the network, console input, machine reset, save/load). */
int fuzz_virtio_dev_one(const uint8_t *data, size_t size);

#endif
