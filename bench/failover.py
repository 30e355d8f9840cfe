"""What bench/link_failover.py and bench/bfd_failover.py measure with: sequenced guest traffic whose
injection times are kept, so the last frame that still left through a failed member dates the
moment the data plane stopped using it.

`Feeder` injects frames of N_FLOWS UDP flows into the guest port without pause, BATCH at a time,
each frame carrying its sequence number in the payload; `last_seq` reads the highest number back
from the frames captured on the failed member's wire, and `Feeder.injected_ns` says when it went in.
"""
from __future__ import annotations

import ipaddress
import struct
import threading
import time
from collections.abc import Callable, Iterable

from opte_fast.controlplane.dataplane import Dataplane
from opte_fast.tools.sample import GATEWAY_MAC, GUEST_IP4, GUEST_MAC

PAYLOAD_OFF = 70 + 14 + 20 + 8  # outer headers, inner Ethernet, IPv4, UDP
BATCH = 8
N_FLOWS = 64


def frame(seq: int, first_flow: int) -> bytes:
    """A UDP frame of flow first_flow + seq % N_FLOWS carrying seq."""
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + 8 + 8, 0, 0, 64, 17, 0, GUEST_IP4.packed,
                     ipaddress.IPv4Address("198.51.100.7").packed)
    udp = struct.pack("!HHHH", 1000 + first_flow + seq % N_FLOWS, 53, 16, 0) + struct.pack("!Q", seq)
    mac = bytes.fromhex
    return mac(GATEWAY_MAC.replace(":", "")) + mac(GUEST_MAC.replace(":", "")) + b"\x08\x00" + ip + udp


class Feeder(threading.Thread):
    """Injects a batch of sequenced frames into the guest every GAP_S, keeping injection times. Each
    round uses new flows (`first_flow`): live flows stay on the member they moved to."""

    GAP_S = 0.0002

    def __init__(self, dp: Dataplane):
        super().__init__(daemon=True)
        self.dp, self.seq, self.times, self.first_flow = dp, 0, {}, 0
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            frames = [frame(self.seq + i, self.first_flow) for i in range(BATCH)]
            self.times[self.seq // BATCH] = time.monotonic_ns()
            self.seq += self.dp.inject("guest0", frames)
            time.sleep(self.GAP_S)

    def injected_ns(self, seq: int) -> int:
        return self.times[seq // BATCH]


def last_seq(frames: Iterable[bytes]) -> int | None:
    """The highest sequence number in the Geneve frames (IPv6, UDP to 6081) among `frames`."""
    return max((struct.unpack_from("!Q", f, PAYLOAD_OFF)[0] for f in frames
                if len(f) >= PAYLOAD_OFF + 8 and f[12:14] == b"\x86\xdd" and f[20] == 17 and f[56:58] == b"\x17\xc1"),
               default=None)


def wait_for(cond: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not within {timeout_s} s")
        time.sleep(0.0002)
