# Mirrors the public headers of csrc/ one to one, a block per header: the shared types and
# errors, opte_fast.h (the life cycle), then the other parts of the interface it includes.
from libc.stdint cimport int32_t, uint8_t, uint16_t, uint32_t, uint64_t

cdef extern from "dp_types.h" nogil:
    enum:
        OF_MAX_PORTS
        OF_MAX_TEPS
        OF_MAX_NEXTHOPS
        OF_MAX_GROUPS
        OF_MAX_BURST
        OF_HASH_KEY_LEN
    uint32_t OF_NEVER

    enum of_port_role:
        OF_ROLE_GUEST
        OF_ROLE_UPLINK
        OF_ROLE_EXCEPTION

    struct of_dp_config:
        uint32_t n_mbufs
        uint32_t mbuf_cache
        uint16_t mbuf_data_room
        uint16_t burst
        uint16_t rx_desc
        uint16_t tx_desc
        uint16_t guest_tx_retries
        uint32_t flow_capacity
        uint32_t n_buckets
        uint32_t tcp_idle_ms
        uint32_t tcp_closed_ms
        uint32_t udp_idle_ms
        uint32_t icmp_idle_ms
        uint32_t rebalance_idle_ms
        uint8_t underlay_addr[16]
        uint8_t hash_key[OF_HASH_KEY_LEN]
        uint8_t hop_limit
        uint8_t flow_label
        uint8_t udp_checksum
        uint8_t verify_udp_checksum
        uint8_t strict_underlay
        uint16_t udp_sport_min
        uint16_t udp_sport_max
        uint16_t underlay_mtu
        uint32_t prefix_capacity

    enum:
        OF_GUEST_MAX_DNS
        OF_GUEST_MAX_PREFIXES
        OF_GUEST_DOMAIN_LEN
        OF_GUEST_MTU_MIN
        OF_GUEST_MTU_MAX
        OF_GUEST_MTU_DEFAULT

    struct of_prefix:
        uint8_t addr[16]
        uint8_t depth

    struct of_guest_net:
        uint8_t has_ipv4
        uint8_t has_ipv6
        uint8_t ipv4[4]
        uint8_t ipv4_prefix_len
        uint8_t ipv4_gateway[4]
        uint8_t ipv6[16]
        uint8_t n_dns4
        uint8_t n_dns6
        uint8_t dns4[4][4]
        uint8_t dns6[4][16]
        char domain[254]
        uint32_t lease_s
        uint16_t mtu
        uint8_t ra_managed
        uint8_t ra_other
        uint16_t ra_router_lifetime_s
        uint8_t has_ra_prefix
        of_prefix ra_prefix
        uint8_t n_allowed
        of_prefix allowed[8]

    struct of_path_stats:
        uint64_t flows
        uint64_t packets
        uint64_t bytes

    struct of_dp:
        pass
    struct of_builder:
        pass

cdef extern from "error.h" nogil:
    const char *of_last_error()

cdef extern from "opte_fast.h" nogil:
    int of_eal_init(int argc, char **argv)
    int of_eal_cleanup()
    uint64_t of_tsc_hz()

    of_dp *of_dp_create(const of_dp_config *cfg)
    void of_dp_destroy(of_dp *dp)

    int of_dp_start(of_dp *dp, const unsigned *lcores, unsigned n_lcores)
    int of_dp_stop(of_dp *dp)
    void of_dp_quiesce(of_dp *dp)

cdef extern from "port.h" nogil:
    int of_dp_add_port(of_dp *dp, const char *devargs, of_port_role role, const char *name)
    int of_dp_add_ring_port(of_dp *dp, const char *name, of_port_role role, uint32_t ring_size,
                            uint16_t n_rx_queues)
    int of_dp_set_exception(of_dp *dp, uint16_t uplink, uint16_t exception_port)
    uint16_t of_dp_n_ports(const of_dp *dp)

cdef extern from "ring_io.h" nogil:
    int of_dp_ring_inject(of_dp *dp, uint16_t port, uint16_t queue, const uint8_t *data, const uint32_t *lens,
                          unsigned n)
    int of_dp_ring_inject_chained(of_dp *dp, uint16_t port, uint16_t queue, const uint8_t *data,
                                  const uint32_t *lens, unsigned n, uint32_t seg_bytes, uint16_t tso_segsz,
                                  int csum_partial)
    int of_dp_ring_take_on_tx(of_dp *dp, uint16_t port, uint16_t per_tx)
    int of_dp_ring_collect(of_dp *dp, uint16_t port, uint8_t *buf, uint32_t room, uint32_t *lens, unsigned max)

