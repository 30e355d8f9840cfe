"""Open vSwitch (userspace datapath) playing a boundary-services switch for end-to-end tests.

    sled ns                switch ns i (one OVS each)                          internet ns
    sl<i> ──veth── ul0 ∈ br-ul (TEP on br-ul's port)   gnv0 (geneve) ∈ br-tun ∋ inet0 ──veth── up<i>
                                                                     host addresses on lo, default
                                                                     route over every up<i>

Geneve from the sled to the TEP with VNI 99 is decapsulated and handed to the internet host (inner
dst MAC rewritten to its link's MAC). Traffic from the internet host to a guest's IP is encapsulated
toward the guest's sled with the guest's VNI, inner dst = guest MAC, inner src = the boundary-
services MAC a8:40:25:77:77:77, and the Oxide External option (class 0x0129 type 0x00, no body).

How OVS learns the sled's MAC (it needs it to send anything to the sled):
- it learns it from the outer Ethernet source of every Geneve frame it decapsulates from the sled;
- `boundary_lab(seed_neighbors=True)` (the default) also seeds it with `tnl/neigh/set`, so the
  internet side may speak first;
- otherwise OVS sends a neighbor solicitation out of br-ul, drops the packet that needed it, and
  the sled (opte-fast, or the test's `Netns.responder`) must answer.

Each `OvsSwitch` runs ovsdb-server and ovs-vswitchd as child processes inside its namespace, with
every file (db, sockets, logs) in a private temporary directory that `stop()` removes.
"""
from __future__ import annotations

import contextlib
import ctypes
import os
import socket
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from scapy.packet import Packet

from opte_fast.tools.ovs import Ovs, OvsError

from .geneve import BOUNDARY_MAC, BOUNDARY_VNI, OXIDE_CLASS, OXIDE_EXTERNAL, decode, encapsulate
from .netns import Capture, Frame, Netns, namespace, veth

# The plain build; /usr/sbin/ovs-vswitchd may be the DPDK one (openvswitch-switch-dpdk), which
# starts slower and is not needed for kernel veths.
PLAIN_VSWITCHD = Path("/usr/lib/openvswitch-switch/ovs-vswitchd")
VSWITCHD = str(PLAIN_VSWITCHD) if PLAIN_VSWITCHD.exists() else "ovs-vswitchd"
GENEVE_OFPORT = 1
INTERNET_OFPORT = 2
TEP = "fd00:99::1"
TEP_PREFIX_LEN = 16
SLED = "fd00:0:f7:101::1"
GATEWAY_V4 = "169.254.0.1"
GATEWAY_V6 = "fe80::1"
SYS_PIDFD_GETFD = 438  # one number on every architecture since 5.1's unified table (alpha: +110)
SO_RCVBUFFORCE = 33
_libc = ctypes.CDLL(None, use_errno=True)


