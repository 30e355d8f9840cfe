/*
 * Ports: probe from devargs (any PMD, virtual or PCI) or build from rings,
 * configure one RX queue per polling worker (RSS when there are several)
 * and one TX queue per worker, start, stop, close. An uplink's or guest's
 * link is followed (link.c): by LSC interrupt where the PMD offers one.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <netinet/in.h>

#include <rte_bus.h>
#include <rte_dev.h>
#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_ip.h>
#include <rte_malloc.h>
#include <rte_ring.h>
#include <rte_udp.h>

#include "dp.h"
#include "error.h"
#include "port.h"

static struct of_port *
port_slot(struct of_dp *dp, const char *name, enum of_port_role role)
{
	struct of_port *p;

	if (dp->n_ports == OF_MAX_PORTS) {
		of_set_error("too many ports (at most %d)", OF_MAX_PORTS);
		return NULL;
	}
	if (role > OF_ROLE_EXCEPTION) {
		of_set_error("unknown port role %d", role);
		return NULL;
	}
	for (uint16_t i = 0; i < dp->n_ports; i++)
		if (strcmp(dp->ports[i].name, name) == 0) {
			of_set_error("a port named %s exists already", name);
			return NULL;
		}
	p = &dp->ports[dp->n_ports];
	memset(p, 0, sizeof(*p));
	snprintf(p->name, sizeof(p->name), "%s", name);
	p->role = (uint8_t)role;
	p->exception = OF_NO_ID;
	p->uplink = OF_NO_ID;
	return p;
}

int
of_dp_add_port(struct of_dp *dp, const char *devargs, enum of_port_role role, const char *name)
{
	char devname[RTE_DEV_NAME_MAX_LEN];
	struct of_port *p = port_slot(dp, name, role);
	size_t len = strcspn(devargs, ",");
	uint16_t port_id;
	int rc;

	if (p == NULL)
		return -EINVAL;
	if (len == 0 || len >= sizeof(devname)) {
		of_set_error("port %s: devargs '%s' do not start with a device name", name, devargs);
		return -EINVAL;
	}
	memcpy(devname, devargs, len);
	devname[len] = '\0';
	rc = rte_dev_probe(devargs);
	if (rc < 0) {
		of_set_error("port %s: DPDK cannot probe '%s': %s", name, devargs, rte_strerror(-rc));
		return rc;
	}
	if (rte_eth_dev_get_port_by_name(devname, &port_id) != 0) {
		of_set_error("port %s: '%s' is not an ethernet device", name, devname);
		return -ENODEV;
	}
	p->port_id = port_id;
	p->is_vdev = 1;
	/* Known before start, so an uplink's kernel tap can be given the uplink's address. */
	rte_eth_macaddr_get(port_id, &p->mac);
	return dp->n_ports++;
}

