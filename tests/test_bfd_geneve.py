"""Multi-hop BFD to a TEP inside the Geneve tunnel (in the spirit of RFC 9521), so that a TEP that stops
decapsulating is marked down while its address still answers and its route stays.

- Ring uplinks, the TEP played from the test: the frame a session sends (every outer and inner field:
  the data plane's encapsulation toward the TEP around multi-hop BFD), the TEP's answers decapsulated on
  the inbound path bringing the session up, and what is refused and where it is counted.
- The Open vSwitch lab against FRR's bfdd: OVS decapsulates the session into a namespace where bfdd holds
  a multihop peer, and encapsulates bfdd's answers back. Removing the switch's decap flow (br-ul, the TEP
  address and the sled's route stay) takes the session down and the TEP with it, moving exactly its flows;
  the flow back brings both up again.
- Without DPDK: which sessions the configuration asks for.
"""
from __future__ import annotations

import contextlib
import dataclasses
import ipaddress
import os

import pytest
from scapy.all import UDP, Ether, IPv6, raw
from scapy.contrib.bfd import BFD
from scapy.contrib.geneve import GENEVE

from opte_fast.config.loader import ConfigError, load_config
from opte_fast.controlplane.bfd import Bfd, BfdConfig, BfdSettings, Session, bfd_metrics, wanted_sessions
from opte_fast.controlplane.dataplane import DataplaneError
from opte_fast.controlplane.state import mac_bytes
from opte_fast.tools.sample import TEP, switch_mac
from tests.support.bfd_lab import FAST, LAB, tep_up
from tests.support.cli import sled_toml
from tests.support.e2e import e2e_sled, needs_lab_tools, ping
from tests.support.frr import Bfdd, peer_config
from tests.support.geneve import BOUNDARY_MAC, BOUNDARY_VNI, encapsulate
from tests.support.sled import UNDERLAY, default_state, ring_sled
from tests.support.tools import needs_root, needs_tools
from tests.support.tunnel_bfd import decap_flow, tunnel_bfd_endpoint
from tests.support.wait import wait_for

OFF = BfdSettings("off")
TEP_DISC = 0x5EB0C0DE


def tep_bfd(state: int, your_disc: int, *, flags: str = "", tx_us: int = 100_000, dst: str = str(UNDERLAY),
            dport: int = 4784) -> IPv6:
    """Multi-hop BFD from the TEP's endpoint to the underlay address: 10 ms RX, x 3, TX `tx_us`."""
    return (IPv6(src=str(TEP), dst=dst, hlim=255) / UDP(sport=50000, dport=dport) /
            BFD(version=1, diag=0, sta=state, flags=flags, detect_mult=3, my_discriminator=TEP_DISC,
                your_discriminator=your_disc, min_tx_interval=tx_us, min_rx_interval=10000, echo_rx_interval=0))


def tep_answer(state: int, your_disc: int, *, dst_mac: str, **bfd) -> bytes:
    """What the TEP sends back through the tunnel: tep_bfd(...) in Ethernet, encapsulated by the switch
    toward the sled (OVS's way: a full outer UDP checksum, hop limit 64)."""
    inner = Ether(src="02:bf:d0:00:00:01", dst="02:00:00:00:00:99") / tep_bfd(state, your_disc, **bfd)
    return raw(encapsulate(inner, eth_src=switch_mac(0), eth_dst=dst_mac, src=str(TEP), dst=str(UNDERLAY),
                           vni=BOUNDARY_VNI, sport=40000, hop_limit=64, udp_checksum=True))


def tunnel_bfd(frames: list[bytes]) -> list[Ether]:
    return [p for p in map(Ether, frames) if p.haslayer(GENEVE) and p.haslayer(BFD)]


# --- ring uplinks, the TEP played from here --------------------------------------------------------


