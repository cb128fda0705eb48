/* Network backends, the common part: --net option parsing, the backend thread and its poll
 * loop, and the queue of received frames that wait for guest buffers. See include/net/net.h.
 */
#define LOG_SUBSYS "net"
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "core/event_loop.h"
#include "net/net.h"
#include "util/log.h"

/* --- option parsing ---------------------------------------------------------------------- */

/* A whole decimal port number 1..65535 in [s, end). */
static bool parse_port(const char *s, size_t n, uint16_t *port)
{
	unsigned v = 0;
	if (n == 0 || n > 5)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	if (v == 0 || v > 65535)
		return false;
	*port = (uint16_t)v;
	return true;
}

/* An IPv4 address in [s, s+n); empty gives `dflt`. */
static bool parse_addr(const char *s, size_t n, struct in_addr dflt, struct in_addr *a)
{
	char buf[INET_ADDRSTRLEN];
	if (n == 0) {
		*a = dflt;
		return true;
	}
	if (n >= sizeof(buf))
		return false;
	memcpy(buf, s, n);
	buf[n] = '\0';
	return inet_pton(AF_INET, buf, a) == 1;
}

/* [tcp|udp]:[hostaddr]:hostport-[guestaddr]:guestport, as QEMU's hostfwd=. */
static int parse_hostfwd(const char *s, struct net_hostfwd *f, struct error *err)
{
	const struct in_addr any = {.s_addr = htonl(INADDR_ANY)}, none = {0};
	const char *c1 = strchr(s, ':');
	const char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
	const char *dash = c2 ? strchr(c2 + 1, '-') : NULL;
	const char *c3 = dash ? strchr(dash + 1, ':') : NULL;
	if (!c3)
		return error_set(err, -EINVAL,
				 "--net: hostfwd=%s is not [tcp|udp]:[HOSTADDR]:HOSTPORT-"
				 "[GUESTADDR]:GUESTPORT",
				 s);
	size_t plen = (size_t)(c1 - s);
	if (plen == 0 || (plen == 3 && !strncmp(s, "tcp", 3)))
		f->udp = false;
	else if (plen == 3 && !strncmp(s, "udp", 3))
		f->udp = true;
	else
		return error_set(err, -EINVAL, "--net: hostfwd=%s: protocol is not tcp or udp", s);
	if (!parse_addr(c1 + 1, (size_t)(c2 - c1 - 1), any, &f->host_addr))
		return error_set(err, -EINVAL, "--net: hostfwd=%s: bad host address", s);
	if (!parse_port(c2 + 1, (size_t)(dash - c2 - 1), &f->host_port))
		return error_set(err, -EINVAL,
				 "--net: hostfwd=%s: host port is not a number 1..65535", s);
	if (!parse_addr(dash + 1, (size_t)(c3 - dash - 1), none, &f->guest_addr))
		return error_set(err, -EINVAL, "--net: hostfwd=%s: bad guest address", s);
	if (!parse_port(c3 + 1, strlen(c3 + 1), &f->guest_port))
		return error_set(err, -EINVAL,
				 "--net: hostfwd=%s: guest port is not a number 1..65535", s);
	return 0;
}

static int parse_mac(const char *s, uint8_t mac[6], struct error *err)
{
	unsigned v[6];
	char tail;
	if (strlen(s) != 17 || sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%c", &v[0], &v[1], &v[2], &v[3],
				      &v[4], &v[5], &tail) != 6)
		return error_set(err, -EINVAL, "--net: mac=%s is not XX:XX:XX:XX:XX:XX", s);
	for (unsigned i = 0; i < 17; i++)
		if (i % 3 == 2 ? s[i] != ':' : !strchr("0123456789abcdefABCDEF", s[i]))
			return error_set(err, -EINVAL, "--net: mac=%s is not XX:XX:XX:XX:XX:XX", s);
	for (unsigned i = 0; i < 6; i++)
		mac[i] = (uint8_t)v[i];
	if (mac[0] & 1)
		return error_set(err, -EINVAL, "--net: mac=%s is a multicast address", s);
	return 0;
}

/* net=A.B.C.D[/N]: the guest network; /24 when N is not given. */
static int parse_net(const char *s, struct net_opts *o, struct error *err)
{
	const char *slash = strchr(s, '/');
	size_t alen = slash ? (size_t)(slash - s) : strlen(s);
	struct in_addr a, none = {0};
	uint16_t prefix = 24;
	if (!alen || !parse_addr(s, alen, none, &a))
		return error_set(err, -EINVAL, "--net: net=%s is not A.B.C.D/PREFIX", s);
	if (slash &&
	    (!parse_port(slash + 1, strlen(slash + 1), &prefix) || prefix < 8 || prefix > 27))
		return error_set(err, -EINVAL,
				 "--net: net=%s: the prefix length must be 8..27 (room for the "
				 "gateway .2, DNS .3 and the guest .15)",
				 s);
	uint32_t mask = ~(0xffffffffu >> prefix);
	if (ntohl(a.s_addr) & ~mask)
		return error_set(err, -EINVAL, "--net: net=%s has host bits set", s);
	o->net = a;
	o->mask.s_addr = htonl(mask);
	return 0;
}