int
of_dp_add_ring_port(struct of_dp *dp, const char *name, enum of_port_role role, uint32_t ring_size,
		    uint16_t n_rx_queues)
{
	char ring_name[RTE_RING_NAMESIZE];
	char devname[RTE_DEV_NAME_MAX_LEN];
	struct of_port *p = port_slot(dp, name, role);
	struct rte_ring *tx[RTE_PMD_RING_MAX_TX_RINGS];
	int port_id;

	if (p == NULL)
		return -EINVAL;
	if (n_rx_queues == 0 || n_rx_queues > RTE_PMD_RING_MAX_RX_RINGS) {
		of_set_error("port %s: a ring port has 1 to %d RX queues", name, RTE_PMD_RING_MAX_RX_RINGS);
		return -EINVAL;
	}
	for (uint16_t q = 0; q < n_rx_queues; q++) {
		snprintf(ring_name, sizeof(ring_name), "of%u_%u_rx%u", dp->instance, dp->n_ports, q);
		p->ring_rx[q] = rte_ring_create(ring_name, ring_size, SOCKET_ID_ANY, RING_F_SP_ENQ | RING_F_SC_DEQ);
		if (p->ring_rx[q] == NULL)
			break;
		p->n_ring_rx++;
	}
	/* Every worker sends on its own TX queue: all of them lead to one multi-producer ring. */
	snprintf(ring_name, sizeof(ring_name), "of%u_%u_tx", dp->instance, dp->n_ports);
	p->ring_tx = rte_ring_create(ring_name, ring_size, SOCKET_ID_ANY, RING_F_SC_DEQ);
	if (p->n_ring_rx < n_rx_queues || p->ring_tx == NULL) {
		of_set_error("port %s: cannot create rings of %u: %s", name, ring_size, rte_strerror(rte_errno));
		goto fail;
	}
	for (unsigned q = 0; q < RTE_PMD_RING_MAX_TX_RINGS; q++)
		tx[q] = p->ring_tx;
	/* The ring PMD names the device net_ring_<devname>, which must fit RTE_RING_NAMESIZE (28
	 * characters): by instance and index, not by the port's name, which can be long. */
	snprintf(devname, sizeof(devname), "of%u_%u", dp->instance, dp->n_ports);
	port_id = rte_eth_from_rings(devname, p->ring_rx, n_rx_queues, tx, RTE_PMD_RING_MAX_TX_RINGS,
				     (unsigned)SOCKET_ID_ANY);
	if (port_id < 0) {
		of_set_error("port %s: cannot create a ring port: %s", name, rte_strerror(rte_errno));
		goto fail;
	}
	p->port_id = (uint16_t)port_id;
	p->is_vdev = 1;
	/* Rings have no address of their own: a locally administered one, unique per port. */
	p->mac = (struct rte_ether_addr){ { 0x02, 0x0f, 0x00, (uint8_t)(dp->instance >> 8),
					    (uint8_t)dp->instance, (uint8_t)dp->n_ports } };
	return dp->n_ports++;
fail:
	for (uint16_t q = 0; q < p->n_ring_rx; q++)
		rte_ring_free(p->ring_rx[q]);
	rte_ring_free(p->ring_tx);
	p->n_ring_rx = 0;
	return -ENOMEM;
}

int
of_dp_set_exception(struct of_dp *dp, uint16_t uplink, uint16_t exception_port)
{
	if (uplink >= dp->n_ports || dp->ports[uplink].role != OF_ROLE_UPLINK ||
	    exception_port >= dp->n_ports || dp->ports[exception_port].role != OF_ROLE_EXCEPTION) {
		of_set_error("an exception path joins an uplink to an exception port");
		return -EINVAL;
	}
	/* One tap per uplink and one uplink per tap: the kernel's frames leave by exactly one uplink. */
	if ((dp->ports[uplink].exception != OF_NO_ID && dp->ports[uplink].exception != exception_port) ||
	    (dp->ports[exception_port].uplink != OF_NO_ID && dp->ports[exception_port].uplink != uplink)) {
		of_set_error("uplink %s or exception port %s is joined already", dp->ports[uplink].name,
			     dp->ports[exception_port].name);
		return -EBUSY;
	}
	dp->ports[uplink].exception = exception_port;
	dp->ports[exception_port].uplink = uplink;
	return 0;
}

uint16_t
of_dp_n_ports(const struct of_dp *dp)
{
	return dp->n_ports;
}

static const uint8_t boundary_services_mac[RTE_ETHER_ADDR_LEN] = OF_BOUNDARY_MAC_INIT;

/* The outer headers' part that is the port's and the sled's, not a flow's (lengths, checksum,
 * flow label, destinations, source port and VNI left zero for the packet path to write), then
 * the inner destination MAC of boundary services. */