class OvsSwitch(Ovs):
    """ovsdb-server + ovs-vswitchd (userspace datapath) in namespace `ns`, state in a temp dir
    (opte_fast.tools.ovs). Use as a context manager, or `start()`/`stop()`."""

    def __init__(self, ns: Netns) -> None:
        super().__init__(ns.name, VSWITCHD)
        self.ns = ns

    def ofctl(self, *args: str) -> str:
        return super().ofctl("-O", "OpenFlow15", *args)

    def enlarge_receive_buffers(self, size: int = 8 << 20) -> int:
        """Give every AF_PACKET socket of ovs-vswitchd a receive buffer of `size` bytes; returns how
        many sockets. Call it once the ports exist (OVS opens one socket per kernel port).

        The userspace datapath reads kernel ports (veths, taps) through AF_PACKET sockets from its
        main thread, at most 32 frames per port per pass of its main loop. The default buffer
        (net.core.rmem_default, about 90 full-size frames, not settable inside a namespace)
        overflows whenever a TCP sender's burst meets a pass of a few ms, and OVS counts the loss
        nowhere: the port's kernel RX count exceeds `dpif-netdev/pmd-stats-show`'s "packets
        received". An 8 MB/s download lost 5-10 % of its segments so. The sockets are OVS's, so
        they are borrowed with pidfd_getfd(2) and enlarged with SO_RCVBUFFORCE.
        """
        pid = self.vswitchd_pid
        lines = Path(f"/proc/{pid}/net/packet").read_text().splitlines()
        column = lines[0].split().index("Inode")
        inodes = {f"socket:[{line.split()[column]}]" for line in lines[1:]}
        enlarged = 0
        pidfd = os.pidfd_open(pid)
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                try:
                    if os.readlink(f"/proc/{pid}/fd/{fd}") not in inodes:
                        continue
                except FileNotFoundError:  # closed meanwhile
                    continue
                local = _libc.syscall(SYS_PIDFD_GETFD, pidfd, int(fd), 0)
                if local < 0:
                    errno = ctypes.get_errno()
                    raise OSError(errno, f"pidfd_getfd: {os.strerror(errno)}")
                with socket.socket(fileno=local) as sock:
                    sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, size)
                enlarged += 1
        finally:
            os.close(pidfd)
        return enlarged

    def diagnostics(self, traces: Sequence[tuple[str, str]] = ()) -> str:
        """Flows, datapath flows, tunnel state, drop counters and the log tail, for a failure
        message; `traces` are (bridge, "flow [packet-hex]") pairs given to `ofproto/trace`."""
        sections: list[tuple[str, Callable[[], str]]] = [
            (f"ofproto/trace {bridge} {flow}", partial(self.appctl, "ofproto/trace", bridge, *flow.split()))
            for bridge, flow in traces]
        sections += [(f"ovs-ofctl dump-flows {bridge}", partial(self.ofctl, "dump-flows", bridge))
                     for bridge in ("br-ul", "br-tun")]
        sections += [(command, partial(self.appctl, *command.split()))
                     for command in ("dpctl/dump-flows", "tnl/neigh/show", "tnl/ports/show -v", "ovs/route/show")]
        sections.append(("coverage/show, drops and errors only", lambda: "\n".join(
            line for line in self.appctl("coverage/show").splitlines() if "drop" in line or "error" in line)))
        sections.append((f"last lines of {self.log}", lambda: "\n".join(
            self.log.read_text(errors="replace").splitlines()[-20:])))
        report = [f"==== OVS in {self.ns.name}"]
        for title, produce in sections:
            try:
                text = produce()
            except (OvsError, OSError) as error:
                text = f"(failed: {error})"
            report.append(f"--- {title}\n{text.rstrip()}")
        return "\n".join(report)


@dataclass(frozen=True)
class Guest:
    """A VPC guest as boundary services sees it: replies for its IPs go to `sled` with `vni`."""
    mac: str = "02:08:20:00:00:05"
    ipv4: str = "10.0.0.5"
    ipv6: str = "fd11:22::5"
    vni: int = 0x1234
    sled: str = SLED


