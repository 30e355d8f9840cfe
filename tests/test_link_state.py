"""An uplink's DPDK link state moves exactly the flows of the nexthops through it, as a withdrawn route
does, and brings them back when the link returns.

- Ring uplinks (net_ring has no LSC interrupt, so the link is polled): `rte_eth_dev_set_link_down`.
- net_tap uplinks (LSC interrupt): `ip link set dev X down` on the kernel side. The taps are probed and
  started from a thread inside a namespace of the test's, so net_tap's interface, its ioctl socket and
  its link-event netlink socket all live there.
- Without DPDK: how link state composes with route state, on the in-memory data plane.
- The exception tap's carrier follows its uplink's link.
- `opte-fast run` inside a namespace with net_tap uplinks: nexthops, `ctl port list`, the kernel tap's
  carrier and one log line per change.
"""
from __future__ import annotations

import contextlib
import dataclasses
import io
import ipaddress
import json
import secrets
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

from opte_fast.config.loader import PortSpec
from opte_fast.controlplane.controller import Controller
from opte_fast.controlplane.dataplane import Dataplane, DataplaneOptions
from opte_fast.controlplane.links import Links
from opte_fast.controlplane.routesync import in_netns
from opte_fast.controlplane.state import Nexthop, Route
from opte_fast.tools.sample import TEP_PREFIX
from tests.support.cli import OPTE_FAST, sled_toml
from tests.support.fake_dataplane import FakeDataplane
from tests.support.frames import udp_flows
from tests.support.netns import namespace
from tests.support.sled import UNDERLAY, Sled, default_state, uplink
from tests.support.tap import tap_devargs
from tests.support.tools import needs_root
from tests.support.wait import wait_for

ROOT = Path(__file__).resolve().parent.parent

N_FLOWS = 200


def nexthops(dp: Dataplane) -> dict[str, dict]:
    """Nexthops of the TEP route by uplink."""
    return {h["uplink"]: h for h in dp.paths()["nexthops"]}


def log_lines(log: io.StringIO) -> list[str]:
    return [line for line in log.getvalue().splitlines() if line.startswith("opte-fast: link ")]


@contextlib.contextmanager
def following(dp: Dataplane, uplinks: list[str], **kwargs) -> Iterator[tuple[Links, io.StringIO]]:
    log = io.StringIO()
    links = Links(dp, uplinks, log=log, **kwargs)
    links.commit(default_state(len(uplinks)))
    links.start()
    try:
        yield links, log
    finally:
        links.stop()


def fail_over_and_back(dp: Dataplane, links: Links, log: io.StringIO, down: str, other: str, set_link,
                       left=None) -> None:
    """The scenario both PMDs share: flows on both uplinks; `down`'s link goes down, then up again.
    `left(port)`, where the test can see the wire, counts the frames that left `port` since the last call."""
    left = left or (lambda port: None)
    flows = udp_flows(N_FLOWS)
    Sled(dp).send("guest0", flows)
    assert (left(down), left(other)) in ((None, None), (on := nexthops(dp)[down]["flows"], N_FLOWS - on))
    on_down = nexthops(dp)[down]["flows"]
    assert 0 < on_down < N_FLOWS and nexthops(dp)[other]["flows"] == N_FLOWS - on_down
    before = dp.counters()
    packets_before = nexthops(dp)[down]["packets"]

    set_link(down, False)
    wait_for(lambda: links.down == {down})
    assert nexthops(dp)[down]["up"] is False and nexthops(dp)[other]["up"] is True
    assert dp.link(down)["up"] is False
    Sled(dp).send("guest0", flows)
    after = dp.counters()
    # Exactly the flows that were on the downed uplink moved, and nothing more left through it.
    assert after["flows_migrated"] - before["flows_migrated"] == on_down
    assert after["flows_created"] == before["flows_created"]
    assert nexthops(dp)[down]["packets"] == packets_before
    assert nexthops(dp)[down]["flows"] == 0 and nexthops(dp)[other]["flows"] == N_FLOWS
    assert nexthops(dp)[other]["packets"] == 2 * N_FLOWS - on_down
    assert (left(down), left(other)) in ((None, None), (0, N_FLOWS))
    (line,) = log_lines(log)
    assert line.startswith(f"opte-fast: link {down} down: nexthops through it: 1, committed ")

    set_link(down, True)
    wait_for(lambda: links.down == set())
    assert nexthops(dp)[down]["up"] is True and dp.link(down)["up"] is True
    # Live flows stay where they are (rebalance after 10 s idle); new flows use the uplink again.
    Sled(dp).send("guest0", flows)
    new = udp_flows(N_FLOWS, first_port=20000)
    Sled(dp).send("guest0", new)
    end = dp.counters()
    assert end["flows_migrated"] == after["flows_migrated"] and end["flows_rebalanced"] == 0
    assert 0 < nexthops(dp)[down]["flows"] < N_FLOWS
    assert nexthops(dp)[down]["packets"] == packets_before + nexthops(dp)[down]["flows"]
    assert (left(down), left(other)) in ((None, None), (nexthops(dp)[down]["flows"],
                                                        2 * N_FLOWS - nexthops(dp)[down]["flows"]))
    assert [line.split(":")[1] for line in log_lines(log)] == [f" link {down} down", f" link {down} up (10000 Mbps)"]
    assert dp.link(down)["changes"] == 2