static void
build_outer_template(const struct of_dp *dp, struct of_port *p)
{
	struct rte_ether_hdr *eth = (struct rte_ether_hdr *)p->outer;
	struct rte_ipv6_hdr *ip6 = (struct rte_ipv6_hdr *)(eth + 1);
	struct rte_udp_hdr *udp = (struct rte_udp_hdr *)(ip6 + 1);
	struct of_geneve_hdr *gnv = (struct of_geneve_hdr *)(udp + 1);

	memset(p->outer, 0, sizeof(p->outer));
	eth->src_addr = p->mac;
	eth->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV6);
	ip6->vtc_flow = rte_cpu_to_be_32(6u << 28);
	ip6->proto = IPPROTO_UDP;
	ip6->hop_limits = dp->cfg.hop_limit;
	memcpy(&ip6->src_addr, dp->cfg.underlay_addr, 16);
	udp->dst_port = rte_cpu_to_be_16(OF_GENEVE_PORT);
	gnv->protocol = rte_cpu_to_be_16(OF_GENEVE_PROTO_ETHER);
	memcpy(p->outer + OF_OUTER_HDR_LEN, boundary_services_mac, RTE_ETHER_ADDR_LEN);
}

/*
 * Frames as long as a port's role needs (guests: OF_GUEST_MTU_MAX, the guest's own MTU being
 * enforced per frame; uplinks and their taps: the underlay MTU), in chained mbufs where longer
 * than one (chain.h): the MTU, as far as the PMD goes, scatter RX where it has it (net_tap
 * receives long frames only so, whatever MTU it reports), multi-segment TX where it has it (a
 * NIC's simple TX path would send a chain's first segment only).
 */
static void
port_frame_conf(const struct of_dp *dp, const struct of_port *p, const struct rte_eth_dev_info *info,
		struct rte_eth_conf *conf)
{
	uint32_t want = p->role == OF_ROLE_GUEST ? OF_GUEST_MTU_MAX : dp->cfg.underlay_mtu;
	uint32_t overhead = info->max_mtu != UINT16_MAX && info->max_rx_pktlen > info->max_mtu ?
			    info->max_rx_pktlen - info->max_mtu : RTE_ETHER_HDR_LEN + RTE_ETHER_CRC_LEN;
	uint32_t most = RTE_MIN((uint32_t)info->max_mtu, info->max_rx_pktlen - overhead);

	if (want <= most)
		conf->rxmode.mtu = (uint16_t)want;
	else if (most > RTE_ETHER_MTU)
		conf->rxmode.mtu = (uint16_t)most;
	if (want + overhead > (uint32_t)dp->cfg.mbuf_data_room - RTE_PKTMBUF_HEADROOM)
		conf->rxmode.offloads |= info->rx_offload_capa & RTE_ETH_RX_OFFLOAD_SCATTER;
	conf->txmode.offloads |= info->tx_offload_capa & RTE_ETH_TX_OFFLOAD_MULTI_SEGS;
	/* A virtio-net guest's partial checksums (gso.h): net_vhost would complete them itself, once
	 * over a whole TSO frame, unless told its port takes them. */
	if (p->role == OF_ROLE_GUEST && strcmp(info->driver_name, "net_vhost") == 0)
		conf->rxmode.offloads |= info->rx_offload_capa & (RTE_ETH_RX_OFFLOAD_TCP_CKSUM |
								 RTE_ETH_RX_OFFLOAD_UDP_CKSUM);
}

