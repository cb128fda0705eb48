/* Network backends: where a NIC's frames go to and come from.
 *
 * A backend is user-mode networking through libslirp (net/slirp.c: `--net user`, a NAT'd
 * 10.0.2.0/24 with DHCP, DNS and host port forwarding) or a host tap device (net/tap.c:
 * `--net tap,ifname=NAME`, with a virtio_net_hdr on every frame so checksum and segmentation
 * offloads cross it). Common code is in net/net.c.
 *
 * Threads: each backend has one thread, named after the NIC ("net0"), that polls the backend's
 * host fds and the NIC's kick eventfd. Everything that touches the backend runs there: the
 * NIC's transmit path (peer.kick, which calls net_backend_send()) and receive path (the backend
 * calls peer.receive). libslirp is not thread-safe; this keeps it on one thread without locks.
 *
 * Flow control: peer.receive returns 0 when the guest has posted no buffer for a frame. The
 * backend then keeps that frame and stops reading from its host side (tap fd, slirp sockets)
 * until the NIC is kicked again (the guest added receive buffers and rang the doorbell); the
 * kept frames go first. Frames that arrive while the NIC transmits (slirp answers ARP and DHCP
 * from inside slirp_input) are kept the same way, up to NET_RX_QUEUE_MAX, so nothing spins
 * and nothing loops dropping while the guest gives no buffers.
 */
#ifndef KESTREL_NET_NET_H
#define KESTREL_NET_NET_H

#include <netinet/in.h>
#include <net/if.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "util/error.h"

#define NET_VNET_HDR_LEN 12 /* struct virtio_net_hdr with num_buffers (virtio 1.x) */
/* Largest frame a backend passes either way, without a vnet header: a 64 KiB GSO packet's
 * IP datagram plus an Ethernet header with a VLAN tag. */
#define NET_MAX_FRAME	 (65535 + 18)
#define NET_RX_QUEUE_MAX 256 /* frames kept while the NIC has no room */
#define NET_MAX_HOSTFWD	 16

/* Offloads a backend can be told the guest accepts (the tap's TUN_F_* bits). */
#define NET_OFFLOAD_CSUM    0x01
#define NET_OFFLOAD_TSO4    0x02
#define NET_OFFLOAD_TSO6    0x04
#define NET_OFFLOAD_TSO_ECN 0x08

enum net_kind { NET_USER, NET_TAP };

struct net_hostfwd {
	bool udp;
	struct in_addr host_addr;  /* INADDR_ANY when not given, as QEMU */
	struct in_addr guest_addr; /* 0: the first DHCP address */
	uint16_t host_port, guest_port;
};

/* One --net option, parsed. */
struct net_opts {
	enum net_kind kind;
	bool has_mac;
	uint8_t mac[6];
	/* user */
	struct in_addr net, mask; /* default 10.0.2.0/24 */
	struct net_hostfwd hostfwd[NET_MAX_HOSTFWD];
	unsigned nr_hostfwd;
	/* tap */
	char ifname[IFNAMSIZ];
};

/* Parse "user[,hostfwd=...][,net=A.B.C.D/N][,mac=...]" or "tap,ifname=NAME[,mac=...]".
 * Returns 0 or -EINVAL with a one-line message in err. */
int net_opts_parse(const char *arg, struct net_opts *o, struct error *err)
    __attribute__((warn_unused_result));

struct net_backend;

/* The NIC side, called on the backend's thread. */
struct net_peer {
	/* A frame for the guest (led by a NET_VNET_HDR_LEN header when the backend's
	 * vnet_hdr_len says so). 1: taken (delivered, or dropped by the NIC); 0: no room now,
	 * the backend keeps it and offers it again after the next kick. */
	int (*receive)(void *opaque, const uint8_t *frame, size_t len);
	/* The kick eventfd fired: the guest rang a doorbell (transmit, or receive buffers
	 * added), or someone called net_backend_kick(). */
	void (*kick)(void *opaque);
	void *opaque;
};

