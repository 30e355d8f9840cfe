"""BFD (RFC 5880/5881/5883): the data plane's sessions, and a failed session moving exactly its member's flows.

- Ring uplinks, the peer played from the test with scapy's BFD layer: the frame a session sends (every
  field), the three-way handshake, the detection time, and a silent peer taking exactly its nexthop's
  flows away while a nexthop whose peer never spoke BFD stays in use.
- net_tap uplinks into two switch namespaces running FRR's bfdd (a real, independent BFD): sessions come
  up at 100 ms x 3 (LAB in tests/support/bfd_lab.py says why not 10); bfdd killed on one switch, or its
  BFD dropped with nft, marks that nexthop down and moves exactly its flows; restored, the sessions come
  back and new flows use the switch again.
- Without DPDK: which sessions a state asks for, and which members a session's state takes down.
"""
from __future__ import annotations

import dataclasses
import io
import ipaddress
import json
import os
import re
import threading
import time

import pytest
from click.testing import CliRunner
from scapy.all import UDP, Ether, IPv6, raw
from scapy.contrib.bfd import BFD

from opte_fast.api.ctl import ctl
from opte_fast.api.server import ControlAPI, ControlServer
from opte_fast.config.loader import ConfigError, load_config
from opte_fast.controlplane.bfd import (
    Bfd,
    BfdConfig,
    BfdSettings,
    Session,
    bfd_metrics,
    failed,
    wanted_sessions,
    with_failures,
)
from opte_fast.controlplane.dataplane import Dataplane
from opte_fast.controlplane.state import V2B, Tep, mac_bytes
from opte_fast.tools.sample import TEP, TEP_PREFIX, switch_gateway, switch_mac
from tests.support.bfd_lab import FAST, LAB, bfd_switch_lab, link_local, nexthop_up
from tests.support.cli import EXAMPLE_CONFIG, sled_toml
from tests.support.frames import udp_flows
from tests.support.sled import default_state, ring_sled
from tests.support.tools import needs_root, needs_tools
from tests.support.wait import wait_for

PEER_DISC = 0x1234ABCD


def bfd_frames(frames: list[bytes]) -> list[Ether]:
    return [p for p in map(Ether, frames) if p.haslayer(BFD)]


def peer_packet(state: int, your_disc: int, *, dst: ipaddress.IPv6Address, flags: str = "",
                tx_us: int = 1_000_000) -> bytes:
    """What the switch at fe80::1 (switch_mac(0)) sends to the sled's uplink at link-local `dst`: 10 ms RX,
    x 3, and TX `tx_us` (slow, as FRR while it polls, so the test's own pace cannot time the session out)."""
    return raw(Ether(src=switch_mac(0), dst="ff:ff:ff:ff:ff:ff") /
               IPv6(src=str(switch_gateway(0)), dst=str(dst), hlim=255) / UDP(sport=49152, dport=3784) /
               BFD(version=1, diag=0, sta=state, flags=flags, detect_mult=3, my_discriminator=PEER_DISC,
                   your_discriminator=your_disc, min_tx_interval=tx_us, min_rx_interval=10000,
                   echo_rx_interval=0))


# --- ring uplinks, the peer played from here -----------------------------------------------------