cdef extern from "builder.h" nogil:
    of_builder *of_builder_new(of_dp *dp)
    int of_builder_guest(of_builder *b, uint16_t port, uint32_t vni, const uint8_t *mac, const uint8_t *gw_mac)
    int of_builder_v2p(of_builder *b, uint32_t vni, const uint8_t *ip, const uint8_t *underlay, const uint8_t *mac)
    int of_builder_tep(of_builder *b, uint16_t id, const uint8_t *addr, uint32_t vni, int up)
    int of_builder_tep_set(of_builder *b, uint16_t set, const uint16_t *teps, uint16_t n)
    int of_builder_v2b(of_builder *b, const uint8_t *prefix, uint8_t depth, uint16_t set)
    int of_builder_nexthop(of_builder *b, uint16_t id, uint16_t uplink, const uint8_t *mac, int up)
    int of_builder_nh_group(of_builder *b, uint16_t group, const uint16_t *nhs, uint16_t n)
    int of_builder_route(of_builder *b, const uint8_t *prefix, uint8_t depth, uint16_t group)
    int of_builder_tep_set_restore(of_builder *b, uint16_t set, const uint16_t *buckets, uint32_t n)
    int of_builder_nh_group_restore(of_builder *b, uint16_t group, const uint16_t *buckets, uint32_t n)
    int of_builder_guest_net(of_builder *b, uint16_t port, const of_guest_net *net)
    int of_builder_commit(of_builder *b)
    void of_builder_free(of_builder *b)

cdef extern from "inspect.h" nogil:
    unsigned of_counter_count()
    const char *of_counter_name(unsigned i)
    const char *of_counter_description(unsigned i)
    int of_counter_drop(unsigned i)
    void of_dp_counters(const of_dp *dp, uint64_t *out)

    struct of_port_stats:
        char name[32]
        char ethdev[64]
        uint16_t port_id
        uint8_t role
        uint8_t mac[6]
        uint64_t ipackets, opackets, ibytes, obytes, imissed, ierrors, oerrors
    int of_dp_port_stats(const of_dp *dp, uint16_t port, of_port_stats *out)

    void of_dp_path_stats(const of_dp *dp, of_path_stats *teps, of_path_stats *nhs)

    struct of_flow_info:
        uint32_t vni
        uint8_t proto
        uint8_t src[16]
        uint8_t dst[16]
        uint16_t src_port, dst_port
        uint16_t tep, nexthop, uplink
        uint16_t udp_sport
        uint32_t hash
        uint32_t lcore
        uint64_t packets, bytes
        uint64_t idle_ms
    uint64_t OF_FLOWS_DONE
    unsigned of_dp_flows(const of_dp *dp, uint64_t *cursor, of_flow_info *out, unsigned max)
    uint64_t of_dp_flow_count(const of_dp *dp)

    int of_dp_buckets(of_dp *dp, int kind, uint16_t group, uint16_t *out, uint32_t max)
    uint64_t of_dp_table_swaps(const of_dp *dp)

    struct of_worker_stats:
        uint32_t lcore
        uint32_t worker
        uint64_t polls
        uint64_t busy_polls
        uint64_t rx_packets
        uint64_t flows
    unsigned of_dp_workers(const of_dp *dp, of_worker_stats *out, unsigned max)

cdef extern from "link.h" nogil:
    struct of_link_info:
        uint8_t watched
        uint8_t up
        uint8_t by_interrupt
        uint8_t full_duplex
        uint32_t speed_mbps
        uint64_t changes
        uint64_t changed_ns
    int of_dp_link(const of_dp *dp, uint16_t port, of_link_info *out)
    int of_dp_link_event_fd(const of_dp *dp)
    int of_dp_set_link(of_dp *dp, uint16_t port, int up)


cdef extern from "memory.h" nogil:
    struct of_memory_info:
        uint64_t heap_bytes
        uint64_t free_bytes
        uint64_t mbuf_bytes
        uint64_t flow_bytes
        uint64_t prefix_bytes
        uint64_t snapshot_bytes
        uint64_t v2p_bytes_per_1024
        uint32_t flow_capacity
        uint32_t prefix_capacity
        uint32_t v2p_fit
    int of_dp_memory(const of_dp *dp, of_memory_info *out)


cdef extern from "telemetry.h" nogil:
    int of_dp_name_member(of_dp *dp, int kind, uint16_t id, const char *prefix, const char *gateway)


cdef extern from "capture.h" nogil:
    int of_capture_init()
    void of_capture_uninit()


cdef extern from "trace.h" nogil:
    enum:
        OF_TRACE_MAX
    uint32_t OF_TRACE_COUNT_MAX
    uint32_t OF_TRACE_NONE
    enum of_trace_dir:
        OF_TRACE_ANY
        OF_TRACE_OUT
        OF_TRACE_IN
    struct of_trace_match:
        uint8_t src[16]
        uint8_t dst[16]
        uint8_t has_src, has_dst
        uint8_t proto
        uint8_t dir
        uint16_t dst_port
        uint16_t pad
    struct of_trace_record:
        uint64_t tsc
        uint32_t lcore
        uint32_t hash
        uint32_t vni
        uint8_t proto
        uint8_t flow
        uint8_t table
        uint8_t why
        uint8_t src[16]
        uint8_t dst[16]
        uint16_t src_port, dst_port
        int32_t drop
        uint32_t tep_set, tep_bucket
        uint32_t nh_group, nh_bucket
        uint16_t bucket_tep
        uint16_t bucket_nexthop
        uint16_t tep, nexthop, uplink
        uint16_t from_tep, from_nexthop
        uint16_t guest
        uint8_t underlay[16]
        uint8_t inner_dst_mac[6]
        uint8_t dir
        uint8_t pad
    int of_dp_trace_arm(of_dp *dp, const of_trace_match *match, uint32_t count)
    void of_dp_trace_disarm(of_dp *dp)
    int of_dp_trace_read(of_dp *dp, of_trace_record *out, unsigned max, int *armed)
    uint64_t of_dp_trace_lost(const of_dp *dp)