struct net_backend_ops {
	const char *kind;
	/* Send one frame (with the vnet header if vnet_hdr_len) to the outside. */
	void (*send)(struct net_backend *nb, const struct iovec *iov, unsigned iovcnt, size_t len);
	/* Append the fds to poll to nb->pfd (net_backend_add_pollfd) and lower *timeout_ms
	 * (-1: no limit). rx false: the NIC is full, do not read input now. */
	void (*poll_fill)(struct net_backend *nb, int *timeout_ms, bool rx);
	/* After poll(): handle what is ready; err: poll() itself failed. */
	void (*poll_done)(struct net_backend *nb, bool err);
	/* The guest accepts these NET_OFFLOAD_* on received frames. Optional. */
	int (*set_offload)(struct net_backend *nb, unsigned offloads);
	void (*destroy)(struct net_backend *nb);
};

struct net_frame {
	struct net_frame *next;
	size_t len;
	uint8_t data[];
};

struct net_backend {
	const struct net_backend_ops *ops;
	void *priv;
	char name[16];	       /* the thread's name: "net0" */
	unsigned vnet_hdr_len; /* 0: plain Ethernet frames; NET_VNET_HDR_LEN: led by a header */
	bool offloads;	       /* honours NEEDS_CSUM and GSO in that header (tap) */
	struct net_peer peer;
	int kick_fd; /* eventfd; a NIC uses it as its doorbell (ioeventfd) */

	/* The poll set of one loop iteration: the kick fd first, then the backend's. */
	struct pollfd *pfd;
	unsigned npfd, pfd_cap;

	/* Frames for the guest waiting for room (backend thread only) */
	struct net_frame *rxq_head, **rxq_tail;
	unsigned rxq_len;
	bool in_kick; /* peer.kick is running: frames from the backend wait in rxq */

	pthread_t thread;
	bool thread_started;
	atomic_bool stop;

	/* Counters (backend thread) */
	uint64_t rx_frames, rx_dropped, tx_frames, tx_dropped;
};

/* Create the backend the options name; `index` names its thread ("net<index>"). */
int net_backend_create(struct net_backend **nbp, const struct net_opts *o, unsigned index,
		       struct error *err) __attribute__((warn_unused_result));
/* Allocate the common part for a backend implementation (net/slirp.c, net/tap.c, tests). */
struct net_backend *net_backend_new(const struct net_backend_ops *ops, void *priv, unsigned index,
				    struct error *err);
void net_backend_set_peer(struct net_backend *nb, const struct net_peer *peer);
/* Start the backend's thread. */
int net_backend_start(struct net_backend *nb, struct error *err)
    __attribute__((warn_unused_result));
/* Stop the thread, free kept frames, destroy the backend. */
void net_backend_destroy(struct net_backend *nb);

/* Any thread: wake the backend's thread and run peer.kick there. */
void net_backend_kick(struct net_backend *nb);
/* One loop iteration (poll up to timeout_ms, handle what is ready); the thread runs this,
 * tests call it directly on a backend whose thread they did not start. */
void net_backend_run_once(struct net_backend *nb, int timeout_ms);

/* Backend thread: peer.kick's transmit path hands each guest frame here. */
void net_backend_send(struct net_backend *nb, const struct iovec *iov, unsigned iovcnt, size_t len);
/* Backend thread, for implementations: a frame from the outside for the guest. */
void net_backend_deliver(struct net_backend *nb, const uint8_t *frame, size_t len);
/* Backend thread, for implementations: whether to read more input (nothing is waiting). */
bool net_backend_rx_ready(const struct net_backend *nb);
/* For implementations, in poll_fill: poll fd for events; returns its index for poll_done
 * (nb->pfd[index].revents), or -1 when out of memory. */
int net_backend_add_pollfd(struct net_backend *nb, int fd, short events);

/* Implementations (net/slirp.c, net/tap.c). */
int net_slirp_create(struct net_backend **nbp, const struct net_opts *o, unsigned index,
		     struct error *err);
int net_tap_create(struct net_backend **nbp, const struct net_opts *o, unsigned index,
		   struct error *err);

#endif
