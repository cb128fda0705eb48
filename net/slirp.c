/* User-mode networking through libslirp (4.7 API: slirp_new with a SlirpConfig, SlirpCb
 * callbacks, slirp_pollfds_fill/slirp_pollfds_poll), with QEMU's defaults: the guest network
 * 10.0.2.0/24, the gateway and host at .2 (connections to it reach the host's loopback), DNS
 * at .3, DHCP handing out .15 first; IPv6 prefix fec0::/64. hostfwd rules listen on the host
 * (all interfaces unless an address is given, as QEMU does) and connect to a guest port.
 *
 * Everything here runs on the backend's thread (see include/net/net.h), libslirp included:
 * its timers are kept in a list here and fired from the poll loop; its sockets join the poll
 * set in poll_fill. While the NIC has no room for frames, slirp is not polled at all, so its
 * sockets keep their data in the host kernel and TCP slows the far end down.
 */
#define LOG_SUBSYS "slirp"
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libslirp.h>

#include "net/net.h"
#include "util/log.h"

struct slirp_timer {
	struct slirp_timer *next;
	SlirpTimerCb cb; /* timer_new's callback; NULL: timer_new_opaque's, by id */
	SlirpTimerId id;
	void *cb_opaque;
	int64_t expire_ms; /* -1: not armed */
};

struct slirp_net {
	struct net_backend *nb;
	Slirp *slirp;
	struct slirp_timer *timers;
	bool polled; /* poll_fill gave slirp's fds to this iteration */
	uint8_t txbuf[NET_MAX_FRAME];
};

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* --- SlirpCb ----------------------------------------------------------------------------- */

static ssize_t cb_send_packet(const void *buf, size_t len, void *opaque)
{
	struct slirp_net *sn = opaque;
	net_backend_deliver(sn->nb, buf, len);
	return (ssize_t)len;
}

static void cb_guest_error(const char *msg, void *opaque)
{
	struct slirp_net *sn = opaque;
	log_guest_error("%s: %s", sn->nb->name, msg);
}

static int64_t cb_clock_get_ns(void *opaque)
{
	return now_ns();
}

static struct slirp_timer *timer_add(struct slirp_net *sn)
{
	struct slirp_timer *t = calloc(1, sizeof(*t));
	if (!t) {
		log_error("%s: out of memory for a timer", sn->nb->name);
		return NULL;
	}
	t->expire_ms = -1;
	t->next = sn->timers;
	sn->timers = t;
	return t;
}

static void *cb_timer_new(SlirpTimerCb cb, void *cb_opaque, void *opaque)
{
	struct slirp_timer *t = timer_add(opaque);
	if (t) {
		t->cb = cb;
		t->cb_opaque = cb_opaque;
	}
	return t;
}

static void *cb_timer_new_opaque(SlirpTimerId id, void *cb_opaque, void *opaque)
{
	struct slirp_timer *t = timer_add(opaque);
	if (t) {
		t->id = id;
		t->cb_opaque = cb_opaque;
	}
	return t;
}

static void cb_timer_free(void *timer, void *opaque)
{
	struct slirp_net *sn = opaque;
	for (struct slirp_timer **p = &sn->timers; *p; p = &(*p)->next) {
		if (*p == timer) {
			*p = ((struct slirp_timer *)timer)->next;
			free(timer);
			return;
		}
	}
}

static void cb_timer_mod(void *timer, int64_t expire_ms, void *opaque)
{
	struct slirp_timer *t = timer;
	if (t)
		t->expire_ms = expire_ms < 0 ? 0 : expire_ms;
}

static void cb_register_poll_fd(int fd, void *opaque)
{
	/* Sockets are polled through slirp_pollfds_fill every iteration. */
}

static void cb_unregister_poll_fd(int fd, void *opaque)
{
}

static void cb_notify(void *opaque)
{
	struct slirp_net *sn = opaque;
	net_backend_kick(sn->nb);
}