def configure_boundary_services(ovs: OvsSwitch, *, tep: str, prefix_len: int, underlay_mac: str,
                                uplink: str, internet_port: str, internet_mac: str,
                                guests: Sequence[Guest]) -> None:
    """br-ul: `uplink` + the TEP on br-ul's own port; br-tun: geneve + `internet_port`, and flows.

    The TEP gets a wide prefix on purpose: OVS 3.1 routes a tunnel only toward a destination inside
    a subnet of br-ul (or via a gateway it can resolve), and the sleds' addresses are in it.
    """
    ovs.vsctl("add-br", "br-ul", "--", "set", "bridge", "br-ul", "datapath_type=netdev",
              f"other-config:hwaddr={underlay_mac}", "--", "add-port", "br-ul", uplink)
    ovs.ns.add_address("br-ul", f"{tep}/{prefix_len}")
    ovs.ns.link_up("br-ul")
    ovs.vsctl("add-br", "br-tun", "--", "set", "bridge", "br-tun", "datapath_type=netdev", "fail_mode=secure",
              "--", "add-port", "br-tun", "gnv0", "--", "set", "interface", "gnv0", "type=geneve",
              "options:remote_ip=flow", "options:key=flow", f"ofport_request={GENEVE_OFPORT}",
              "--", "add-port", "br-tun", internet_port,
              "--", "set", "interface", internet_port, f"ofport_request={INTERNET_OFPORT}")
    ovs.ofctl("add-tlv-map", "br-tun",
              f"{{class={OXIDE_CLASS:#06x},type={OXIDE_EXTERNAL:#04x},len=0}}->tun_metadata0")
    ovs.ofctl("add-flow", "br-tun",
              f"in_port=gnv0,tun_id={BOUNDARY_VNI},"
              f"actions=mod_dl_src:{BOUNDARY_MAC},mod_dl_dst:{internet_mac},output:{internet_port}")
    for guest in guests:
        for match in (f"ip,nw_dst={guest.ipv4}", f"ipv6,ipv6_dst={guest.ipv6}"):
            ovs.ofctl("add-flow", "br-tun",
                      f"in_port={internet_port},{match},"
                      f"actions=set_field:{guest.sled}->tun_ipv6_dst,set_field:{guest.vni}->tun_id,"
                      f"set_field:0->tun_metadata0,mod_dl_src:{BOUNDARY_MAC},mod_dl_dst:{guest.mac},output:gnv0")


# -- the lab: sled ── switch(es) ── internet ------------------------------------------------------


@dataclass
class Internet:
    """The far side of boundary services: one host, addresses on `lo`, one link per switch."""
    ns: Netns
    links: list[str]
    ipv4: str = "203.0.113.1"
    ipv6: str = "2001:db8:1::1"

    def route_via(self, *links: str) -> None:
        """Default routes (v4 and v6) over `links`, multipath when several: replies leave there."""
        for family, gateway, extra in (("-4", GATEWAY_V4, ["onlink"]), ("-6", GATEWAY_V6, [])):
            hops = [word for link in links for word in ("nexthop", "via", gateway, "dev", link, *extra)]
            self.ns.ip(family, "route", "replace", "default", *hops)


@dataclass(frozen=True)
class Uplink:
    """A sled uplink: `ifname` with `mac` in the sled namespace, wired to `switch`'s br-ul, whose
    MAC (the sled's nexthop MAC) is `nexthop_mac`, with TEP `tep` behind it."""
    ifname: str
    mac: str
    nexthop_mac: str
    tep: str
    switch: OvsSwitch


@dataclass
class BoundaryLab:
    sled: Netns
    sled_address: str
    uplinks: list[Uplink]
    internet: Internet
    guests: tuple[Guest, ...]

    def outbound(self, inner: Packet, uplink: int = 0, *, vni: int = BOUNDARY_VNI, sport: int = 49152,
                 flow_label: int = 0) -> bytes:
        """The frame opte-fast sends on uplink number `uplink` toward that switch's TEP."""
        link = self.uplinks[uplink]
        return bytes(encapsulate(inner, eth_src=link.mac, eth_dst=link.nexthop_mac, src=self.sled_address,
                                 dst=link.tep, vni=vni, sport=sport, flow_label=flow_label))

    def expect(self, capture: Capture, match: Callable[[Frame], bool], timeout: float = 5.0,
               sent: bytes | None = None) -> Frame:
        """`capture.wait_for`, except that a timeout fails the test with every switch's
        diagnostics, including traces of `sent` (a frame the sled sent) through the switch."""
        try:
            return capture.wait_for(match, timeout)
        except TimeoutError as error:
            raise AssertionError(f"{error}\n{self.diagnostics(sent)}") from None

    def diagnostics(self, sent: bytes | None = None) -> str:
        """Every switch's state, traces of `sent` (outer on br-ul, inner on br-tun) and of the
        internet host's traffic to each guest."""
        traces = [("br-tun", f"in_port={INTERNET_OFPORT},{family},{src}={host},{dst}={guest_ip}")
                  for g in self.guests
                  for family, src, dst, host, guest_ip in (("ip", "nw_src", "nw_dst", self.internet.ipv4, g.ipv4),
                                                           ("ipv6", "ipv6_src", "ipv6_dst", self.internet.ipv6, g.ipv6))]
        geneve = decode(sent) if sent is not None else None
        if sent is not None:
            traces.insert(0, ("br-ul", f"in_port=ul0 {sent.hex()}"))
        if geneve is not None:
            decapsulated = (f"in_port={GENEVE_OFPORT},tun_id={geneve.vni},tun_ipv6_src={geneve.ip_src},"
                            f"tun_ipv6_dst={geneve.ip_dst} {geneve.inner_bytes.hex()}")
            traces.insert(1, ("br-tun", decapsulated))
        return "\n".join(f"uplink {index} ({link.ifname}):\n{link.switch.diagnostics(traces)}"
                         for index, link in enumerate(self.uplinks))


