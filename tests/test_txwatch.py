"""The failover benches' transmit watch (csrc/bench/txwatch.c, `TxWatch`): how many Geneve frames a port
was handed, and when the last of them was, on the clock of `time.monotonic_ns`."""
import time

import pytest

from opte_fast.tools.bench_traffic import Traffic, TxWatch
from tests.support.sled import ring_sled


def test_watch_counts_the_frames_a_port_sent_and_stamps_the_last(eal):
    frames = [Traffic("outbound", 64, 256).frame(i) for i in range(256)]
    with ring_sled(n_uplinks=2) as sled:
        ethdev = next(p["ethdev"] for p in sled.dp.ports() if p["name"] == "uplink0")
        watch = TxWatch(ethdev)
        try:
            assert (watch.frames(), watch.last_ns()) == (0, 0)
            t0 = time.monotonic_ns()
            sled.send("guest0", frames)
            t1 = time.monotonic_ns()
            sent = sled.drain("uplink0")
            assert 0 < len(sent) < len(frames)      # the flows spread over both uplinks; only uplink0's count
            assert watch.frames() == len(sent)
            assert t0 < watch.last_ns() < t1
            with pytest.raises(RuntimeError, match="Device or resource busy"):
                TxWatch(ethdev)                      # one port at a time
        finally:
            watch.close()


def test_watch_names_a_device_it_cannot_find(eal):
    with pytest.raises(RuntimeError, match="cannot watch net_nowhere's transmit"):
        TxWatch("net_nowhere")