static const SlirpCb slirp_callbacks = {
    .send_packet = cb_send_packet,
    .guest_error = cb_guest_error,
    .clock_get_ns = cb_clock_get_ns,
    .timer_new = cb_timer_new,
    .timer_free = cb_timer_free,
    .timer_mod = cb_timer_mod,
    .register_poll_fd = cb_register_poll_fd,
    .unregister_poll_fd = cb_unregister_poll_fd,
    .notify = cb_notify,
    .timer_new_opaque = cb_timer_new_opaque,
};

/* --- poll loop --------------------------------------------------------------------------- */

static int add_poll(int fd, int events, void *opaque)
{
	struct slirp_net *sn = opaque;
	short ev = 0;
	if (events & SLIRP_POLL_IN)
		ev |= POLLIN;
	if (events & SLIRP_POLL_OUT)
		ev |= POLLOUT;
	if (events & SLIRP_POLL_PRI)
		ev |= POLLPRI;
	return net_backend_add_pollfd(sn->nb, fd, ev);
}

static int get_revents(int idx, void *opaque)
{
	struct slirp_net *sn = opaque;
	/* Index 0 is the kick fd, never one of slirp's. */
	if (idx <= 0 || (unsigned)idx >= sn->nb->npfd)
		return 0;
	short r = sn->nb->pfd[idx].revents;
	int ev = 0;
	if (r & POLLIN)
		ev |= SLIRP_POLL_IN;
	if (r & POLLOUT)
		ev |= SLIRP_POLL_OUT;
	if (r & POLLPRI)
		ev |= SLIRP_POLL_PRI;
	if (r & POLLERR)
		ev |= SLIRP_POLL_ERR;
	if (r & POLLHUP)
		ev |= SLIRP_POLL_HUP;
	return ev;
}

static void slirp_poll_fill(struct net_backend *nb, int *timeout_ms, bool rx)
{
	struct slirp_net *sn = nb->priv;
	sn->polled = rx;
	if (!rx)
		return; /* the NIC is full: wait for its kick, leave the sockets be */
	uint32_t t = *timeout_ms < 0 ? UINT32_MAX : (uint32_t)*timeout_ms;
	slirp_pollfds_fill(sn->slirp, &t, add_poll, sn);
	int64_t now_ms = now_ns() / 1000000;
	for (struct slirp_timer *tm = sn->timers; tm; tm = tm->next) {
		if (tm->expire_ms < 0)
			continue;
		int64_t d = tm->expire_ms > now_ms ? tm->expire_ms - now_ms : 0;
		if ((uint64_t)d < t)
			t = (uint32_t)d;
	}
	*timeout_ms = t >= INT_MAX ? -1 : (int)t;
}

static void run_timers(struct slirp_net *sn)
{
	int64_t now_ms = now_ns() / 1000000;
	bool fired;
	do { /* a callback may re-arm or free timers: rescan after each */
		fired = false;
		for (struct slirp_timer *t = sn->timers; t; t = t->next) {
			if (t->expire_ms < 0 || t->expire_ms > now_ms)
				continue;
			t->expire_ms = -1;
			if (t->cb)
				t->cb(t->cb_opaque);
			else
				slirp_handle_timer(sn->slirp, t->id, t->cb_opaque);
			fired = true;
			break;
		}
	} while (fired);
}

static void slirp_poll_done(struct net_backend *nb, bool err)
{
	struct slirp_net *sn = nb->priv;
	if (!sn->polled)
		return;
	slirp_pollfds_poll(sn->slirp, err, get_revents, sn);
	run_timers(sn);
}

