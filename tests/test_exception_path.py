"""The exception path: an uplink's non-Geneve frames reach a kernel tap named after it, and what the
kernel sends on that tap leaves the uplink, so a routing daemon on the host talks to its peers.

In process: a ring uplink (the test plays the switch: it injects and collects frames) whose exception
port is a real net_tap interface, moved into a namespace that plays the host kernel (a link-local
address, IPv6 on). Through the CLI: `opte-fast run --exception-path` creates one kernel interface per
uplink, named after it, and removes them when it stops; `--no-exception-path` creates none; with
`--netns NS` they are moved into NS, where the routing daemon runs, on every start.

Without an exception port a non-Geneve frame is dropped as `not_geneve`: tests/test_inbound.py
(`test_drop_reasons[wrong-udp-port]`, `test_solicitations_not_to_answer_are_not_answered`).

net_tap quirks (as in tests/test_tap.py): the tap is moved into its namespace only after
`Dataplane.start()` and brought up again there; while it is still up in the root namespace, and once
it is up in its own, the kernel sends MLD reports and the like on it, which the data plane rightly
forwards out of the uplink, so frames collected from the uplink are filtered by type.
"""
from __future__ import annotations

import contextlib
import ipaddress
import json
import secrets
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from scapy.all import UDP, Ether, ICMPv6ND_NA, ICMPv6ND_NS, ICMPv6NDOptDstLLAddr, ICMPv6NDOptSrcLLAddr, IPv6, Raw, raw
from scapy.layers.inet import IP
from scapy.layers.inet6 import in6_chksum, in6_getnsma, in6_getnsmac

from opte_fast.controlplane.dataplane import Dataplane, DataplaneError, DataplaneOptions
from opte_fast.controlplane.state import mac_bytes
from tests.support.cli import OPTE_FAST, sled_toml
from tests.support.geneve import BOUNDARY_MAC, encapsulate
from tests.support.netns import Netns, namespace, run
from tests.support.sled import (
    GATEWAY_MAC,
    GUEST_IP4,
    GUEST_MAC,
    GUEST_VNI,
    SWITCH_MACS,
    TEP,
    UNDERLAY,
    default_state,
    delta,
)
from tests.support.tap import tap_devargs
from tests.support.tools import needs_root

DDM_PORT = 0xDDD
KERNEL_LL = "fe80::ddd:1"     # the host kernel's address on the uplink (the routing daemon's)
PEER_LL = "fe80::aa:1"        # the switch's routing daemon
PEER_MAC = SWITCH_MACS[0]
ROOT = Path(__file__).resolve().parent.parent


@dataclass
class HostSled:
    dp: Dataplane
    ns: Netns            # the host kernel's side
    tap: str             # the kernel interface of uplink0
    tap_mac: str
    ifindex: int

    def inject(self, frames: list[bytes], timeout_s: float = 5.0) -> None:
        """Inject on the ring uplink; return once the worker has taken them all from it (only
        rx_uplink_packets counts: the kernel writes frames into the tap whenever it likes)."""
        before = self.dp.counters()["rx_uplink_packets"]
        assert self.dp.inject("uplink0", frames) == len(frames), "ring full"
        deadline = time.monotonic() + timeout_s
        while self.dp.counters()["rx_uplink_packets"] < before + len(frames):
            assert time.monotonic() < deadline, "the data plane did not take the frames from the uplink"
            time.sleep(0.001)
        self.dp.quiesce()

    def uplink_until(self, match, timeout_s: float = 5.0) -> tuple[bytes, list[bytes]]:
        """Collect from the ring uplink until a frame matches; (that frame, everything collected)."""
        seen: list[bytes] = []
        deadline = time.monotonic() + timeout_s
        while True:
            for frame in self.dp.collect("uplink0"):
                seen.append(frame)
                if match(frame):
                    return frame, seen
            if time.monotonic() >= deadline:
                raise TimeoutError("no matching frame left the uplink; seen:\n"
                                   + "\n".join(Ether(f).summary() for f in seen[-20:]))
            time.sleep(0.005)

    def udp_socket(self, addr: str, port: int) -> socket.socket:
        sock = self.ns.open_socket(socket.AF_INET6, socket.SOCK_DGRAM)
        sock.bind((addr, port, 0, self.ifindex))
        sock.settimeout(5)
        return sock


