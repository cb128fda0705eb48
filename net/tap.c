/* A host tap device as a network backend (Linux's Documentation/networking/tuntap.rst).
 *
 * The device is opened with IFF_TAP | IFF_NO_PI | IFF_VNET_HDR and a 12-byte vnet header
 * (TUNSETVNETHDRSZ): every frame either way is led by the virtio_net_hdr the guest's driver
 * reads and writes, so partial checksums and GSO packets cross without being touched. The
 * host kernel only hands the guest such packets for the offloads set with TUNSETOFFLOAD,
 * which follows what the guest negotiated (none until it has). The interface itself
 * (addresses, bridge, link up) is the host administrator's business, as with QEMU's
 * script=no.
 */
#define LOG_SUBSYS "tap"
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <unistd.h>

#include "net/net.h"
#include "util/log.h"

#define TAP_READ_BATCH 64 /* frames read per wake-up, so transmit gets its turn */

struct tap_net {
	struct net_backend *nb;
	int fd;
	int pfd_idx; /* index in the backend's poll set, -1: not polled this iteration */
	bool failed; /* a read error that poll keeps reporting: stop polling the fd */
	char ifname[IFNAMSIZ];
	uint8_t buf[NET_VNET_HDR_LEN + NET_MAX_FRAME];
};

static void tap_send(struct net_backend *nb, const struct iovec *iov, unsigned iovcnt, size_t len)
{
	struct tap_net *tn = nb->priv;
	ssize_t n;
	do
		n = writev(tn->fd, iov, (int)iovcnt);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		/* A full or downed interface drops the frame, as a NIC on a cable would. */
		if ((nb->tx_dropped++ & 1023) == 0) /* the first, then one in 1024 */
			log_warn("%s: write to tap %s failed: %s (frame dropped)", nb->name,
				 tn->ifname, strerror(errno));
	}
}

static void tap_poll_fill(struct net_backend *nb, int *timeout_ms, bool rx)
{
	struct tap_net *tn = nb->priv;
	tn->pfd_idx = rx && !tn->failed ? net_backend_add_pollfd(nb, tn->fd, POLLIN) : -1;
}

static void tap_poll_done(struct net_backend *nb, bool err)
{
	struct tap_net *tn = nb->priv;
	if (tn->pfd_idx <= 0 || !nb->pfd[tn->pfd_idx].revents)
		return;
	short revents = nb->pfd[tn->pfd_idx].revents;
	for (unsigned i = 0; i < TAP_READ_BATCH && net_backend_rx_ready(nb); i++) {
		ssize_t n = read(tn->fd, tn->buf, sizeof(tn->buf));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && (revents & (POLLERR | POLLHUP | POLLNVAL))) {
				log_error("%s: tap %s: %s; no more frames from it", nb->name,
					  tn->ifname, strerror(errno));
				tn->failed = true;
			}
			return;
		}
		if ((size_t)n < NET_VNET_HDR_LEN + 14) {
			nb->rx_dropped++;
			continue;
		}
		net_backend_deliver(nb, tn->buf, (size_t)n);
	}
}

static int tap_set_offload(struct net_backend *nb, unsigned offloads)
{
	struct tap_net *tn = nb->priv;
	unsigned f = 0;
	/* Segmentation offloads only come with checksum offload (tun refuses them alone). */
	if (offloads & NET_OFFLOAD_CSUM) {
		f |= TUN_F_CSUM;
		if (offloads & NET_OFFLOAD_TSO4)
			f |= TUN_F_TSO4;
		if (offloads & NET_OFFLOAD_TSO6)
			f |= TUN_F_TSO6;
		if ((offloads & NET_OFFLOAD_TSO_ECN) && (f & (TUN_F_TSO4 | TUN_F_TSO6)))
			f |= TUN_F_TSO_ECN;
	}
	if (ioctl(tn->fd, TUNSETOFFLOAD, (unsigned long)f) < 0) {
		log_warn("%s: TUNSETOFFLOAD %#x on %s: %s", nb->name, f, tn->ifname,
			 strerror(errno));
		return -errno;
	}
	return 0;
}

static void tap_destroy(struct net_backend *nb)
{
	struct tap_net *tn = nb->priv;
	if (!tn)
		return;
	if (tn->fd >= 0)
		close(tn->fd);
	free(tn);
	nb->priv = NULL;
}

static const struct net_backend_ops tap_ops = {
    .kind = "tap",
    .send = tap_send,
    .poll_fill = tap_poll_fill,
    .poll_done = tap_poll_done,
    .set_offload = tap_set_offload,
    .destroy = tap_destroy,
};

int net_tap_create(struct net_backend **nbp, const struct net_opts *o, unsigned index,
		   struct error *err)
{
	struct tap_net *tn = calloc(1, sizeof(*tn));
	if (!tn)
		return error_set(err, -ENOMEM, "out of memory");
	tn->fd = -1;
	tn->pfd_idx = -1;
	snprintf(tn->ifname, sizeof(tn->ifname), "%s", o->ifname);
	struct net_backend *nb = net_backend_new(&tap_ops, tn, index, err);
	if (!nb) {
		free(tn);
		return err ? err->code : -ENOMEM;
	}
	tn->nb = nb;
	int ret;
	tn->fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (tn->fd < 0) {
		ret = error_set(err, -errno, "--net tap: cannot open /dev/net/tun: %s",
				strerror(errno));
		goto err;
	}
	unsigned features = 0;
	if (ioctl(tn->fd, TUNGETFEATURES, &features) < 0 || !(features & IFF_VNET_HDR)) {
		ret = error_set(err, -ENOTSUP,
				"--net tap: this kernel's tun driver has no IFF_VNET_HDR");
		goto err;
	}
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
	memcpy(ifr.ifr_name, tn->ifname, sizeof(ifr.ifr_name));
	if (ioctl(tn->fd, TUNSETIFF, &ifr) < 0) {
		int e = errno;
		ret = error_set(err, -e, "--net tap: cannot attach to tap '%s': %s%s", tn->ifname,
				strerror(e),
				e == EPERM ? " (needs CAP_NET_ADMIN, or a tap created for this "
					     "user with 'ip tuntap add ... user')"
				: e == EBUSY || e == EINVAL
				    ? " (is it a tun device, or a tap already opened without "
				      "vnet_hdr?)"
				    : "");
		goto err;
	}
	int hdr = NET_VNET_HDR_LEN;
	if (ioctl(tn->fd, TUNSETVNETHDRSZ, &hdr) < 0) {
		ret = error_set(err, -errno, "--net tap: TUNSETVNETHDRSZ on '%s': %s", tn->ifname,
				strerror(errno));
		goto err;
	}
	nb->vnet_hdr_len = NET_VNET_HDR_LEN;
	nb->offloads = true;
	if (tap_set_offload(nb, 0)) {
		ret = error_set(err, -EINVAL, "--net tap: cannot clear the offloads of '%s'",
				tn->ifname);
		goto err;
	}
	log_info("%s: tap %s with a %d-byte vnet header", nb->name, tn->ifname, hdr);
	*nbp = nb;
	return 0;

err:
	net_backend_destroy(nb);
	return ret;
}
