# Mirrors csrc/bfd_api.h one to one.
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t

from copte_fast cimport of_dp

cdef extern from "bfd_api.h" nogil:
    enum:
        OF_BFD_MAX_SESSIONS

    struct of_bfd_peer:
        uint8_t multihop
        uint8_t peer[16]
        uint16_t uplink
        uint8_t dst_mac[6]
        uint32_t desired_min_tx_us
        uint32_t required_min_rx_us
        uint8_t detect_mult
        uint8_t geneve
        uint32_t vni
        uint8_t auth_type
        uint8_t auth_key_id
        uint8_t auth_key_len
        uint8_t auth_key[20]
    int of_dp_bfd_set(of_dp *dp, const of_bfd_peer *peers, unsigned n)

    struct of_bfd_info:
        uint8_t multihop
        uint8_t geneve
        uint32_t vni
        uint8_t peer[16]
        uint8_t local[16]
        uint16_t uplink
        uint8_t state, remote_state
        uint8_t diag, remote_diag
        uint8_t been_up
        uint8_t poll
        uint8_t detect_mult, remote_mult
        uint32_t local_disc, remote_disc
        uint32_t desired_min_tx_us, required_min_rx_us
        uint32_t remote_min_tx_us, remote_min_rx_us
        uint32_t tx_interval_us
        uint64_t detect_us
        uint64_t changed_ns
        uint64_t rx_packets, tx_packets
        uint32_t ups, downs
        uint8_t auth_type, auth_key_id
    unsigned of_dp_bfd_sessions(of_dp *dp, of_bfd_info *out, unsigned max)

    struct of_bfd_stats:
        uint64_t rx_packets
        uint64_t rx_geneve_packets
        uint64_t rx_malformed, rx_bad_checksum, rx_bad_hop_limit, rx_invalid
        uint64_t rx_auth_missing, rx_auth_unexpected, rx_auth_bad_type, rx_auth_bad_key_id, rx_auth_bad_seq
        uint64_t rx_auth_bad_digest
        uint64_t rx_no_session
        uint64_t tx_packets, tx_failed
        uint64_t state_changes
        uint64_t wakeups
        uint64_t late_max_ns
        uint64_t late_over_1ms
        uint8_t realtime
        uint8_t running
    void of_dp_bfd_stats(of_dp *dp, of_bfd_stats *out)

    int of_dp_bfd_event_fd(const of_dp *dp)
    int of_dp_bfd_port_ready(const of_dp *dp, uint16_t port)