def test_a_session_speaks_from_the_uplinks_link_local_address_comes_up_and_a_silent_peer_moves_exactly_its_flows(
        eal, tmp_path):
    with ring_sled(n_uplinks=2) as sled:
        dp = sled.dp
        mac0 = dp.ports()[1]["mac"]
        ll0 = link_local(mac0)
        log = io.StringIO()
        bfd = Bfd(dp, BfdConfig(FAST, multihop=False), log=log)
        bfd.commit(default_state(2))
        bfd.start()
        try:
            # -- the first frame: Down, Your Discriminator 0, slow TX until Up (RFC 5880 6.8.3) --------
            first = wait_for(lambda: bfd_frames(dp.collect("uplink0")), what="a BFD frame on uplink0")[0]
            assert (first.src, first.dst) == (mac0, switch_mac(0))
            assert (first[IPv6].src, first[IPv6].dst, first[IPv6].hlim, first[IPv6].tc) == \
                (str(ll0), str(switch_gateway(0)), 255, 0xC0)
            assert (first[UDP].sport, first[UDP].dport) == (49152, 3784)
            b = first[BFD]
            assert (b.version, b.sta, b.diag, int(b.flags), b.detect_mult, b.len) == (1, 1, 0, 0, 3, 24)
            assert (b.your_discriminator, b.min_tx_interval, b.min_rx_interval, b.echo_rx_interval) == \
                (0, 1_000_000, 10_000, 0)
            ours = b.my_discriminator
            assert ours != 0
            assert UDP(raw(first[UDP])).chksum == first[UDP].chksum  # scapy agrees with the checksum

            # -- the handshake: Down -> Init, then Up with a Poll for 10 ms ------------------------
            dp.inject("uplink0", [peer_packet(1, 0, dst=ll0)])
            init = wait_for(lambda: [p for p in bfd_frames(dp.collect("uplink0")) if p[BFD].sta == 2],
                            what="Init")[0]
            assert (init[BFD].your_discriminator, init[BFD].my_discriminator) == (PEER_DISC, ours)
            dp.inject("uplink0", [peer_packet(3, ours, dst=ll0)])
            up = wait_for(lambda: [p for p in bfd_frames(dp.collect("uplink0")) if p[BFD].sta == 3],
                          what="Up")[0]
            assert "P" in str(up[BFD].flags) and up[BFD].min_tx_interval == 10_000
            dp.inject("uplink0", [peer_packet(3, ours, dst=ll0, flags="F")])
            wait_for(lambda: [s for s in dp.bfd_sessions() if s["state"] == 3 and not s["poll"]],
                     what="Up without Poll")

            # -- traffic over both nexthops while the peer keeps the session up --------------------
            # The peer is a Python thread on a shared machine: it says it sends every 100 ms (and sends
            # every 3 ms), so a thread starved for tens of milliseconds does not take the session down.
            stop = threading.Event()
            keepalive, flows = peer_packet(3, ours, dst=ll0, tx_us=100_000), udp_flows(200)  # built once: scapy is slow

            def peer() -> None:
                while not stop.is_set():
                    dp.inject("uplink0", [keepalive])
                    time.sleep(0.003)
            keeper = threading.Thread(target=peer)
            keeper.start()
            try:
                session = wait_for(lambda: [s for s in dp.bfd_sessions() if s["detect_us"] == 300_000],
                                   what="3 x the peer's 100 ms")[0]
                assert (session["state"], session["remote_disc"], session["tx_interval_us"]) == (3, PEER_DISC,
                                                                                                 10_000)
                dp.inject("guest0", flows)
                wait_for(lambda: dp.flow_count() == 200, what="200 flows")
                time.sleep(0.2)
                assert [s["state"] for s in dp.bfd_sessions()] == [3, 1]  # uplink1's peer never spoke
                before = {(f["src_port"]): f["nexthop"]["uplink"] for f in dp.flows(1000)}
                assert set(before.values()) == {"uplink0", "uplink1"}
            finally:
                stop.set()
                keeper.join()

            # -- the peer goes silent: Down after 3 x 100 ms, exactly uplink0's flows move ----------
            wait_for(lambda: dp.bfd_sessions()[0]["state"] == 1, what="the session Down")
            s = dp.bfd_sessions()[0]
            assert (s["diag"], s["downs"], s["remote_disc"]) == (1, 1, 0)
            wait_for(lambda: not nexthop_up(dp, "uplink0"),
                     what="nexthop uplink0 down")
            migrated = dp.counters()["flows_migrated"]
            dp.inject("guest0", flows)
            wait_for(lambda: dp.counters()["flows_migrated"] - migrated == list(before.values()).count("uplink0"),
                     what="uplink0's flows migrated")
            time.sleep(0.05)
            after = {(f["src_port"]): f["nexthop"]["uplink"] for f in dp.flows(1000)}
            assert set(after.values()) == {"uplink1"}
            assert dp.counters()["flows_migrated"] - migrated == list(before.values()).count("uplink0")
            report = bfd.bfd()
            assert [(r["peer"], r["state"], r["member_up"]) for r in report["sessions"]] == \
                [(str(switch_gateway(0)), "down", False), (str(switch_gateway(1)), "down", True)]
            assert report["sessions"][0]["diag"] == "control detection time expired"
            assert report["thread"]["rx_no_session"] == 0 and report["thread"]["tx_failed"] == 0
            # one event line a change (bfd_state in --log-format json): uplink0's that moved its member, in
            # order (Init may pass between two polls unseen, and lines that changed nothing may come between)
            lines = [line for line in log.getvalue().splitlines() if "dev uplink0:" in line and "unchanged" not in line]
            changes = [re.sub(r"committed \d+ us", "committed N us", line) for line in lines]
            assert changes == [
                f"opte-fast: bfd nexthop {switch_gateway(0)} dev uplink0: {change}, committed N us after the change"
                for change in ("up; member up", "down (control detection time expired); member down")], lines
            show_through_ctl_and_metrics(bfd, tmp_path, ours)
        finally:
            bfd.stop()