def test_a_tep_session_leaves_in_geneve_as_guest_traffic_and_comes_up_on_the_teps_decapsulated_answers(eal):
    with ring_sled(n_uplinks=1) as sled:
        dp = sled.dp
        mac0 = dp.ports()[1]["mac"]
        bfd = Bfd(dp, BfdConfig(FAST, uplinks=(("uplink0", OFF),)))  # the TEP's session alone
        bfd.commit(default_state(1))
        bfd.start()
        try:
            # -- the first frame: the data plane's encapsulation toward the TEP around multi-hop BFD ----
            first = wait_for(lambda: tunnel_bfd(dp.collect("uplink0")), what="a BFD frame in Geneve")[0]
            assert (first.src, first.dst, first.type) == (mac0, switch_mac(0), 0x86DD)
            outer = first[IPv6]
            assert (outer.src, outer.dst, outer.hlim, outer.tc, outer.nh) == (str(UNDERLAY), str(TEP), 128, 0, 17)
            # the first session's point in the data plane's entropy range; checksum zero, as for guest frames
            assert (outer.fl, first[UDP].sport, first[UDP].dport, first[UDP].chksum) == (0, 49152, 6081, 0)
            gnv = first[GENEVE]
            assert (gnv.version, gnv.optionlen, gnv.oam, gnv.critical, gnv.proto, gnv.vni) == \
                (0, 0, 0, 0, 0x6558, BOUNDARY_VNI)
            inner = gnv.payload
            assert (inner.src, inner.dst, inner.type) == (mac0, BOUNDARY_MAC, 0x86DD)
            assert (inner[IPv6].src, inner[IPv6].dst, inner[IPv6].hlim, inner[IPv6].tc) == \
                (str(UNDERLAY), str(TEP), 255, 0xC0)
            assert (inner[UDP].sport, inner[UDP].dport, inner[UDP].len) == (49152, 4784, 32)
            assert UDP(raw(inner[UDP])).chksum == inner[UDP].chksum  # scapy agrees with the inner checksum
            b = inner[BFD]
            assert (b.version, b.sta, b.diag, int(b.flags), b.detect_mult, b.len, b.your_discriminator) == \
                (1, 1, 0, 0, 3, 24, 0)
            assert len(raw(first)) == 70 + 86
            ours = b.my_discriminator

            # -- the TEP answers from inside the tunnel: Up, then the Poll for 10 ms answered ----------
            before = dp.counters()
            dp.inject("uplink0", [tep_answer(2, ours, dst_mac=mac0)])
            wait_for(lambda: dp.bfd_sessions()[0]["state"] == 3, what="Up")
            dp.inject("uplink0", [tep_answer(3, ours, dst_mac=mac0, flags="F")])
            wait_for(lambda: not dp.bfd_sessions()[0]["poll"], what="Up without Poll")
            session = dp.bfd_sessions()[0]
            assert (session["multihop"], session["geneve"], session["vni"], session["remote_disc"]) == \
                (True, True, BOUNDARY_VNI, TEP_DISC)
            assert dp.bfd_stats()["rx_geneve_packets"] == 2
            after = dp.counters()
            assert (after["bfd_rx_packets"] - before["bfd_rx_packets"],
                    after["vni_mac_unknown"] - before["vni_mac_unknown"]) == (2, 0)
            report = bfd.bfd()["sessions"]
            assert [(r["kind"], r["peer"], r["state"], r["member_up"], r["vni"]) for r in report] == \
                [("multihop-geneve", str(TEP), "up", True, BOUNDARY_VNI)]
            families = {f.name: f for f in bfd_metrics(bfd.bfd(), "opte_fast")}
            assert [s.value for s in families["opte_fast_bfd_rx_geneve_packets"].samples
                    if s.name.endswith("_total")] == [2]
            assert [dict(s.labels) for s in families["opte_fast_bfd_session_up"].samples] == \
                [{"kind": "multihop-geneve", "uplink": "uplink0", "peer": str(TEP)}]

            # -- the TEP goes silent: Down after 3 x its 100 ms, and the TEP is marked down -----------
            wait_for(lambda: dp.bfd_sessions()[0]["state"] == 1, timeout_s=2, what="the session Down")
            wait_for(lambda: not dp.paths()["teps"][0]["up"], what="the TEP down")
            assert bfd.bfd()["sessions"][0]["diag"] == "control detection time expired"
        finally:
            bfd.stop()


