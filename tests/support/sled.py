"""A sled on ring ports: the real data plane, fed and drained from the test."""
from __future__ import annotations

import ipaddress
import time
from contextlib import contextmanager
from dataclasses import replace

from opte_fast.dataplane import Dataplane, DataplaneOptions
from opte_fast.state import V2B, DesiredState, GuestPort, Nexthop, Route, Tep, Underlay

UNDERLAY = ipaddress.IPv6Address("fd00:0:f7:101::1")
GUEST_MAC = "02:00:00:00:00:01"
GUEST_IP4 = ipaddress.IPv4Address("10.0.0.2")
GUEST_IP6 = ipaddress.IPv6Address("fd77::2")
GATEWAY_MAC = "a8:40:25:ff:00:01"
GUEST_VNI = 7
TEP = ipaddress.IPv6Address("fd00:99::1")
SWITCH_MACS = ["02:aa:00:00:00:01", "02:aa:00:00:00:02", "02:aa:00:00:00:03", "02:aa:00:00:00:04"]


def gateway(i: int) -> ipaddress.IPv6Address:
    return ipaddress.IPv6Address(f"fe80::{i + 1}")


def uplink(i: int) -> str:
    return f"uplink{i}"


def default_state(n_uplinks: int = 2, teps: tuple[ipaddress.IPv6Address, ...] = (TEP,)) -> DesiredState:
    """Guest 10.0.0.2 / fd77::2 in VNI 7; everything outside the VPC to boundary services;
    the TEP prefix fd00:99::/64 reached over every uplink (anycast mode)."""
    return DesiredState(
        underlay=Underlay(UNDERLAY),
        guests=(GuestPort("guest0", GUEST_VNI, GUEST_MAC, GATEWAY_MAC, GUEST_IP4, GUEST_IP6),),
        v2b=(V2B(ipaddress.ip_network("0.0.0.0/0"), tuple(Tep(t) for t in teps)),
             V2B(ipaddress.ip_network("::/0"), tuple(Tep(t) for t in teps))),
        routes=(Route(ipaddress.ip_network("fd00:99::/64"),
                      tuple(Nexthop(uplink(i), gateway(i), SWITCH_MACS[i]) for i in range(n_uplinks))),),
    )


class Sled:
    def __init__(self, dp: Dataplane):
        self.dp = dp

    def counters(self) -> dict[str, int]:
        return self.dp.counters()

    def send(self, port: str, frames: list[bytes], timeout_s: float = 5.0) -> None:
        """Inject frames and return once the workers have received and finished them."""
        before = self._received()
        assert self.dp.inject(port, frames) == len(frames), "ring full"
        deadline = time.monotonic() + timeout_s
        while self._received() < before + len(frames):
            assert time.monotonic() < deadline, f"data plane took {len(frames)} frames but processed {self._received() - before}"
            time.sleep(0.001)
        self.dp.quiesce()

    def recv(self, port: str) -> list[bytes]:
        return self.dp.collect(port)

    def _received(self) -> int:
        c = self.dp.counters()
        return c["rx_guest_packets"] + c["rx_uplink_packets"] + c["rx_exception_packets"]


@contextmanager
def ring_sled(state: DesiredState | None = None, n_uplinks: int = 2, **options):
    """A started data plane with ring ports guest0, uplink0..n-1, tables from `state`."""
    state = state or default_state(n_uplinks)
    opts = DataplaneOptions(underlay_addr=state.underlay.addr, flow_capacity=options.pop("flow_capacity", 65536),
                            n_mbufs=8191, **options)
    dp = Dataplane(opts)
    try:
        dp.add_ring_port("guest0", "guest")
        for i in range(n_uplinks):
            dp.add_ring_port(uplink(i), "uplink")
        dp.commit(state)
        dp.start([1])
        yield Sled(dp)
    finally:
        dp.close()


__all__ = ["Sled", "ring_sled", "default_state", "replace", "UNDERLAY", "GUEST_MAC", "GUEST_IP4", "GUEST_IP6",
           "GATEWAY_MAC", "GUEST_VNI", "TEP", "SWITCH_MACS", "gateway", "uplink"]