@contextlib.contextmanager
def host_sled() -> Iterator[HostSled]:
    """guest0 and uplink0 on rings; uplink0's exception port a net_tap in a 'host' namespace."""
    tap = f"ofte{secrets.token_hex(3)}"
    with namespace("exc") as ns:
        dp = Dataplane(DataplaneOptions(underlay_addr=UNDERLAY, flow_capacity=4096, n_mbufs=4095))
        try:
            dp.add_ring_port("guest0", "guest")
            dp.add_ring_port("uplink0", "uplink")
            dp.add_port("uplink0.kernel", tap_devargs(tap), "exception")
            dp.set_exception("uplink0", "uplink0.kernel")
            dp.commit(default_state(1))
            dp.start([1])
            # Moved only after start: net_tap configures its interface by name in the probing namespace.
            run(["ip", "link", "set", tap, "netns", ns.name])
            ns.sysctl(**{f"net__ipv6__conf__{tap}__accept_dad": 0,
                         f"net__ipv6__conf__{tap}__router_solicitations": 0})
            ns.add_address(tap, f"{KERNEL_LL}/64")
            ns.link_up(tap)
            (link,) = json.loads(ns.ip("-j", "link", "show", tap))
            sled = HostSled(dp, ns, tap, link["address"], link["ifindex"])
            _wait_address_usable(ns, tap)
            yield sled
        finally:
            dp.close()


