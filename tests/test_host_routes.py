"""Routes derived from the host table, and what happens when the data plane refuses them.

The host table here is in memory (what route sync answers from the kernel's);
tests/test_routesync.py drives the same through a network namespace.
"""
from __future__ import annotations

import ipaddress

import pytest

from opte_fast.controlplane.controller import Controller, RoutesRefused
from opte_fast.controlplane.state import V2B, V2P, DesiredState, Nexthop, Route, StableIds, Tep, Underlay
from tests.support.fake_dataplane import FakeDataplane
from tests.support.host_table import HostTable

A = ipaddress.IPv6Address
N = ipaddress.IPv6Network
UPLINKS = ("uplink0", "uplink1")
UP0 = Nexthop("uplink0", A("fe80::1"), "a8:40:25:00:00:01")
UP1 = Nexthop("uplink1", A("fe80::2"), "a8:40:25:00:00:02")
DOWN1 = Nexthop("uplink1", A("fe80::2"), "a8:40:25:00:00:02", up=False)


class LimitedDataplane(FakeDataplane):
    """Refuses any state with more nexthops than `capacity`, as full id tables would."""

    def __init__(self, capacity: int):
        super().__init__()
        self.capacity = capacity

    def commit(self, state: DesiredState) -> None:
        count = sum(len(r.nexthops) for r in state.routes)
        if count > self.capacity:
            raise ValueError(f"{count} nexthops, more than the {self.capacity} the tables hold")
        super().commit(state)


def tables(*teps: str, v2p_sleds: tuple[str, ...] = ()) -> DesiredState:
    return DesiredState(Underlay(A("fd00:1::1")),
                        v2b=(V2B(ipaddress.ip_network("0.0.0.0/0"), tuple(Tep(A(t)) for t in teps)),),
                        v2p=tuple(V2P(7, ipaddress.ip_address(f"10.0.0.{i + 2}"), A(s), "a8:40:25:f0:00:02")
                                  for i, s in enumerate(v2p_sleds)))


def test_only_the_routes_to_teps_and_sleds_are_committed_and_only_when_they_change():
    host = HostTable(Route(N("fd00:99::/64"), (UP0, UP1)), Route(N("fd00:99::/48"), (UP0,)),
                     Route(N("fd00:2::/64"), (UP1,)), *(Route(N(f"fd01:{i:x}::/64"), (UP0,)) for i in range(500)))
    dp = FakeDataplane()
    controller = Controller(dp, tables("fd00:99::1", v2p_sleds=("fd00:2::1", "fd00:2::1")), UPLINKS)
    assert controller.follow_host_routes(host) is True
    assert dp.state.routes == (Route(N("fd00:2::/64"), (UP1,)), Route(N("fd00:99::/64"), (UP0, UP1)))
    host.routes[N("fd01:7::/64")] = Route(N("fd01:7::/64"), (UP1,))  # used by nobody here
    assert controller.host_routes_changed() is False
    assert controller.v2b_set(ipaddress.ip_network("0.0.0.0/0"), [A("fd00:99::1"), A("fd01:7::1")]) is True
    assert dp.state.routes[2] == Route(N("fd01:7::/64"), (UP1,))  # in the same commit as the TEP
    with pytest.raises(ValueError, match="routes follow the host routing table"):
        controller.set_routes(())


def test_a_refused_commit_still_takes_out_what_the_host_withdrew():
    host = HostTable(Route(N("fd00:99::/64"), (UP0, UP1)), Route(N("fd00:98::/64"), (UP0, UP1)))
    dp = LimitedDataplane(capacity=4)
    controller = Controller(dp, tables("fd00:99::1", "fd00:98::1", "fd00:97::1"), UPLINKS)
    controller.follow_host_routes(host)
    # one path withdrawn, one gone down, and a new two-path route the tables cannot take as well
    host.routes[N("fd00:99::/64")] = Route(N("fd00:99::/64"), (UP0,))
    host.routes[N("fd00:98::/64")] = Route(N("fd00:98::/64"), (UP0, DOWN1))
    host.routes[N("fd00:97::/64")] = Route(N("fd00:97::/64"), (UP0, UP1))
    with pytest.raises(RoutesRefused, match="5 nexthops, more than the 4") as refused:
        controller.host_routes_changed()
    assert refused.value.withdrawals_applied
    assert dp.state.routes == (Route(N("fd00:98::/64"), (UP0, DOWN1)), Route(N("fd00:99::/64"), (UP0,)))
    dp.capacity = 5
    assert controller.host_routes_changed() is True
    assert dp.state.routes == (Route(N("fd00:97::/64"), (UP0, UP1)), Route(N("fd00:98::/64"), (UP0, DOWN1)),
                               Route(N("fd00:99::/64"), (UP0,)))


def test_a_path_that_came_up_waits_for_the_full_commit():
    host = HostTable(Route(N("fd00:99::/64"), (UP0, DOWN1)))
    dp = LimitedDataplane(capacity=2)
    controller = Controller(dp, tables("fd00:99::1", "fd00:97::1"), UPLINKS)
    controller.follow_host_routes(host)
    host.routes[N("fd00:99::/64")] = Route(N("fd00:99::/64"), (UP0, UP1))
    host.routes[N("fd00:97::/64")] = Route(N("fd00:97::/64"), (UP0,))
    with pytest.raises(RoutesRefused) as refused:
        controller.host_routes_changed()
    assert not refused.value.withdrawals_applied  # nothing was withdrawn
    assert dp.state.routes == (Route(N("fd00:99::/64"), (UP0, DOWN1)),)


def test_stable_ids_are_unchanged_when_assign_raises():
    ids = StableIds(1, 4)  # room for three
    assert ids.assign("abc") == {"a": 1, "b": 2, "c": 3}
    with pytest.raises(ValueError, match="4 distinct entries, more than the 3"):
        ids.assign("adef")  # b and c would make room for two of the three new keys
    assert ids.assign("bcx") == {"b": 2, "c": 3, "x": 1}  # b and c kept their ids
    assert ids.propose("cy") == {"c": 3, "y": 1}  # proposed only: nothing kept
    assert ids.assign("bcx") == {"b": 2, "c": 3, "x": 1}
