"""Exhaustion: an empty mbuf pool, a full TX ring, a guest slow to empty its ring, a flow table that
new flows keep full.

Each is counted under its own name, nothing else is lost, and forwarding comes back by itself when
the resource does. Ring ports make each one reachable: a TX ring that nobody drains fills up, and
its frames hold the pool's mbufs until it is drained.
"""
import time
from contextlib import contextmanager

import pytest
from scapy.all import IP, UDP, Ether, Raw, raw

from opte_fast.controlplane.dataplane import Dataplane, DataplaneOptions
from tests.support.gateway import arp_reply, arp_request
from tests.support.sled import (
    GATEWAY_MAC,
    GUEST_IP4,
    GUEST_MAC,
    UNDERLAY,
    Sled,
    default_state,
    drops,
    ring_sled,
    uplink,
)
from tests.support.wait import wait_for


def udp4(i: int) -> bytes:
    return raw(Ether(src=GUEST_MAC, dst=GATEWAY_MAC) / IP(src=str(GUEST_IP4), dst="198.51.100.7")
               / UDP(sport=1000 + i % 60000, dport=53 + i // 60000) / Raw(b"q"))


@contextmanager
def small_sled(uplink_ring: int = 4096, n_mbufs: int = 8191, guest_ring: int = 4096, **options):
    """One guest and one uplink whose TX rings hold `guest_ring` - 1 and `uplink_ring` - 1 frames, in
    a pool of n_mbufs."""
    dp = Dataplane(DataplaneOptions(underlay_addr=UNDERLAY, flow_capacity=4096, n_mbufs=n_mbufs, **options))
    try:
        dp.add_ring_port("guest0", "guest", ring_size=guest_ring)
        dp.add_ring_port(uplink(0), "uplink", ring_size=uplink_ring)
        dp.commit(default_state(1))
        dp.start([1])
        yield Sled(dp)
    finally:
        dp.close()


def test_full_tx_ring_drops_the_excess_as_tx_full_and_sends_again_once_drained(eal):
    with small_sled(uplink_ring=64) as sled:
        sled.send("guest0", [udp4(i) for i in range(100)])
        c = sled.counters()
        assert c["tx_uplink_packets"] == 63 and c["tx_full"] == 37
        assert drops(c) == {"tx_full": 37}
        # Still full: every frame of the next burst is refused, and counted.
        sled.send("guest0", [udp4(i) for i in range(10)])
        assert sled.counters()["tx_full"] == 47
        assert len(sled.recv("uplink0")) == 63
        # Drained: the same flows go out again, nothing more is dropped.
        sled.send("guest0", [udp4(i) for i in range(50)])
        c = sled.counters()
        assert c["tx_uplink_packets"] == 63 + 50 and c["tx_full"] == 47
        assert len(sled.recv("uplink0")) == 50


@pytest.mark.parametrize("vm_takes_per_tx, retries, sent, tx_full, tries_again, left_in_ring", [
    (8, 8, 100, 0, 3, 52),   # the third burst fits 15, then 8, 8 and 1 as the VM takes 8 before each try
    (8, 0, 83, 17, 0, 59),   # without retries the 17 that did not fit at once are lost
    (0, 8, 63, 37, 1, 63),   # a stalled VM: one try that takes nothing, and no wait at all once the ring is full
], ids=["vm-keeps-up-with-retries", "vm-keeps-up-no-retries", "vm-stalled"])
def test_a_burst_a_guest_ring_took_part_of_is_tried_again_while_the_vm_takes_some(
        eal, vm_takes_per_tx, retries, sent, tx_full, tries_again, left_in_ring):
    # The gateway answers 100 ARP requests, in four bursts of 32, 32, 32 and 4 answers, to a guest ring of
    # 63 slots that the VM empties by vm_takes_per_tx frames just before each transmit.
    with small_sled(guest_ring=64, guest_tx_retries=retries) as sled:
        if vm_takes_per_tx:
            sled.dp.ring_take_on_tx("guest0", vm_takes_per_tx)
        for burst in (32, 32, 32, 4):
            sled.send("guest0", [arp_request("10.0.0.1")] * burst)
        c = sled.counters()
        assert c["gateway_arp_replies"] == 100
        assert (c["tx_guest_packets"], c["tx_full"], c["tx_guest_retries"]) == (sent, tx_full, tries_again)
        assert drops(c) == ({"tx_full": tx_full} if tx_full else {})
        left = sled.recv("guest0")
        assert len(left) == left_in_ring and set(left) == {arp_reply("10.0.0.1")}


def test_empty_pool_refuses_frames_as_rx_no_mbuf_and_takes_them_again_once_mbufs_return(eal):
    # The uplink's TX ring holds more frames than the pool has mbufs: undrained, it takes them all.
    with small_sled(uplink_ring=8192, n_mbufs=1023) as sled:
        taken = refused = 0
        for start in range(0, 2048, 64):
            n = sled.dp.inject("guest0", [udp4(start + i) for i in range(64)])
            taken += n
            refused += 64 - n
        wait_for(lambda: sled.counters()["tx_uplink_packets"] == taken)
        c = sled.counters()
        assert taken == 1023 and refused == 2048 - taken  # every mbuf of the pool sits in the TX ring
        assert drops(c) == {"rx_no_mbuf": refused}
        # The frames leave the ring, their mbufs return to the pool: frames are taken again.
        assert len(sled.recv("uplink0")) == taken
        sled.send("guest0", [udp4(i) for i in range(500)])
        c = sled.counters()
        assert c["tx_uplink_packets"] == taken + 500
        assert drops(c) == {"rx_no_mbuf": refused}
        assert len(sled.recv("uplink0")) == 500


def test_new_flows_faster_than_expiry_keep_the_table_full_without_losing_a_frame(eal):
    idle_ms, per_round, capacity = 200, 200, 64
    with ring_sled(n_uplinks=2, flow_capacity=capacity, udp_idle_ms=idle_ms) as sled:
        sent = rounds = 0
        t_end = time.monotonic() + 4 * idle_ms / 1000
        # Each round brings more new flows than the table holds; rounds go on over several idle
        # timeouts, so expiry frees room all along and new flows take it at once.
        while rounds < 3 or time.monotonic() < t_end:
            full_before = sled.counters()["flow_table_full"]
            sled.send("guest0", [udp4(sent + i) for i in range(per_round)])
            sent += per_round
            rounds += 1
            # Every round fills the table: the frames past its room go statelessly. (The count read
            # after the round may be one short: the sweep can expire a flow between burst and read.)
            assert sled.counters()["flow_table_full"] > full_before
            assert sled.dp.flow_count() <= capacity
        c = sled.counters()
        out = sum(len(sled.recv(uplink(i))) for i in range(2))
        assert out == sent == c["tx_uplink_packets"]
        assert drops(c) == {}
        assert c["flows_created"] + c["flow_table_full"] == sent
        assert c["flow_table_full"] >= rounds * (per_round - capacity)
        assert c["flows_expired"] >= capacity  # expiry went on under the pressure
        # New flows stop: the table empties by expiry alone and takes new flows again.
        wait_for(lambda: sled.dp.flow_count() == 0)
        full_before = c["flow_table_full"]
        sled.send("guest0", [udp4(sent + i) for i in range(capacity)])
        c = sled.counters()
        assert sled.dp.flow_count() == capacity and c["flow_table_full"] == full_before
        assert c["flows_expired"] == c["flows_created"] - capacity