def show_through_ctl_and_metrics(bfd: Bfd, tmp_path, local_disc: int) -> None:
    """`opte-fast ctl bfd`, its --json, and the Prometheus families, for the sessions of the test above."""
    server = ControlServer(str(tmp_path / "ctl.sock"), ControlAPI(None, bfd, None))
    server.start()
    try:
        runner = CliRunner()
        human = runner.invoke(ctl, ["--socket", str(tmp_path / "ctl.sock"), "bfd"])
        assert human.exit_code == 0, human.output
        lines = human.output.splitlines()
        assert lines[0].split() == ["KIND", "UPLINK", "PEER", "STATE", "REMOTE_STATE", "MEMBER_UP", "LOCAL_DISC",
                                    "REMOTE_DISC", "TX_INTERVAL_MS", "DETECT_MS", "LAST_CHANGE_S_AGO", "DIAG",
                                    "AUTH", "AUTH_KEY_ID", "RX_PACKETS", "TX_PACKETS"]
        assert lines[1].split()[:7] == ["single-hop", "uplink0", "fe80::1", "down", "down", "down", str(local_disc)]
        assert lines[2].split()[:6] == ["single-hop", "uplink1", "fe80::2", "down", "down", "up"]
        assert "control detection time expired" in lines[1]
        assert lines[4].startswith("BFD thread: SCHED_")
        assert "authentication: missing 0, unexpected 0, bad type 0, bad key ID 0, bad sequence 0, bad digest 0" \
            in lines[4]
        as_json = json.loads(runner.invoke(ctl, ["--socket", str(tmp_path / "ctl.sock"), "--json", "bfd"]).output)
        assert as_json["sessions"][0]["local_disc"] == local_disc and as_json["sessions"][0]["downs"] == 1
        assert (as_json["sessions"][0]["auth"], as_json["sessions"][0]["auth_key_id"]) == ("none", None)
    finally:
        server.stop()
    families = {f.name: f for f in bfd_metrics(bfd.bfd(), "opte_fast")}
    down = {tuple(s.labels.values()): s.value for s in families["opte_fast_bfd_member_down"].samples}
    assert down == {("single-hop", "uplink0", "fe80::1"): 1, ("single-hop", "uplink1", "fe80::2"): 0}
    downs = {tuple(s.labels.values()): s.value for s in families["opte_fast_bfd_session_downs"].samples
             if s.name.endswith("_total")}
    assert downs == {("single-hop", "uplink0", "fe80::1"): 1, ("single-hop", "uplink1", "fe80::2"): 0}
    assert families["opte_fast_bfd_rx_auth_bad_digest"].samples[0].value == 0


def test_frames_for_no_session_or_malformed_are_counted_and_the_exception_path_keeps_the_rest(eal):
    with ring_sled(n_uplinks=1) as sled:
        dp = sled.dp
        ll0 = link_local(dp.ports()[1]["mac"])
        dp.bfd_set([(False, switch_gateway(0).packed, 1, mac_bytes(switch_mac(0)),
                     10_000, 10_000, 3)])
        good = peer_packet(1, 0, dst=ll0)
        p = Ether(good)
        p[IPv6].src = "fe80::99"
        del p[UDP].chksum
        stranger = raw(p)
        bad_sum = bytearray(good)
        bad_sum[-1] ^= 1
        low_hop = Ether(good)
        low_hop[IPv6].hlim = 254  # not single-hop BFD for us: the kernel's (exception path, none here)
        dp.inject("uplink0", [stranger, bytes(bad_sum), raw(low_hop)])
        wait_for(lambda: dp.bfd_stats()["rx_packets"] == 2, what="two frames at the BFD thread")
        stats = dp.bfd_stats()
        assert (stats["rx_no_session"], stats["rx_bad_checksum"]) == (1, 1)
        c = dp.counters()
        assert (c["bfd_rx_packets"], c["not_geneve"], c["bfd_ring_full"]) == (2, 1, 0)