def test_what_the_tunnel_brings_that_is_not_an_answer_for_a_session_is_counted_where_it_stops(eal):
    with ring_sled(n_uplinks=1) as sled:
        dp = sled.dp
        mac0 = dp.ports()[1]["mac"]
        mac = mac_bytes(switch_mac(0))
        dp.bfd_set([(True, TEP.packed, 1, mac, 10_000, 10_000, 3, True, BOUNDARY_VNI)])
        good = tep_answer(1, 0, dst_mac=mac0)
        bad_sum = bytearray(good)
        bad_sum[-1] ^= 1  # the inner BFD checksum: the outer one OVS sets is not verified by default
        plain = raw(Ether(src=switch_mac(0), dst=mac0) / tep_bfd(1, 0))  # outside the tunnel: no plain session
        other_dst = tep_answer(1, 0, dst_mac=mac0, dst="fd00:0:f7:101::99")  # not to us: no guest's either
        not_bfd = tep_answer(1, 0, dst_mac=mac0, dport=3784)  # single-hop BFD has no business in a tunnel
        dp.inject("uplink0", [bytes(bad_sum), plain, other_dst, not_bfd])
        wait_for(lambda: dp.bfd_stats()["rx_packets"] == 2, what="two frames at the BFD thread")
        wait_for(lambda: dp.counters()["vni_mac_unknown"] == 2, what="two frames no guest takes")
        stats = dp.bfd_stats()
        assert (stats["rx_geneve_packets"], stats["rx_bad_checksum"], stats["rx_no_session"]) == (1, 1, 1)
        assert dp.counters()["bfd_rx_packets"] == 2

        # -- no session through the tunnel: its answers are frames no guest takes, as before ----------
        dp.bfd_set([(True, TEP.packed, 1, mac, 10_000, 10_000, 3)])
        dp.inject("uplink0", [good])
        wait_for(lambda: dp.counters()["vni_mac_unknown"] == 3, what="the answer dropped as no guest's")
        assert dp.bfd_stats()["rx_geneve_packets"] == 1

        with pytest.raises(DataplaneError, match="through Geneve only multi-hop"):
            dp.bfd_set([(False, TEP.packed, 1, mac, 10_000, 10_000, 3, True, BOUNDARY_VNI)])


# --- the Open vSwitch lab against FRR's bfdd ------------------------------------------------------


def pinned(dp) -> dict[int, str]:
    """ICMP flows (by echo identifier) and the TEP each is pinned to."""
    return {f["src_port"]: f["tep"] for f in dp.flows(1000) if f["proto"] == 1}


