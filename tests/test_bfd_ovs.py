"""Plain multi-hop BFD (RFC 5883, `multihop_encap = "plain"`) to each boundary-services TEP, in the Open
vSwitch end-to-end lab (mode (a): a TEP per switch, each with its own route), against FRR's bfdd on each
switch's TEP address.

A switch that stops delivering to its TEP (an OpenFlow rule on br-ul drops everything for the TEP's
address, Geneve and BFD alike) while the sled's route to the TEP stays is found by multi-hop BFD: the
TEP is marked down, the guest's flow moves to the other TEP, and when the rule goes the session and the
TEP come back. Single-hop BFD is off on both uplinks here (the lab's nexthop gateways are no hosts).
A TEP that still answers but no longer decapsulates is test_bfd_geneve.py's: plain BFD cannot see it.
"""
from __future__ import annotations

import contextlib
import ipaddress
import os

import pytest

from opte_fast.controlplane.bfd import Bfd, BfdConfig, BfdSettings
from tests.support.bfd_lab import LAB, tep_up
from tests.support.e2e import e2e_sled, needs_lab_tools, ping
from tests.support.frr import Bfdd, peer_config
from tests.support.tools import needs_root, needs_tools
from tests.support.wait import wait_for

OFF = BfdSettings("off")


@needs_root("namespaces, taps and Open vSwitch")
@needs_lab_tools
@needs_tools("vtysh")
@pytest.mark.skipif(not os.path.exists("/usr/lib/frr/bfdd"), reason="missing FRR's bfdd: run bash ci/install.sh")
def test_a_tep_that_stops_answering_is_marked_down_by_multihop_bfd_while_its_route_stays(eal):
    with e2e_sled("v2b", (1,)) as sled, contextlib.ExitStack() as stack:
        lab, dp = sled.lab, sled.dp
        teps = [link.tep for link in lab.uplinks]
        bfdds = [stack.enter_context(Bfdd(link.switch.ns, [peer_config(
            lab.sled_address, multihop=True, local=link.tep, interval_ms=LAB.desired_min_tx_ms,
            multiplier=LAB.detect_multiplier)])) for link in lab.uplinks]
        bfd = Bfd(dp, BfdConfig(LAB, uplinks=(("uplink0", OFF), ("uplink1", OFF)), multihop_encap="plain"))
        bfd.commit(sled.state())
        bfd.start()
        stack.callback(bfd.stop)
        wait_for(lambda: [s["state"] for s in dp.bfd_sessions()] == [3, 3], timeout_s=15,
                 what="both multi-hop sessions Up")
        report = bfd.bfd()["sessions"]
        assert sorted((r["kind"], r["peer"], r["uplink"], r["local"]) for r in report) == \
            sorted(("multihop", tep, f"uplink{i}", lab.sled_address) for i, tep in enumerate(teps))
        for b in bfdds:
            b.wait_status("up")

        # -- the guest's flow, wherever it is pinned ----------------------------------------------
        assert ping(sled.guest_ns, lab.internet.ipv4) == [1, 2, 3]
        flow = next(f for f in dp.flows(100) if f["proto"] == 1)
        failing = flow["tep"]
        survivor = next(t for t in teps if t != failing)
        switch = lab.uplinks[teps.index(failing)].switch

        # -- the switch stops delivering to its TEP; the sled's route to it stays -------------------
        switch.ofctl("add-flow", "br-ul", f"priority=1000,ipv6,ipv6_dst={failing},actions=drop")
        wait_for(lambda: not tep_up(dp, failing), timeout_s=5, what=f"TEP {failing} down")
        session = next(s for s in bfd.bfd()["sessions"] if s["peer"] == failing)
        # only what goes to the TEP is dropped: bfdd's detection time runs out, and its packets, which still
        # reach the sled, say so (and then, Down, take the session to Init, which keeps the reason)
        assert (session["state"] in ("down", "init"), session["diag"], session["member_up"], session["downs"]) == \
            (True, "neighbor signaled session down", False, 1)
        assert tep_up(dp, survivor)
        prefix = ipaddress.ip_network(f"{failing}/64", strict=False)
        assert any(r["prefix"] == str(prefix) for r in dp.paths()["nexthops"])  # the route is still there
        assert ping(sled.guest_ns, lab.internet.ipv4) == [1, 2, 3]
        moved = next(f for f in dp.flows(100) if f["proto"] == 1)
        assert moved["tep"] == survivor

        # -- delivery restored: the session and the TEP come back ---------------------------------
        switch.ofctl("del-flows", "--strict", "br-ul", f"priority=1000,ipv6,ipv6_dst={failing}")
        wait_for(lambda: tep_up(dp, failing), timeout_s=10, what=f"TEP {failing} up again")
        assert [s["state"] for s in dp.bfd_sessions()] == [3, 3]
        assert {r["peer"]: r["downs"] for r in bfd.bfd()["sessions"]} == {failing: 1, survivor: 0}