def test_a_ring_uplink_whose_link_goes_down_loses_exactly_its_flows_and_gets_new_ones_back(eal) -> None:
    dp = Dataplane(DataplaneOptions(underlay_addr=UNDERLAY, flow_capacity=4096, n_mbufs=8191))
    try:
        dp.add_ring_port("guest0", "guest")
        for i in range(2):
            dp.add_ring_port(uplink(i), "uplink")
        dp.start([1])
        assert dp.link("uplink1") == {**dp.link("uplink1"), "watched": True, "up": True, "by_interrupt": False,
                                      "changes": 0}
        with following(dp, ["uplink0", "uplink1"]) as (links, log):
            fail_over_and_back(dp, links, log, "uplink1", "uplink0", dp.set_link,
                               left=lambda port: len(dp.collect(port, frame_room=256)))
            assert log_lines(log)[0].endswith("(link polled)")
    finally:
        dp.close()


def tap_name(tag: str) -> str:
    return f"oftl{tag}"


@needs_root("taps and namespaces")
def test_a_tap_uplink_whose_kernel_side_goes_down_loses_exactly_its_flows_by_lsc_interrupt(eal) -> None:
    tag = secrets.token_hex(3)
    with namespace("lsc") as ns:
        # No kernel IPv6 on the taps: the kernel would send MLD and RS frames of its own into them.
        ns.sysctl(net__ipv6__conf__default__disable_ipv6=1)
        dp = Dataplane(DataplaneOptions(underlay_addr=UNDERLAY, flow_capacity=4096, n_mbufs=8191))
        try:
            dp.add_ring_port("guest0", "guest")
            for i in range(2):
                name = tap_name(f"{tag}{i}")
                in_netns(ns.name, lambda name=name, i=i: dp.add_port(uplink(i), tap_devargs(name), "uplink"))
            in_netns(ns.name, lambda: dp.start([1]))
            assert dp.link("uplink0")["by_interrupt"] and dp.link("uplink0")["up"]
            with following(dp, ["uplink0", "uplink1"]) as (links, log):
                def set_link(port: str, up: bool) -> None:
                    ns.ip("link", "set", "dev", tap_name(f"{tag}{port[-1]}"), "up" if up else "down")
                fail_over_and_back(dp, links, log, "uplink1", "uplink0", set_link)
                assert log_lines(log)[0].endswith("(link kept by LSC interrupt)")
        finally:
            dp.close()
        assert json.loads(ns.ip("-j", "link", "show")) == [json.loads(ns.ip("-j", "link", "show", "lo"))[0]]