# --- against FRR's bfdd -------------------------------------------------------------------------


def pinned(dp: Dataplane) -> dict[int, str]:
    return {f["src_port"]: f["nexthop"]["uplink"] for f in dp.flows(4096)}


NFT_DROP_BFD = "table inet ofbfd { chain i { type filter hook input priority 0; udp dport 3784 drop; }; " \
               "chain o { type filter hook output priority 0; udp dport 3784 drop; }; }"


@needs_root("taps, namespaces and FRR")
@needs_tools("nft", "vtysh")
@pytest.mark.skipif(not (os.path.exists("/usr/lib/frr/bfdd")), reason="missing FRR's bfdd: run bash ci/install.sh")
@pytest.mark.parametrize("failure", ["bfdd killed", "nft drops BFD"])
def test_a_switch_whose_bfd_fails_loses_exactly_its_flows_and_gets_new_ones_once_back(eal, failure):
    with bfd_switch_lab(LAB) as lab:
        dp = lab.dp
        for b in lab.bfdds:
            b.wait_status("up")
        wait_for(lambda: [s["state"] for s in dp.bfd_sessions()] == [3, 3], what="both sessions Up")
        assert [s["tx_interval_us"] for s in dp.bfd_sessions()] == [100_000, 100_000]
        dp.inject("guest0", udp_flows(300))
        wait_for(lambda: dp.flow_count() == 300, what="300 flows")
        before = pinned(dp)
        on_failed = [port for port, up in before.items() if up == "uplink0"]
        assert 0 < len(on_failed) < 300
        migrated = dp.counters()["flows_migrated"]

        if failure == "bfdd killed":
            lab.bfdds[0].stop_bfdd()
        else:
            lab.switches[0].run("nft", NFT_DROP_BFD)
        wait_for(lambda: not nexthop_up(dp, "uplink0"), timeout_s=2, what="nexthop uplink0 down")
        s0 = dp.bfd_sessions()[0]
        assert s0["state"] == 1 and s0["diag"] == 1  # the detection time ran out
        assert dp.bfd_sessions()[1]["state"] == 3
        dp.inject("guest0", udp_flows(300))
        wait_for(lambda: dp.counters()["flows_migrated"] - migrated == len(on_failed), what="exactly its flows moved")
        after = pinned(dp)
        assert {p for p, u in after.items() if u != before[p]} == set(on_failed)
        assert set(after.values()) == {"uplink1"}

        # -- restore: the session comes back, new flows use the switch again --------------------
        if failure == "bfdd killed":
            lab.bfdds[0].start_bfdd()
        else:
            lab.switches[0].run("nft", "delete table inet ofbfd")
        wait_for(lambda: nexthop_up(dp, "uplink0"), timeout_s=10, what="nexthop uplink0 up again")
        lab.bfdds[0].wait_status("up")
        dp.inject("guest0", udp_flows(300, first_port=5000))
        wait_for(lambda: dp.flow_count() == 600, what="300 new flows")
        fresh = {p: u for p, u in pinned(dp).items() if p >= 5000}
        assert set(fresh.values()) == {"uplink0", "uplink1"}
        assert dp.counters()["flows_migrated"] - migrated == len(on_failed)  # nothing else moved
        report = lab.bfd.bfd()
        assert [(r["state"], r["downs"], r["member_up"]) for r in report["sessions"]] == \
            [("up", 1, True), ("up", 0, True)]


# --- without DPDK: the policy ---------------------------------------------------------------------