static int
port_start(struct of_dp *dp, struct of_port *p)
{
	struct rte_eth_conf conf = { 0 };
	struct rte_eth_dev_info info;
	uint16_t n_rxd = dp->cfg.rx_desc, n_txd = dp->cfg.tx_desc;
	uint16_t n_txq = (uint16_t)dp->n_workers;
	int rc;

	rc = rte_eth_dev_info_get(p->port_id, &info);
	if (rc != 0) {
		of_set_error("port %s: no device info: %s", p->name, rte_strerror(-rc));
		return rc;
	}
	if (info.max_tx_queues < n_txq) {
		of_set_error("port %s has %u TX queues; use at most that many worker lcores",
			     p->name, info.max_tx_queues);
		return -EINVAL;
	}
	/* One more for the BFD thread on an uplink whose PMD has it (bfd_io.c): no queue shared with a worker.
	 * net_tap refuses fewer RX than TX queues, and an RX queue nobody polls would strand the frames the
	 * kernel spreads onto it: there worker 0 sends BFD's frames. */
	p->bfd_txq = p->role == OF_ROLE_UPLINK && info.max_tx_queues > n_txq && strcmp(info.driver_name, "net_tap") != 0;
	n_txq += p->bfd_txq;
	p->link_watched = p->role != OF_ROLE_EXCEPTION;
	p->link_lsc = p->link_watched && info.dev_flags != NULL && (*info.dev_flags & RTE_ETH_DEV_INTR_LSC);
	p->link_word = 0;
	p->link_changes = 0;
	p->link_changed_ns = 0;
	conf.intr_conf.lsc = p->link_lsc;
	p->n_rxq = (uint16_t)RTE_MIN((unsigned)info.max_rx_queues, dp->n_workers);
	if (p->n_rxq > 1) {
		conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
		conf.rx_adv_conf.rss_conf.rss_hf = (RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP | RTE_ETH_RSS_UDP) &
						   info.flow_type_rss_offloads;
	}
	port_frame_conf(dp, p, &info, &conf);
	rc = rte_eth_dev_configure(p->port_id, p->n_rxq, n_txq, &conf);
	if (rc == 0)
		rc = rte_eth_dev_adjust_nb_rx_tx_desc(p->port_id, &n_rxd, &n_txd);
	for (uint16_t q = 0; rc == 0 && q < p->n_rxq; q++)
		rc = rte_eth_rx_queue_setup(p->port_id, q, n_rxd, rte_eth_dev_socket_id(p->port_id), NULL, dp->pool);
	for (uint16_t q = 0; rc == 0 && q < n_txq; q++)
		rc = rte_eth_tx_queue_setup(p->port_id, q, n_txd, rte_eth_dev_socket_id(p->port_id), NULL);
	if (rc == 0)
		rc = rte_eth_dev_start(p->port_id);
	if (rc != 0) {
		of_set_error("port %s: cannot start: %s", p->name, rte_strerror(-rc));
		return rc;
	}
	/* Virtual uplinks see frames for the switch's idea of our MAC; take them all. */
	rte_eth_promiscuous_enable(p->port_id);
	if (p->ring_tx == NULL)
		rte_eth_macaddr_get(p->port_id, &p->mac);
	build_outer_template(dp, p);
	return 0;
}

int
of_ports_start(struct of_dp *dp)
{
	/* A tap joined to no uplink would have its frames sent to port OF_NO_ID. */
	for (uint16_t i = 0; i < dp->n_ports; i++)
		if (dp->ports[i].role == OF_ROLE_EXCEPTION && dp->ports[i].uplink == OF_NO_ID) {
			of_set_error("exception port %s is joined to no uplink (set_exception)", dp->ports[i].name);
			return -EINVAL;
		}
	for (uint16_t i = 0; i < dp->n_ports; i++) {
		int rc = port_start(dp, &dp->ports[i]);

		if (rc != 0) {
			while (i-- > 0)
				rte_eth_dev_stop(dp->ports[i].port_id);
			return rc;
		}
	}
	return 0;
}

void
of_ports_stop(struct of_dp *dp)
{
	for (uint16_t i = 0; i < dp->n_ports; i++)
		rte_eth_dev_stop(dp->ports[i].port_id);
}

void
of_ports_close(struct of_dp *dp)
{
	for (uint16_t i = 0; i < dp->n_ports; i++) {
		struct of_port *p = &dp->ports[i];
		struct rte_eth_dev_info info;
		struct rte_device *dev = NULL;

		if (rte_eth_dev_info_get(p->port_id, &info) == 0)
			dev = info.device;
		/* The workers are stopped: nothing runs a callback any more. */
		if (p->ring_take != NULL) {
			rte_eth_remove_tx_callback(p->port_id, 0, p->ring_take);
			rte_free((void *)(uintptr_t)p->ring_take);
			p->ring_take = NULL;
		}
		rte_eth_dev_close(p->port_id);
		/* Removing the device flushes pcap files and frees its name for reuse. */
		if (p->is_vdev && dev != NULL)
			rte_dev_remove(dev);
		for (uint16_t q = 0; q < p->n_ring_rx; q++)
			rte_ring_free(p->ring_rx[q]);
		rte_ring_free(p->ring_tx);
	}
	dp->n_ports = 0;
}