@needs_root("taps and namespaces")
def test_the_kernel_tap_of_an_uplink_loses_its_carrier_with_the_uplink_link(eal) -> None:
    tap = tap_name(secrets.token_hex(3))
    with namespace("carrier") as ns:
        ns.sysctl(net__ipv6__conf__default__disable_ipv6=1)
        dp = Dataplane(DataplaneOptions(underlay_addr=UNDERLAY, flow_capacity=4096, n_mbufs=4095))
        try:
            dp.add_ring_port("guest0", "guest")
            dp.add_ring_port("uplink0", "uplink")
            in_netns(ns.name, lambda: dp.add_port("uplink0.kernel", tap_devargs(tap), "exception"))
            dp.set_exception("uplink0", "uplink0.kernel")
            in_netns(ns.name, lambda: dp.start([1]))

            def flags() -> list[str]:
                return json.loads(ns.ip("-j", "link", "show", tap))[0]["flags"]
            assert "NO-CARRIER" not in flags() and "UP" in flags()
            with following(dp, ["uplink0"], taps={"uplink0": tap}, netns=ns.name) as (links, _):
                dp.set_link("uplink0", False)
                wait_for(lambda: "NO-CARRIER" in flags())
                assert links.down == {"uplink0"} and dp.link("uplink0.kernel")["watched"] is False
                dp.set_link("uplink0", True)
                wait_for(lambda: "NO-CARRIER" not in flags())
                assert links.down == set() and "UP" in flags()
        finally:
            dp.close()


# --- how link state composes with route state (no DPDK) -----------------------------------------

HOPS = (Nexthop("uplink0", ipaddress.ip_address("fe80::1"), "02:aa:00:00:00:01"),
        Nexthop("uplink1", ipaddress.ip_address("fe80::2"), "02:aa:00:00:00:02"))


def test_a_nexthop_is_up_only_while_its_route_has_it_up_and_its_uplink_link_is_up() -> None:
    fake = FakeDataplane((PortSpec("guest0", "guest", "net_null0"), PortSpec("uplink0", "uplink", "net_null1"),
                          PortSpec("uplink1", "uplink", "net_null2")))
    log = io.StringIO()
    links = Links(fake, ["uplink0", "uplink1"], log=log)
    initial = default_state(0).replace(routes=(Route(TEP_PREFIX, HOPS),))
    controller = Controller(links, initial, ["uplink0", "uplink1"])
    links.start()

    def committed() -> dict[str, bool]:
        return {n.uplink: n.up for n in fake.state.routes[0].nexthops}

    def change(action) -> None:
        fake.committed.clear()
        action()
        assert fake.committed.wait(5)
    try:
        assert committed() == {"uplink0": True, "uplink1": True}
        change(lambda: fake.set_link("uplink1", False))
        assert committed() == {"uplink0": True, "uplink1": False}
        # The route withdraws uplink1's nexthop too, then the link comes back: still down by the route.
        withdrawn = (HOPS[0], dataclasses.replace(HOPS[1], up=False))
        change(lambda: controller.set_routes((Route(TEP_PREFIX, withdrawn),)))
        assert committed() == {"uplink0": True, "uplink1": False}
        change(lambda: fake.set_link("uplink1", True))
        assert committed() == {"uplink0": True, "uplink1": False} and links.down == set()
        # The route has it again, and its link is up: up.
        change(lambda: controller.set_routes((Route(TEP_PREFIX, HOPS),)))
        assert committed() == {"uplink0": True, "uplink1": True}
        # A route change while a link is down keeps that uplink's nexthops down.
        change(lambda: fake.set_link("uplink0", False))
        third = Nexthop("uplink0", ipaddress.ip_address("fe80::3"), "02:aa:00:00:00:03")
        change(lambda: controller.set_routes((Route(TEP_PREFIX, (*HOPS, third)),)))
        assert [(n.uplink, n.gateway.compressed, n.up) for n in fake.state.routes[0].nexthops] == [
            ("uplink0", "fe80::1", False), ("uplink1", "fe80::2", True), ("uplink0", "fe80::3", False)]
        # The Controller keeps the routes as route sync gave them: link state is applied below it.
        assert all(n.up for n in controller.state.routes[0].nexthops)
    finally:
        links.stop()
    assert [line.split(":")[1] for line in log_lines(log)] == [
        " link uplink1 down", " link uplink1 up (10000 Mbps)", " link uplink0 down"]
    ports = {p["name"]: p for p in links.ports()}
    assert (ports["uplink0"]["link"], ports["uplink1"]["link"], ports["guest0"]["link"]) == ("down", "up", None)
    assert (ports["uplink0"]["link_changes"], ports["uplink1"]["link_changes"]) == (1, 2)