int net_opts_parse(const char *arg, struct net_opts *o, struct error *err)
{
	memset(o, 0, sizeof(*o));
	o->net.s_addr = htonl(0x0a000200); /* 10.0.2.0/24, as QEMU */
	o->mask.s_addr = htonl(0xffffff00);
	char *copy = strdup(arg);
	if (!copy)
		return error_set(err, -ENOMEM, "out of memory");
	int ret = 0;
	char *save = NULL, *tok = strtok_r(copy, ",", &save);
	if (!tok) {
		ret = error_set(err, -EINVAL, "--net needs a type: user or tap");
		goto out;
	}
	if (!strcmp(tok, "user")) {
		o->kind = NET_USER;
	} else if (!strcmp(tok, "tap")) {
		o->kind = NET_TAP;
	} else {
		ret = error_set(err, -EINVAL, "--net: unknown type '%s' (user or tap)", tok);
		goto out;
	}
	while (!ret && (tok = strtok_r(NULL, ",", &save))) {
		char *val = strchr(tok, '=');
		if (!val) {
			ret = error_set(err, -EINVAL, "--net: '%s' is not KEY=VALUE", tok);
			break;
		}
		*val++ = '\0';
		if (!strcmp(tok, "mac")) {
			ret = parse_mac(val, o->mac, err);
			o->has_mac = true;
		} else if (o->kind == NET_USER && !strcmp(tok, "hostfwd")) {
			if (o->nr_hostfwd >= NET_MAX_HOSTFWD)
				ret = error_set(err, -EINVAL, "--net: at most %d hostfwd rules",
						NET_MAX_HOSTFWD);
			else
				ret = parse_hostfwd(val, &o->hostfwd[o->nr_hostfwd++], err);
		} else if (o->kind == NET_USER && !strcmp(tok, "net")) {
			ret = parse_net(val, o, err);
		} else if (o->kind == NET_TAP && !strcmp(tok, "ifname")) {
			if (!*val || strlen(val) >= IFNAMSIZ || strchr(val, '/'))
				ret = error_set(err, -EINVAL,
						"--net: ifname=%s is not an interface name (1 to "
						"%d characters)",
						val, IFNAMSIZ - 1);
			else
				snprintf(o->ifname, sizeof(o->ifname), "%s", val);
		} else {
			ret = error_set(err, -EINVAL, "--net %s: unknown option '%s' (%s)",
					o->kind == NET_USER ? "user" : "tap", tok,
					o->kind == NET_USER ? "hostfwd, net, mac" : "ifname, mac");
		}
	}
	if (!ret && o->kind == NET_TAP && !o->ifname[0])
		ret = error_set(err, -EINVAL, "--net tap needs ifname=NAME");
	for (unsigned i = 0; !ret && i < o->nr_hostfwd; i++) {
		struct in_addr g = o->hostfwd[i].guest_addr;
		if (g.s_addr && (g.s_addr & o->mask.s_addr) != o->net.s_addr)
			ret = error_set(err, -EINVAL,
					"--net: hostfwd guest address %s is outside the guest "
					"network",
					inet_ntoa(g));
	}
out:
	free(copy);
	return ret;
}

/* --- backends ---------------------------------------------------------------------------- */

int net_backend_create(struct net_backend **nbp, const struct net_opts *o, unsigned index,
		       struct error *err)
{
	*nbp = NULL;
	switch (o->kind) {
	case NET_USER:
		return net_slirp_create(nbp, o, index, err);
	case NET_TAP:
		return net_tap_create(nbp, o, index, err);
	}
	return error_set(err, -EINVAL, "unknown network backend");
}

struct net_backend *net_backend_new(const struct net_backend_ops *ops, void *priv, unsigned index,
				    struct error *err)
{
	struct net_backend *nb = calloc(1, sizeof(*nb));
	if (!nb) {
		error_set(err, -ENOMEM, "out of memory");
		return NULL;
	}
	nb->ops = ops;
	nb->priv = priv;
	snprintf(nb->name, sizeof(nb->name), "net%u", index);
	nb->rxq_tail = &nb->rxq_head;
	nb->kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (nb->kick_fd < 0) {
		error_set(err, -errno, "%s: eventfd: %s", nb->name, strerror(errno));
		free(nb);
		return NULL;
	}
	return nb;
}

void net_backend_set_peer(struct net_backend *nb, const struct net_peer *peer)
{
	nb->peer = *peer;
}