def test_sessions_are_one_per_gateway_and_uplink_and_one_per_tep_through_its_first_live_nexthop():
    state = default_state(2)
    hops = state.routes[0].nexthops
    config = BfdConfig(FAST, uplinks=(("uplink1", BfdSettings("off")),))
    assert wanted_sessions(state, config) == [Session(False, hops[0].gateway, "uplink0", hops[0].mac, FAST),
                                              Session(True, TEP, "uplink0", hops[0].mac, FAST, True, 99)]
    # with uplink0's session failed, the TEP's session goes through uplink1
    both = BfdConfig(FAST)
    assert wanted_sessions(state, both, frozenset({(False, hops[0].gateway, "uplink0")}))[-1] == \
        Session(True, TEP, "uplink1", hops[1].mac, FAST, True, 99)
    assert wanted_sessions(state, BfdConfig()) == []


def test_a_failed_session_takes_down_its_member_only_when_it_had_been_up_unless_required():
    up = {"state": 3, "been_up": True, "remote_state": 3}
    never = {"state": 1, "been_up": False, "remote_state": 1}
    lost = {"state": 1, "been_up": True, "remote_state": 1}
    admin = {"state": 1, "been_up": True, "remote_state": 0}
    require = dataclasses.replace(FAST, mode="require")
    assert [failed(s, FAST) for s in (up, never, lost, admin)] == [False, False, True, False]
    assert [failed(s, require) for s in (up, never, lost, admin)] == [False, True, True, True]
    state = default_state(2).replace(v2b=(V2B(ipaddress.ip_network("0.0.0.0/0"), (Tep(TEP),)),))
    down = with_failures(state, frozenset({(False, switch_gateway(1), "uplink1"), (True, TEP)}))
    assert [n.up for n in down.routes[0].nexthops] == [True, False]
    assert [t.up for t in down.v2b[0].teps] == [False]
    assert down.routes[0].prefix == TEP_PREFIX


# --- settings --------------------------------------------------------------------------------------


def test_the_example_config_runs_bfd_off_by_default_with_one_uplink_on_at_its_own_interval():
    config = load_config(EXAMPLE_CONFIG, {})
    assert config.bfd.default == BfdSettings("off", 50, 50, 3)
    assert config.bfd.for_uplink("uplink1") == BfdSettings("on", 100, 50, 3)
    assert config.bfd.for_uplink("uplink0") == config.bfd.default
    flags = load_config(EXAMPLE_CONFIG, {"bfd": "require", "bfd_tx_ms": "10", "bfd_rx_ms": "20", "bfd_multiplier": "5"})
    assert flags.bfd.default == BfdSettings("require", 10, 20, 5)
    assert flags.bfd.for_uplink("uplink1") == BfdSettings("on", 100, 20, 5)  # the entry's own keys stay


@pytest.mark.parametrize("toml, message", [
    ("[bfd]\ndesired_min_tx_ms = 5\n", "bfd.desired_min_tx_ms: expected an integer from 10 to 60000, got 5"),
    ("[bfd]\nmode = \"fast\"\n", "bfd.mode: expected one of 'off', 'on', 'require', got string 'fast'"),
    ("[[bfd_uplink]]\nname = \"uplink9\"\n",
     "bfd_uplink[0].name: no uplink 'uplink9' (expected one of uplink0, uplink1)"),
    ("[[bfd_uplink]]\nname = \"uplink0\"\nrequired_min_rx_ms = 1\n",
     "bfd_uplink[0]: BFD required_min_rx_ms 1: expected 10 to 60000"),
    ("[[bfd_uplink]]\nname = \"uplink0\"\ndetect_multiplier = \"3\"\n",
     "bfd_uplink[0]: BFD detect_multiplier '3': expected an integer"),
    ("[bfd]\nauth = \"md5\"\n",
     "bfd.auth: expected one of 'none', 'keyed-sha1', 'meticulous-keyed-sha1', got string 'md5'"),
    ("[bfd]\nauth = \"keyed-sha1\"\n",
     "bfd: BFD auth keyed-sha1: needs auth_key_file, a file holding the secret (1 to 20 bytes)"),
    ("[bfd]\nauth_key_id = 256\n", "bfd.auth_key_id: expected an integer from 0 to 255, got 256"),
    ("[bfd]\nauth_key_file = \"key\"\n", "bfd.auth_key_file: expected an absolute file path, got string 'key'"),
    ("[bfd]\nauth = \"keyed-sha1\"\nauth_key_file = \"/nonexistent/key\"\n",
     "bfd: BFD auth_key_file /nonexistent/key: cannot read: No such file or directory"),
    ("[[bfd_uplink]]\nname = \"uplink0\"\nauth_key_id = \"7\"\n",
     "bfd_uplink[0]: BFD auth_key_id '7': expected an integer from 0 to 255"),
    ("[[bfd_uplink]]\nname = \"uplink0\"\nauth = \"meticulous-keyed-sha1\"\n",
     "bfd_uplink[0]: BFD auth meticulous-keyed-sha1: needs auth_key_file, a file holding the secret (1 to 20 bytes)"),
])
def test_a_bad_bfd_setting_is_one_line_naming_its_key(tmp_path, toml, message):
    path = tmp_path / "sled.toml"
    path.write_text(sled_toml("net_null0", {"uplink0": "net_null1", "uplink1": "net_null2"}, static_routes=True,
                              state_dir=str(tmp_path)) + "\n" + toml)
    with pytest.raises(ConfigError) as e:
        load_config(path, {})
    assert str(e.value) == f"{path}: {message}"


