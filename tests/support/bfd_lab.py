"""Two switches that speak BFD: the data plane on two net_tap uplinks, each moved into a switch
namespace whose kernel side has the switch's gateway address and runs FRR's bfdd (frr.py) with a
single-hop peer at the sled's link-local address, and `Bfd` in front of the data plane as
`opte-fast run --bfd on` has it. tests/test_bfd.py and bench/bfd_failover.py fail a switch in it.
"""
from __future__ import annotations

import contextlib
import dataclasses
import ipaddress
import secrets
from collections.abc import Iterator
from typing import TextIO

from opte_fast.controlplane.bfd import Bfd, BfdConfig, BfdSettings
from opte_fast.controlplane.dataplane import Dataplane, DataplaneOptions
from opte_fast.controlplane.state import mac_bytes
from opte_fast.tools.sample import anycast_state, switch_gateway, switch_mac, uplink_name

from .frr import Bfdd, peer_config
from .netns import Netns, namespace, run
from .tap import tap_devargs

# With the peer played by a test (or on rings): 10 ms x 3.
FAST = BfdSettings("on", desired_min_tx_ms=10, required_min_rx_ms=10, detect_multiplier=3)
# Against bfdd: 100 ms x 3. The worker that receives and sends BFD's frames shares two CPUs with every other
# suite on this machine (load averages of 10 to 30 seen, and sessions at 50 ms x 3 failing together when
# the worker went unscheduled), and a starved worker is a path that does not forward, which BFD reports
# as such; bench/bfd_failover.py measures 10 ms x 3 and 50 ms x 3.
LAB = BfdSettings("on", desired_min_tx_ms=100, required_min_rx_ms=100, detect_multiplier=3)


def link_local(mac: str) -> ipaddress.IPv6Address:
    """fe80::/64 with the modified EUI-64 of `mac`: where single-hop BFD speaks from on that port."""
    b = mac_bytes(mac)
    return ipaddress.IPv6Address(b"\xfe\x80" + b"\0" * 6 + bytes([b[0] ^ 2]) + b[1:3] + b"\xff\xfe" + b[3:])


def nexthop_up(dp: Dataplane, uplink: str) -> bool:
    """Whether the data plane has the nexthop through `uplink` up."""
    return next(n for n in dp.paths()["nexthops"] if n["uplink"] == uplink)["up"]


def tep_up(dp: Dataplane, addr: str) -> bool:
    """Whether the data plane has TEP `addr` up (in every V2B entry that has it: one state for all)."""
    states = {t["up"] for t in dp.paths()["teps"] if t["addr"] == addr}
    assert len(states) == 1, f"TEP {addr} in V2B entries with different states: {dp.paths()['teps']}"
    return states.pop()


@dataclasses.dataclass
class SwitchLab:
    dp: Dataplane
    bfd: Bfd
    switches: list[Netns]
    bfdds: list[Bfdd]
    ifnames: list[str]    # uplink i's tap, in switches[i]


@contextlib.contextmanager
def bfd_switch_lab(settings: BfdSettings, *, flow_capacity: int = 4096, n_mbufs: int = 8191,
                   log: TextIO | None = None, guest_devargs: str | None = None,
                   rebalance_idle_ms: int | None = 10_000) -> Iterator[SwitchLab]:
    """A guest port (a ring to inject into, or the device `guest_devargs` names), anycast to the TEP over
    uplink0 and uplink1 (tap i to switch i, fe80::<i+1>), the sessions at `settings` on both sides; `Bfd`
    logs to `log` (None: stderr). Everything goes on exit."""
    tag = secrets.token_hex(3)
    with contextlib.ExitStack() as stack:
        switches = [stack.enter_context(namespace(f"bfdsw{i}")) for i in range(2)]
        ifnames = [f"ofb{i}{tag}" for i in range(2)]
        macs = [f"02:5e:00:00:{i:02x}:01" for i in range(2)]
        state = anycast_state(2)
        dp = Dataplane(DataplaneOptions(underlay_addr=state.underlay.addr, flow_capacity=flow_capacity,
                                        n_mbufs=n_mbufs, rebalance_idle_ms=rebalance_idle_ms))
        stack.callback(dp.close)
        if guest_devargs is None:
            dp.add_ring_port("guest0", "guest")
        else:
            dp.add_port("guest0", guest_devargs, "guest")
        for i, (ifname, mac) in enumerate(zip(ifnames, macs)):
            dp.add_port(uplink_name(i), tap_devargs(ifname, mac), "uplink")
        dp.commit(state)
        dp.start([1])
        bfdds = []
        for i, (sw, ifname, mac) in enumerate(zip(switches, ifnames, macs)):
            run(["ip", "link", "set", ifname, "netns", sw.name])
            sw.ip("link", "set", ifname, "address", switch_mac(i), "up")
            sw.add_address(ifname, f"{switch_gateway(i)}/64")
            bfdds.append(stack.enter_context(Bfdd(sw, [peer_config(
                str(link_local(mac)), interface=ifname, interval_ms=settings.desired_min_tx_ms,
                multiplier=settings.detect_multiplier)])))
        bfd = Bfd(dp, BfdConfig(settings, multihop=False), log=log)
        bfd.commit(state)
        bfd.start()
        stack.callback(bfd.stop)
        yield SwitchLab(dp, bfd, switches, bfdds, ifnames)