void net_backend_kick(struct net_backend *nb)
{
	uint64_t one = 1;
	if (write(nb->kick_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_warn("%s: cannot wake the network thread: %s", nb->name, strerror(errno));
}

int net_backend_add_pollfd(struct net_backend *nb, int fd, short events)
{
	if (nb->npfd == nb->pfd_cap) {
		unsigned cap = nb->pfd_cap ? 2 * nb->pfd_cap : 16;
		struct pollfd *p = realloc(nb->pfd, cap * sizeof(*p));
		if (!p)
			return -1;
		nb->pfd = p;
		nb->pfd_cap = cap;
	}
	nb->pfd[nb->npfd] = (struct pollfd){.fd = fd, .events = events};
	return (int)nb->npfd++;
}

bool net_backend_rx_ready(const struct net_backend *nb)
{
	return nb->rxq_len == 0;
}

void net_backend_send(struct net_backend *nb, const struct iovec *iov, unsigned iovcnt, size_t len)
{
	nb->tx_frames++;
	nb->ops->send(nb, iov, iovcnt, len);
}

void net_backend_deliver(struct net_backend *nb, const uint8_t *frame, size_t len)
{
	if (!nb->peer.receive || len > NET_MAX_FRAME + nb->vnet_hdr_len) {
		nb->rx_dropped++;
		return;
	}
	/* Frames keep their order: while some wait, a new one waits behind them. */
	if (!nb->in_kick && !nb->rxq_head && nb->peer.receive(nb->peer.opaque, frame, len)) {
		nb->rx_frames++;
		return;
	}
	if (nb->rxq_len >= NET_RX_QUEUE_MAX) {
		nb->rx_dropped++;
		return;
	}
	struct net_frame *f = malloc(sizeof(*f) + len);
	if (!f) {
		nb->rx_dropped++;
		return;
	}
	f->next = NULL;
	f->len = len;
	memcpy(f->data, frame, len);
	*nb->rxq_tail = f;
	nb->rxq_tail = &f->next;
	nb->rxq_len++;
}

/* Offer the kept frames again, oldest first, until the NIC has no room. */
static void rxq_flush(struct net_backend *nb)
{
	while (nb->rxq_head) {
		struct net_frame *f = nb->rxq_head;
		if (!nb->peer.receive(nb->peer.opaque, f->data, f->len))
			return;
		nb->rx_frames++;
		nb->rxq_head = f->next;
		if (!nb->rxq_head)
			nb->rxq_tail = &nb->rxq_head;
		nb->rxq_len--;
		free(f);
	}
}

void net_backend_run_once(struct net_backend *nb, int timeout_ms)
{
	int timeout = timeout_ms;
	nb->npfd = 0;
	if (net_backend_add_pollfd(nb, nb->kick_fd, POLLIN) < 0) {
		log_error("%s: out of memory", nb->name);
		return;
	}
	nb->ops->poll_fill(nb, &timeout, net_backend_rx_ready(nb));
	int n = poll(nb->pfd, nb->npfd, timeout);
	bool err = n < 0 && errno != EINTR;
	if (err)
		log_warn("%s: poll: %s", nb->name, strerror(errno));
	if (n > 0 && (nb->pfd[0].revents & POLLIN)) {
		eventfd_drain(nb->kick_fd);
		if (atomic_load(&nb->stop))
			return;
		nb->in_kick = true;
		if (nb->peer.kick)
			nb->peer.kick(nb->peer.opaque);
		nb->in_kick = false;
		if (nb->peer.receive)
			rxq_flush(nb);
	}
	if (n < 0)
		for (unsigned i = 0; i < nb->npfd; i++)
			nb->pfd[i].revents = 0;
	nb->ops->poll_done(nb, err);
}

static void *net_thread(void *arg)
{
	struct net_backend *nb = arg;
	while (!atomic_load(&nb->stop))
		net_backend_run_once(nb, -1);
	return NULL;
}

int net_backend_start(struct net_backend *nb, struct error *err)
{
	int ret = -pthread_create(&nb->thread, NULL, net_thread, nb);
	if (ret)
		return error_set(err, ret, "%s: cannot start the network thread", nb->name);
	nb->thread_started = true;
	pthread_setname_np(nb->thread, nb->name);
	return 0;
}

void net_backend_destroy(struct net_backend *nb)
{
	if (!nb)
		return;
	if (nb->thread_started) {
		atomic_store(&nb->stop, true);
		net_backend_kick(nb);
		pthread_join(nb->thread, NULL);
		nb->thread_started = false;
	}
	if (nb->ops && nb->ops->destroy)
		nb->ops->destroy(nb);
	while (nb->rxq_head) {
		struct net_frame *f = nb->rxq_head;
		nb->rxq_head = f->next;
		free(f);
	}
	if (nb->kick_fd >= 0)
		close(nb->kick_fd);
	free(nb->pfd);
	free(nb);
}