def test_the_auth_key_comes_from_a_file_less_one_newline_and_is_never_shown(tmp_path):
    path = tmp_path / "sled.toml"
    base = sled_toml("net_null0", {"uplink0": "net_null1", "uplink1": "net_null2"}, static_routes=True,
                     state_dir=str(tmp_path))
    (tmp_path / "key").write_bytes(b"s3cret-bfd-key\n")
    (tmp_path / "key1").write_bytes(b"uplink1-s3cret")
    path.write_text(base + f'\n[bfd]\nmode = "on"\nauth = "meticulous-keyed-sha1"\nauth_key_id = 9\n'
                           f'auth_key_file = "{tmp_path / "key"}"\n'
                           f'[[bfd_uplink]]\nname = "uplink1"\nauth = "keyed-sha1"\nauth_key_file = "{tmp_path / "key1"}"\n')
    bfd = load_config(path, {}).bfd
    assert bfd.default.auth_args == (5, 9, b"s3cret-bfd-key")
    assert bfd.for_uplink("uplink1").auth_args == (4, 9, b"uplink1-s3cret")  # the key ID from [bfd]
    sessions = wanted_sessions(default_state(2), bfd)
    assert [(s.kind, s.uplink, s.settings.auth) for s in sessions] == [
        ("single-hop", "uplink0", "meticulous-keyed-sha1"), ("single-hop", "uplink1", "keyed-sha1"),
        ("multihop-geneve", "uplink0", "meticulous-keyed-sha1")]  # multi-hop: [bfd]'s, whichever uplink
    assert "s3cret" not in repr(bfd) and "s3cret" not in str(sessions)
    # the flags name the file, never the secret
    flags = load_config(path, {"bfd_auth": "keyed-sha1", "bfd_auth_key_id": "0"}).bfd.default
    assert flags.auth_args == (4, 0, b"s3cret-bfd-key")
    assert BfdSettings().auth_args == (0, 1, b"")


@pytest.mark.parametrize("content, message", [
    (b"", "holds 0 bytes (less a trailing newline), expected 1 to 20"),
    (b"\n", "holds 0 bytes (less a trailing newline), expected 1 to 20"),
    (b"x" * 21, "holds 21 bytes (less a trailing newline), expected 1 to 20"),
])
def test_an_auth_key_file_of_the_wrong_length_says_so_without_its_content(tmp_path, content, message):
    key = tmp_path / "key"
    key.write_bytes(content)
    path = tmp_path / "sled.toml"
    path.write_text(sled_toml("net_null0", {"uplink0": "net_null1", "uplink1": "net_null2"}, static_routes=True,
                              state_dir=str(tmp_path)) + f'\n[bfd]\nauth = "keyed-sha1"\nauth_key_file = "{key}"\n')
    with pytest.raises(ConfigError) as e:
        load_config(path, {})
    assert str(e.value) == f"{path}: bfd: BFD auth_key_file {key}: {message}"