@contextlib.contextmanager
def boundary_lab(teps: Sequence[str] = (TEP,), *, guests: Sequence[Guest] = (Guest(),),
                 sled_address: str = SLED, seed_neighbors: bool = True) -> Iterator[BoundaryLab]:
    """A sled namespace with one uplink per entry of `teps`, each to its own OVS switch namespace
    serving that TEP, all switches linked to one internet namespace. Repeat a TEP for anycast.

    Uplink i: sled `sl<i>` (MAC 02:5e:00:00:00:0<i+1>) ── `ul0` of switch i (br-ul MAC, the sled's
    nexthop: a8:40:25:ff:00:0<i+1>); switch i `inet0` ── `up<i>` (02:1e:00:00:00:0<i+1>) in the
    internet namespace. Kernel IPv6 is off on sl<i>, ul0 and inet0, so the sled's links carry only
    the test's frames and OVS's (br-ul still sends MLD reports). Everything is deleted on exit.
    """
    with contextlib.ExitStack() as stack:
        sled = stack.enter_context(namespace("sled"))
        internet = Internet(stack.enter_context(namespace("inet")), links=[])
        internet.ns.sysctl(net__ipv4__conf__all__rp_filter=0, net__ipv4__conf__default__rp_filter=0)
        internet.ns.add_address("lo", f"{internet.ipv4}/32")
        internet.ns.add_address("lo", f"{internet.ipv6}/128")
        uplinks = []
        for index, tep in enumerate(teps):
            n = index + 1
            switch_ns = stack.enter_context(namespace(f"sw{index}"))
            sled_if, sled_mac, nexthop_mac = f"sl{index}", f"02:5e:00:00:00:{n:02x}", f"a8:40:25:ff:00:{n:02x}"
            link, link_mac = f"up{index}", f"02:1e:00:00:00:{n:02x}"
            veth(sled, sled_if, switch_ns, "ul0", a_mac=sled_mac)
            veth(internet.ns, link, switch_ns, "inet0", a_mac=link_mac)
            sled.sysctl(**{f"net__ipv6__conf__{sled_if}__disable_ipv6": 1})
            switch_ns.sysctl(net__ipv6__conf__ul0__disable_ipv6=1, net__ipv6__conf__inet0__disable_ipv6=1)
            internet.ns.disable_tx_checksum_offload(link)
            for gateway in (GATEWAY_V4, GATEWAY_V6):
                internet.ns.neighbour(link, gateway, BOUNDARY_MAC)
            internet.links.append(link)
            uplink = Uplink(sled_if, sled_mac, nexthop_mac, tep, stack.enter_context(OvsSwitch(switch_ns)))
            configure_boundary_services(uplink.switch, tep=tep, prefix_len=TEP_PREFIX_LEN,
                                        underlay_mac=nexthop_mac, uplink="ul0", internet_port="inet0",
                                        internet_mac=link_mac, guests=guests)
            if seed_neighbors:
                uplink.switch.appctl("tnl/neigh/set", "br-ul", sled_address, uplink.mac)
            uplinks.append(uplink)
        internet.route_via(*internet.links)
        yield BoundaryLab(sled, sled_address, uplinks, internet, tuple(guests))