def _wait_address_usable(ns: Netns, tap: str, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        (info,) = json.loads(ns.ip("-j", "-6", "addr", "show", "dev", tap))
        addrs = [a for a in info.get("addr_info", []) if a.get("local") == KERNEL_LL]
        if addrs and not addrs[0].get("tentative") and info.get("operstate") in ("UP", "UNKNOWN"):
            return
        assert time.monotonic() < deadline, f"{KERNEL_LL} not usable on {tap}: {info}"
        time.sleep(0.02)


def solicitation(target: str) -> bytes:
    group = in6_getnsma(ipaddress.IPv6Address(target).packed)
    return raw(Ether(src=PEER_MAC, dst=in6_getnsmac(group))
               / IPv6(src=PEER_LL, dst=str(ipaddress.IPv6Address(group)), hlim=255)
               / ICMPv6ND_NS(tgt=target) / ICMPv6NDOptSrcLLAddr(lladdr=PEER_MAC))


def is_advert(frame: bytes, target: str) -> bool:
    pkt = Ether(frame)
    return ICMPv6ND_NA in pkt and pkt[ICMPv6ND_NA].tgt == target


def is_udp_from(frame: bytes, sport: int) -> bool:
    pkt = Ether(frame)
    return IPv6 in pkt and pkt[IPv6].nh == 17 and UDP in pkt and pkt[UDP].sport == sport


@needs_root("taps and namespaces")
def test_uplink_control_traffic_reaches_the_kernel_and_the_kernel_answers_through_the_uplink(eal) -> None:
    with host_sled() as sled:
        # -- NDP: the switch resolves the host's link-local address; the kernel answers -------------
        before = sled.dp.counters()
        sled.inject([solicitation(KERNEL_LL)])
        na, _ = sled.uplink_until(lambda f: is_advert(f, KERNEL_LL))
        pkt = Ether(na)
        assert (pkt.src, pkt.dst) == (sled.tap_mac, PEER_MAC)
        assert (pkt[IPv6].src, pkt[IPv6].dst, pkt[IPv6].hlim) == (KERNEL_LL, PEER_LL, 255)
        assert pkt[ICMPv6ND_NA].S == 1 and pkt[ICMPv6NDOptDstLLAddr].lladdr == sled.tap_mac
        c = delta(sled.dp.counters(), before)
        # only the solicitation came in on the uplink; the kernel may send its own MLD reports besides the answer
        assert c["tx_exception_packets"] == 1 and c.get("rx_exception_packets", 0) >= 1, c
        assert c.get("ndp_replies", 0) == 0 and c.get("not_geneve", 0) == 0, c

        # -- ddm discovery (UDP 0xddd) from the switch reaches a socket of the host --------------
        # The kernel's neighbor entry for the peer is fixed, so it sends no solicitations of its own.
        sled.ns.ip("neigh", "replace", PEER_LL, "lladdr", PEER_MAC, "dev", sled.tap, "nud", "permanent")
        payload = b"ddm-advertise " + secrets.token_bytes(16)
        with sled.udp_socket("::", DDM_PORT) as host:
            sled.inject([raw(Ether(src=PEER_MAC, dst=sled.tap_mac) / IPv6(src=PEER_LL, dst=KERNEL_LL, hlim=255)
                             / UDP(sport=DDM_PORT, dport=DDM_PORT) / Raw(payload))])
            data, (src, sport, _, scope) = host.recvfrom(65535)
        assert (data, src.split("%")[0], sport, scope) == (payload, PEER_LL, DDM_PORT, sled.ifindex)

        # -- the host's daemon sends to its peer: the frame leaves the uplink unchanged ----------
        reply = b"ddm-solicit " + secrets.token_bytes(16)
        sport = 40000 + secrets.randbelow(20000)
        with sled.ns.capture(sled.tap) as capture, sled.udp_socket(KERNEL_LL, sport) as host:
            before = sled.dp.counters()
            host.sendto(reply, (PEER_LL, DDM_PORT, 0, sled.ifindex))
            out, _ = sled.uplink_until(lambda f: is_udp_from(f, sport))
            sent = capture.wait_for(lambda f: f.outgoing and is_udp_from(f.data, sport), timeout=5)
        assert out == sent.data, f"changed on the way:\n{sent.data.hex()}\n{out.hex()}"
        pkt = Ether(out)
        assert (pkt.src, pkt.dst, pkt[IPv6].src, pkt[IPv6].dst) == (sled.tap_mac, PEER_MAC, KERNEL_LL, PEER_LL)
        assert (pkt[UDP].dport, bytes(pkt[UDP].payload)) == (DDM_PORT, reply)
        udp_bytes = raw(pkt[IPv6].payload)[:pkt[UDP].len]
        assert pkt[UDP].chksum != 0 and in6_chksum(17, pkt[IPv6], udp_bytes) == 0
        c = delta(sled.dp.counters(), before)
        # the kernel may send its own MLD reports besides the datagram
        assert c.get("rx_exception_packets", 0) >= 1 and c.get("tx_uplink_packets", 0) >= 1, c

        # -- Geneve for this sled on the same uplink still goes to the guest, not the kernel -----
        inner = raw(Ether(src=BOUNDARY_MAC, dst=GUEST_MAC) / IP(src="203.0.113.1", dst=str(GUEST_IP4))
                    / UDP(sport=53, dport=40000) / Raw(b"to the guest"))
        uplink_mac = next(p["mac"] for p in sled.dp.ports() if p["name"] == "uplink0")
        geneve = raw(encapsulate(inner, eth_src=PEER_MAC, eth_dst=uplink_mac, src=str(TEP),
                                 dst=str(UNDERLAY), vni=GUEST_VNI))
        with sled.ns.capture(sled.tap) as capture:
            before = sled.dp.counters()
            sled.inject([geneve])
            assert sled.dp.collect("guest0") == [inner[:6] + mac_bytes(GATEWAY_MAC)
                                                 + inner[12:]]
            time.sleep(0.1)
            leaked = [f for f in capture.frames if f.incoming and b"to the guest" in f.data]
        c = delta(sled.dp.counters(), before)
        assert not leaked and c.get("tx_exception_packets", 0) == 0 and c["tx_guest_packets"] == 1, c

        # -- ... and the sled's own underlay address is still resolved by the data plane ---------
        before = sled.dp.counters()
        sled.inject([solicitation(str(UNDERLAY))])
        na, _ = sled.uplink_until(lambda f: is_advert(f, str(UNDERLAY)))
        pkt = Ether(na)
        assert (pkt.src, pkt[ICMPv6NDOptDstLLAddr].lladdr, pkt[IPv6].src) == (uplink_mac, uplink_mac, str(UNDERLAY))
        c = delta(sled.dp.counters(), before)
        assert c["ndp_replies"] == 1 and c.get("tx_exception_packets", 0) == 0, c


# --- through the CLI ----------------------------------------------------------------------------




def links(ns: Netns) -> set[str]:
    return {link["ifname"] for link in json.loads(ns.ip("-j", "link", "show"))}


@needs_root("taps and namespaces")
def test_run_creates_a_kernel_interface_per_uplink_only_with_the_exception_path(tmp_path) -> None:
    runs = {}
    with namespace("excli") as ns:  # the taps appear here, and go with it whatever happens
        for flag in ("--exception-path", "--no-exception-path"):
            tag = secrets.token_hex(3)
            names = (f"oftx{tag}a", f"oftx{tag}b")
            cfg = tmp_path / f"{tag}.toml"
            cfg.write_text(sled_toml("net_null0", {names[0]: "net_null1,no-rx=1", names[1]: "net_null2,no-rx=1"},
                                     static_routes=True))
            sock, prefix = tmp_path / f"{tag}.sock", f"oft-exc-{tag}"
            p = ns.popen(*OPTE_FAST, "run", "--config", str(cfg), "--route-source", "static", flag,
                         "--duration-s", "60", "--memory-mb", "1024", "--file-prefix", prefix,
                         "--control-socket", str(sock), stdout=-1, stderr=-1, cwd=ROOT)
            runs[flag] = (p, names, sock, prefix)
        try:
            for flag, (p, names, sock, _) in runs.items():
                deadline = time.monotonic() + 10
                while not sock.exists():  # serving: the ports are started
                    assert p.poll() is None, f"{flag}: exited {p.returncode}: {p.communicate()[1].decode()}"
                    assert time.monotonic() < deadline, f"{flag}: no control socket within 10 s"
                    time.sleep(0.05)
                present = links(ns) & set(names)
                if flag == "--exception-path":
                    assert present == set(names), (flag, links(ns))
                    ports = json.loads(subprocess.run([*OPTE_FAST, "ctl", "--socket", str(sock), "--json", "port",
                                                       "list"], capture_output=True, text=True, check=True,
                                                      cwd=ROOT).stdout)
                    uplink_macs = {port["name"]: port["mac"] for port in ports}
                    for name in names:
                        link = json.loads(ns.ip("-j", "link", "show", name))[0]
                        assert "UP" in link["flags"], name
                        # The kernel's side of an uplink has the uplink's own address.
                        assert link["address"] == uplink_macs[name], (name, link["address"], uplink_macs)
                else:
                    assert present == set(), (flag, links(ns))
            for flag, (p, names, _, prefix) in runs.items():
                p.send_signal(signal.SIGTERM)  # checked: stop now, however long the checks took
                out, err = p.communicate(timeout=15)
                assert p.returncode == 0, f"{flag}: exited {p.returncode}: {err.decode()}"
                assert links(ns) & set(names) == set(), (flag, links(ns))
                assert not Path(f"/var/run/dpdk/{prefix}").exists(), flag
        finally:
            for p, *_ in runs.values():
                if p.poll() is None:
                    p.kill()
                    p.wait()


@needs_root("taps and namespaces")
def test_run_with_netns_puts_the_kernel_interfaces_in_that_namespace_on_every_start(tmp_path) -> None:
    """`--netns NS`: the routing daemon runs in NS, so the uplinks' kernel interfaces are moved there, up
    and with the uplink's address, again after a restart, and go with the data plane when it stops."""
    tag = secrets.token_hex(3)
    names = (f"oftn{tag}a", f"oftn{tag}b")
    cfg = tmp_path / "sled.toml"
    cfg.write_text(sled_toml("net_null0", {names[0]: "net_null1,no-rx=1", names[1]: "net_null2,no-rx=1"},
                             static_routes=False))
    # opte-fast runs in a namespace of its own (where net_tap creates the interfaces), the daemon in another.
    with namespace("exchome") as home, namespace("excdaemon") as daemon:
        for start in ("first", "restart"):
            sock, prefix = tmp_path / f"{start}.sock", f"oft-excns-{tag}-{start}"
            p = home.popen(*OPTE_FAST, "run", "--config", str(cfg), "--route-source", "netlink",
                           "--netns", daemon.name, "--exception-path", "--duration-s", "60", "--memory-mb", "1024",
                           "--file-prefix", prefix, "--control-socket", str(sock), stdout=-1, stderr=-1, cwd=ROOT)
            try:
                deadline = time.monotonic() + 10
                while not sock.exists():  # serving: the interfaces were moved before the socket opened
                    assert p.poll() is None, f"{start}: exited {p.returncode}: {p.communicate()[1].decode()}"
                    assert time.monotonic() < deadline, f"{start}: no control socket within 10 s"
                    time.sleep(0.05)
                assert links(daemon) & set(names) == set(names), (start, links(daemon))
                assert links(home) & set(names) == set(), (start, links(home))
                ports = json.loads(subprocess.run([*OPTE_FAST, "ctl", "--socket", str(sock), "--json", "port", "list"],
                                                  capture_output=True, text=True, check=True, cwd=ROOT).stdout)
                uplink_macs = {port["name"]: port["mac"] for port in ports}
                assert {port["name"]: port["link"] for port in ports} == {
                    "guest0": "up", names[0]: "up", names[1]: "up", f"{names[0]}.kernel": None,
                    f"{names[1]}.kernel": None}
                for name in names:
                    (link,) = json.loads(daemon.ip("-j", "link", "show", name))
                    assert "UP" in link["flags"] and link["address"] == uplink_macs[name], (start, name, link)
                    assert "NO-CARRIER" not in link["flags"], (start, name, link)
                p.send_signal(signal.SIGTERM)  # checked: stop now, however long the checks took
                out, err = p.communicate(timeout=15)
            finally:
                if p.poll() is None:
                    p.kill()
                    p.wait()
            assert p.returncode == 0, f"{start}: exited {p.returncode}: {err.decode()}"
            assert links(daemon) & set(names) == set() and links(home) & set(names) == set(), start
            assert not Path(f"/var/run/dpdk/{prefix}").exists(), start


# --- joining rules (no kernel needed: ring ports stand in for taps) --------------------------------

def test_an_exception_port_joined_to_no_uplink_is_refused_at_start(eal) -> None:
    # Its frames would otherwise be sent to port "none" (an out-of-bounds transmit queue).
    dp = Dataplane(DataplaneOptions(underlay_addr=UNDERLAY, flow_capacity=4096, n_mbufs=4095))
    try:
        dp.add_ring_port("guest0", "guest")
        dp.add_ring_port("uplink0", "uplink")
        dp.add_ring_port("uplink0.kernel", "exception")
        dp.commit(default_state(1))
        with pytest.raises(DataplaneError, match="exception port uplink0.kernel is joined to no uplink"):
            dp.start([1])
    finally:
        dp.close()


def test_one_tap_per_uplink_and_one_uplink_per_tap(eal) -> None:
    dp = Dataplane(DataplaneOptions(underlay_addr=UNDERLAY, flow_capacity=4096, n_mbufs=4095))
    try:
        for name, role in (("guest0", "guest"), ("uplink0", "uplink"), ("uplink1", "uplink"),
                           ("uplink0.kernel", "exception"), ("uplink1.kernel", "exception")):
            dp.add_ring_port(name, role)
        with pytest.raises(DataplaneError, match="joins an uplink to an exception port"):
            dp.set_exception("uplink0.kernel", "uplink0")
        dp.set_exception("uplink0", "uplink0.kernel")
        dp.set_exception("uplink0", "uplink0.kernel")  # again: no change, no error
        with pytest.raises(DataplaneError, match="joined already"):
            dp.set_exception("uplink1", "uplink0.kernel")
        with pytest.raises(DataplaneError, match="joined already"):
            dp.set_exception("uplink0", "uplink1.kernel")
        dp.set_exception("uplink1", "uplink1.kernel")
        dp.commit(default_state(2))
        dp.start([1])
        # Each tap's frames leave by its own uplink only.
        frame = raw(Ether(src="02:00:00:00:0d:01", dst=PEER_MAC) / IPv6(src=KERNEL_LL, dst=PEER_LL)
                    / UDP(sport=DDM_PORT, dport=DDM_PORT) / Raw(b"from tap 1"))
        assert dp.inject("uplink1.kernel", [frame]) == 1
        deadline = time.monotonic() + 5
        while dp.counters()["rx_exception_packets"] < 1:
            assert time.monotonic() < deadline
            time.sleep(0.001)
        dp.quiesce()
        assert (dp.collect("uplink1"), dp.collect("uplink0")) == ([frame], [])
    finally:
        dp.close()