@needs_root("namespaces, taps and Open vSwitch")
@needs_lab_tools
@needs_tools("vtysh", "ethtool")
@pytest.mark.skipif(not os.path.exists("/usr/lib/frr/bfdd"), reason="missing FRR's bfdd: run bash ci/install.sh")
def test_a_tep_whose_decapsulation_stops_is_marked_down_by_bfd_inside_the_tunnel_moving_exactly_its_flows(eal):
    with e2e_sled("v2b", (1,)) as sled, contextlib.ExitStack() as stack:
        lab, dp = sled.lab, sled.dp
        teps = [link.tep for link in lab.uplinks]
        bfdds = []
        for link in lab.uplinks:
            endpoint = stack.enter_context(tunnel_bfd_endpoint(link, lab.sled_address))
            bfdds.append(stack.enter_context(Bfdd(endpoint, [peer_config(
                lab.sled_address, multihop=True, local=link.tep, interval_ms=LAB.desired_min_tx_ms,
                multiplier=LAB.detect_multiplier)])))
        bfd = Bfd(dp, BfdConfig(LAB, uplinks=(("uplink0", OFF), ("uplink1", OFF))))  # multi-hop in Geneve
        bfd.commit(sled.state())
        bfd.start()
        stack.callback(bfd.stop)
        wait_for(lambda: [s["state"] for s in dp.bfd_sessions()] == [3, 3], timeout_s=15,
                 what="both sessions through the tunnel Up")
        assert sorted((r["kind"], r["peer"], r["uplink"], r["local"]) for r in bfd.bfd()["sessions"]) == \
            sorted(("multihop-geneve", tep, f"uplink{i}", lab.sled_address) for i, tep in enumerate(teps))
        for b in bfdds:
            b.wait_status("up")
        # a session goes Up on a peer's Init or Up at the least; more come every LAB interval
        assert dp.bfd_stats()["rx_geneve_packets"] >= len(teps)

        # -- 16 guest flows (echo identifiers), over both TEPs --------------------------------------
        idents = range(0x100, 0x110)
        for ident in idents:
            assert ping(sled.guest_ns, lab.internet.ipv4, count=1, ident=ident) == [1]
        before = pinned(dp)
        failing, survivor = teps
        on_failing = {i for i, tep in before.items() if tep == failing}
        assert set(before) == set(idents) and 0 < len(on_failing) < len(idents), before
        migrated = dp.counters()["flows_migrated"]
        # a starved worker may have flapped a session before (LAB in tests/support/bfd_lab.py): count this failure's downs
        downs = {r["peer"]: r["downs"] for r in bfd.bfd()["sessions"]}

        # -- switch 0's decap flow goes; br-ul, the TEP address on it and the sled's route stay -------
        switch = lab.uplinks[0].switch
        switch.ofctl("del-flows", "--strict", "br-tun", decap_flow())
        wait_for(lambda: not tep_up(dp, failing), timeout_s=5, what=f"TEP {failing} down")
        session = next(s for s in bfd.bfd()["sessions"] if s["peer"] == failing)
        # bfdd hears nothing more, times out, and says so through the encapsulation that still works
        assert (session["state"] in ("down", "init"), session["diag"], session["member_up"], session["downs"]) == \
            (True, "neighbor signaled session down", False, downs[failing] + 1)
        assert tep_up(dp, survivor)
        assert f"inet6 {failing}/" in switch.ns.ip("-6", "addr", "show", "dev", "br-ul")
        prefix = ipaddress.ip_network(f"{failing}/64", strict=False)
        assert any(r["prefix"] == str(prefix) for r in dp.paths()["nexthops"])
        for ident in idents:
            assert ping(sled.guest_ns, lab.internet.ipv4, count=1, ident=ident) == [1]
        after = pinned(dp)
        assert {i for i in idents if after[i] != before[i]} == on_failing
        assert set(after.values()) == {survivor}
        assert dp.counters()["flows_migrated"] - migrated == len(on_failing)

        # -- the decap flow back: the session and the TEP come back ----------------------------------
        switch.ofctl("add-flow", "br-tun", f"{decap_flow()},actions=goto_table:1")
        wait_for(lambda: tep_up(dp, failing), timeout_s=10, what=f"TEP {failing} up again")
        assert [s["state"] for s in dp.bfd_sessions()] == [3, 3]
        assert {r["peer"]: r["downs"] - downs[r["peer"]] for r in bfd.bfd()["sessions"]} == {failing: 1, survivor: 0}


# --- without DPDK: the configuration ---------------------------------------------------------------


def test_tep_sessions_go_through_geneve_with_the_teps_vni_unless_the_config_says_plain(tmp_path):
    state = default_state(2)
    hop = state.routes[0].nexthops[0]
    config = BfdConfig(FAST, uplinks=(("uplink0", OFF), ("uplink1", OFF)))
    assert wanted_sessions(state, config) == [Session(True, TEP, "uplink0", hop.mac, FAST, True, BOUNDARY_VNI)]
    assert wanted_sessions(state, dataclasses.replace(config, multihop_encap="plain")) == \
        [Session(True, TEP, "uplink0", hop.mac, FAST)]
    assert [s.kind for s in (Session(True, TEP, "u", "m", FAST, True, 99), Session(True, TEP, "u", "m", FAST),
                             Session(False, TEP, "u", "m", FAST))] == ["multihop-geneve", "multihop", "single-hop"]

    path = tmp_path / "sled.toml"
    base = sled_toml("net_null0", {"uplink0": "net_null1", "uplink1": "net_null2"}, static_routes=True,
                     state_dir=str(tmp_path))
    path.write_text(base)
    assert load_config(path, {}).bfd.multihop_encap == "geneve"
    assert load_config(path, {"bfd_multihop_encap": "plain"}).bfd.multihop_encap == "plain"
    path.write_text(base + '\n[bfd]\nmultihop_encap = "vxlan"\n')
    with pytest.raises(ConfigError) as e:
        load_config(path, {})
    assert str(e.value) == f"{path}: bfd.multihop_encap: expected one of 'geneve', 'plain', got string 'vxlan'"
