/*
 * Link state of the started ports, for the control plane.
 *
 * A port whose PMD offers an LSC interrupt is configured with intr_conf.lsc
 * (port.c) and its ethdev callback refreshes it at once. Every followed port
 * is also polled by an EAL alarm every OF_LINK_POLL_US: some PMDs keep the
 * status current from their interrupt without raising the ethdev event
 * (net_tap, from 22.11 to this day), and with LSC configured a poll only
 * reads that status; without LSC it asks the PMD. Both run in the EAL
 * interrupt thread; the control thread reads each link once at start.
 * Workers never touch link state.
 * Any change is stamped, counted and signalled on an eventfd, on which the
 * control plane waits and then reacts (opte_fast/controlplane/links.py).
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/eventfd.h>

#include <rte_alarm.h>
#include <rte_ethdev.h>

#include "clock.h"
#include "dp.h"
#include "error.h"
#include "link.h"

/* What a change is made of: status, duplex and speed (not the autoneg bit). */
static uint64_t
link_word(const struct rte_eth_link *l)
{
	return (uint64_t)l->link_status | (uint64_t)l->link_duplex << 1 | (uint64_t)l->link_speed << 32;
}

/* announce: count the change and signal it (not for the state found at start). */
static void
link_refresh(struct of_dp *dp, struct of_port *p, int announce)
{
	struct rte_eth_link link;
	uint64_t word;

	/* A PMD that cannot say reports down: nothing is sent to a link nobody vouches for. */
	if (rte_eth_link_get_nowait(p->port_id, &link) != 0)
		memset(&link, 0, sizeof(link));
	word = link_word(&link);
	rte_spinlock_lock(&dp->link_lock);
	if (word != p->link_word || !announce) {
		__atomic_store_n(&p->link_changed_ns, of_monotonic_ns(), __ATOMIC_RELAXED);
		__atomic_store_n(&p->link_changes, p->link_changes + (announce != 0), __ATOMIC_RELAXED);
		__atomic_store_n(&p->link_word, word, __ATOMIC_RELEASE);
		if (announce)
			eventfd_write(dp->link_event_fd, 1);
	}
	rte_spinlock_unlock(&dp->link_lock);
}

static int
link_interrupt(uint16_t port_id, enum rte_eth_event_type event __rte_unused, void *arg,
	       void *ret_param __rte_unused)
{
	struct of_dp *dp = arg;

	for (uint16_t i = 0; i < dp->n_ports; i++)
		if (dp->ports[i].link_watched && dp->ports[i].port_id == port_id)
			link_refresh(dp, &dp->ports[i], 1);
	return 0;
}

static void
link_poll(void *arg)
{
	struct of_dp *dp = arg;

	for (uint16_t i = 0; i < dp->n_ports; i++)
		if (dp->ports[i].link_watched)
			link_refresh(dp, &dp->ports[i], 1);
	if (__atomic_load_n(&dp->link_polling, __ATOMIC_ACQUIRE))
		rte_eal_alarm_set(OF_LINK_POLL_US, link_poll, dp);
}

int
of_links_watch(struct of_dp *dp)
{
	int watched = 0;

	for (uint16_t i = 0; i < dp->n_ports; i++) {
		struct of_port *p = &dp->ports[i];

		if (!p->link_watched)
			continue;
		if (p->link_lsc) {
			int rc = rte_eth_dev_callback_register(p->port_id, RTE_ETH_EVENT_INTR_LSC, link_interrupt, dp);

			if (rc != 0) {
				of_set_error("port %s: cannot follow its link: %s", p->name, rte_strerror(-rc));
				of_links_unwatch(dp);
				return rc;
			}
		}
		watched = 1;
		/* The state at start, read after registering so that no change is missed. */
		link_refresh(dp, p, 0);
	}
	if (watched) {
		__atomic_store_n(&dp->link_polling, 1, __ATOMIC_RELEASE);
		rte_eal_alarm_set(OF_LINK_POLL_US, link_poll, dp);
	}
	return 0;
}

void
of_links_unwatch(struct of_dp *dp)
{
	__atomic_store_n(&dp->link_polling, 0, __ATOMIC_RELEASE);
	/* Waits for a running poll, which may have re-armed itself, and cancels that too. */
	rte_eal_alarm_cancel(link_poll, dp);
	for (uint16_t i = 0; i < dp->n_ports; i++)
		if (dp->ports[i].link_watched && dp->ports[i].link_lsc)
			/* -EAGAIN while the callback runs: wait it out. */
			while (rte_eth_dev_callback_unregister(dp->ports[i].port_id, RTE_ETH_EVENT_INTR_LSC,
							       link_interrupt, dp) == -EAGAIN)
				;
}

int
of_dp_link(const struct of_dp *dp, uint16_t port, struct of_link_info *out)
{
	const struct of_port *p;
	uint64_t word;

	if (port >= dp->n_ports) {
		of_set_error("no port %u", port);
		return -EINVAL;
	}
	p = &dp->ports[port];
	word = __atomic_load_n(&p->link_word, __ATOMIC_ACQUIRE);
	memset(out, 0, sizeof(*out));
	out->watched = p->link_watched;
	out->by_interrupt = p->link_lsc;
	out->up = word & 1;
	out->full_duplex = (word >> 1) & 1;
	out->speed_mbps = (uint32_t)(word >> 32);
	out->changes = __atomic_load_n(&p->link_changes, __ATOMIC_RELAXED);
	out->changed_ns = __atomic_load_n(&p->link_changed_ns, __ATOMIC_RELAXED);
	return 0;
}

int
of_dp_link_event_fd(const struct of_dp *dp)
{
	return dp->link_event_fd;
}

int
of_dp_set_link(struct of_dp *dp, uint16_t port, int up)
{
	int rc;

	if (port >= dp->n_ports || !dp->running) {
		of_set_error("no started port %u", port);
		return -EINVAL;
	}
	rc = up ? rte_eth_dev_set_link_up(dp->ports[port].port_id) : rte_eth_dev_set_link_down(dp->ports[port].port_id);
	if (rc != 0)
		of_set_error("port %s: cannot set its link %s: %s", dp->ports[port].name, up ? "up" : "down",
			     rte_strerror(-rc));
	return rc;
}