def test_with_follow_link_off_a_link_is_shown_but_never_applied() -> None:
    # For net_tap uplinks moved into another namespace, whose link then reads down for good.
    fake = FakeDataplane((PortSpec("uplink0", "uplink", "net_null1"), PortSpec("uplink1", "uplink", "net_null2")))
    log = io.StringIO()
    links = Links(fake, ["uplink0", "uplink1"], log=log, follow=False)
    state = default_state(0).replace(routes=(Route(TEP_PREFIX, HOPS),))
    links.commit(state)
    fake.set_link("uplink1", False)
    links.start()  # would commit uplink1's nexthop down if it followed
    links.commit(state.replace(routes=(Route(TEP_PREFIX, HOPS[::-1]),)))
    links.stop()
    assert len(fake.commits) == 2 and all(n.up for n in fake.state.routes[0].nexthops)
    assert [p["link"] for p in links.ports()] == ["up", "down"] and links.down == set()
    assert log.getvalue() == ""


# --- opte-fast run, as an operator runs it ------------------------------------------------------

@needs_root("taps and namespaces")
def test_run_follows_a_tap_uplink_link_in_its_nexthops_its_kernel_tap_port_list_and_log(tmp_path) -> None:
    tag = secrets.token_hex(2)
    devices = {"uplink0": f"oftr{tag}0", "uplink1": f"oftr{tag}1"}
    cfg = tmp_path / "sled.toml"
    cfg.write_text(sled_toml("net_null0,no-rx=1", {u: tap_devargs(d) for u, d in devices.items()},
                             static_routes=True))
    sock, prefix = tmp_path / "ctl.sock", f"oft-lsrun-{tag}"
    # opte-fast runs inside the namespace, so its taps (uplinks and kernel taps alike) are created there.
    with namespace("lsrun") as ns:
        ns.sysctl(net__ipv6__conf__default__disable_ipv6=1)
        p = ns.popen(*OPTE_FAST, "run", "--config", str(cfg), "--route-source", "static", "--exception-path",
                     "--duration-s", "30", "--memory-mb", "1024", "--file-prefix", prefix,
                     "--control-socket", str(sock), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT)
        try:
            wait_for(lambda: sock.exists() or p.poll() is not None, timeout_s=15)
            assert p.poll() is None, p.communicate()[1].decode()

            def ctl(*args: str):
                return json.loads(subprocess.run([*OPTE_FAST, "ctl", "--socket", str(sock), "--json", *args],
                                                 capture_output=True, text=True, check=True, cwd=ROOT).stdout)

            def seen() -> tuple[dict, dict, bool]:
                """Per uplink: port list link, nexthop up; and whether kernel tap uplink1 has carrier."""
                links = {port["name"]: port["link"] for port in ctl("port", "list") if port["name"] in devices}
                hops = {hop["uplink"]: hop["up"] for hop in ctl("nexthops")}
                carrier = "NO-CARRIER" not in json.loads(ns.ip("-j", "link", "show", "uplink1"))[0]["flags"]
                return links, hops, carrier

            assert seen() == ({"uplink0": "up", "uplink1": "up"}, {"uplink0": True, "uplink1": True}, True)
            ns.ip("link", "set", "dev", devices["uplink1"], "down")
            wait_for(lambda: seen() == ({"uplink0": "up", "uplink1": "down"}, {"uplink0": True, "uplink1": False},
                                        False))
            ns.ip("link", "set", "dev", devices["uplink1"], "up")
            wait_for(lambda: seen() == ({"uplink0": "up", "uplink1": "up"}, {"uplink0": True, "uplink1": True},
                                        True))
            p.send_signal(signal.SIGTERM)
            _, err = p.communicate(timeout=15)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        assert p.returncode == 0, err.decode()
        lines = [line for line in err.decode().splitlines() if line.startswith("opte-fast: link ")]
        assert [line.split(":")[1] for line in lines] == [" link uplink1 down", " link uplink1 up (10000 Mbps)"]
        assert not Path(f"/var/run/dpdk/{prefix}").exists()