static void slirp_send(struct net_backend *nb, const struct iovec *iov, unsigned iovcnt, size_t len)
{
	struct slirp_net *sn = nb->priv;
	if (len > sizeof(sn->txbuf) || len > INT_MAX) {
		nb->tx_dropped++;
		return;
	}
	const uint8_t *pkt = iov[0].iov_base;
	if (iovcnt != 1 || iov[0].iov_len != len) { /* slirp wants the frame in one piece */
		size_t off = 0;
		for (unsigned i = 0; i < iovcnt && off < len; i++) {
			size_t n = iov[i].iov_len < len - off ? iov[i].iov_len : len - off;
			memcpy(sn->txbuf + off, iov[i].iov_base, n);
			off += n;
		}
		pkt = sn->txbuf;
	}
	slirp_input(sn->slirp, pkt, (int)len);
}

static void slirp_destroy(struct net_backend *nb)
{
	struct slirp_net *sn = nb->priv;
	if (!sn)
		return;
	if (sn->slirp)
		slirp_cleanup(sn->slirp);
	while (sn->timers) {
		struct slirp_timer *t = sn->timers;
		sn->timers = t->next;
		free(t);
	}
	free(sn);
	nb->priv = NULL;
}

static const struct net_backend_ops slirp_ops = {
    .kind = "user",
    .send = slirp_send,
    .poll_fill = slirp_poll_fill,
    .poll_done = slirp_poll_done,
    .destroy = slirp_destroy,
};

static struct in_addr host_part(struct in_addr net, uint32_t n)
{
	return (struct in_addr){.s_addr = htonl(ntohl(net.s_addr) + n)};
}

int net_slirp_create(struct net_backend **nbp, const struct net_opts *o, unsigned index,
		     struct error *err)
{
	struct slirp_net *sn = calloc(1, sizeof(*sn));
	if (!sn)
		return error_set(err, -ENOMEM, "out of memory");
	struct net_backend *nb = net_backend_new(&slirp_ops, sn, index, err);
	if (!nb) {
		free(sn);
		return err ? err->code : -ENOMEM;
	}
	sn->nb = nb;
	SlirpConfig cfg = {
	    .version = 4,
	    .in_enabled = true,
	    .vnetwork = o->net,
	    .vnetmask = o->mask,
	    .vhost = host_part(o->net, 2),
	    .vdhcp_start = host_part(o->net, 15),
	    .vnameserver = host_part(o->net, 3),
	    .in6_enabled = true,
	    .vprefix_len = 64,
	};
	inet_pton(AF_INET6, "fec0::", &cfg.vprefix_addr6);
	inet_pton(AF_INET6, "fec0::2", &cfg.vhost6);
	inet_pton(AF_INET6, "fec0::3", &cfg.vnameserver6);
	sn->slirp = slirp_new(&cfg, &slirp_callbacks, sn);
	int ret;
	if (!sn->slirp) {
		ret = error_set(err, -EINVAL, "--net user: libslirp refused the configuration");
		goto err;
	}
	for (unsigned i = 0; i < o->nr_hostfwd; i++) {
		const struct net_hostfwd *f = &o->hostfwd[i];
		struct in_addr guest = f->guest_addr.s_addr ? f->guest_addr : cfg.vdhcp_start;
		errno = 0;
		if (slirp_add_hostfwd(sn->slirp, f->udp, f->host_addr, f->host_port, guest,
				      f->guest_port) < 0) {
			char host[INET_ADDRSTRLEN];
			inet_ntop(AF_INET, &f->host_addr, host, sizeof(host));
			ret = error_set(err, -EADDRINUSE,
					"--net user: cannot listen on %s %s:%u for hostfwd: %s",
					f->udp ? "udp" : "tcp", host, f->host_port,
					strerror(errno ? errno : EADDRINUSE));
			goto err;
		}
	}
	log_info("%s: user networking %s/%d, %u port forwarding rule(s), libslirp %s", nb->name,
		 inet_ntoa(o->net), 32 - __builtin_ctz(ntohl(o->mask.s_addr)), o->nr_hostfwd,
		 slirp_version_string());
	*nbp = nb;
	return 0;

err:
	net_backend_destroy(nb);
	return ret;
}
