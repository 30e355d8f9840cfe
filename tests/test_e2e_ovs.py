"""opte-fast end to end: a guest in a namespace, the real data plane in this process, two Open vSwitch
boundary-services switches and an internet host.

    guest ns            pytest process (DPDK)            switch ns i (OVS)              internet ns
    tap (guest IP) ──net_tap── guest0 │ uplink<i> ──net_tap── tap<i> ∈ br-ul ... br-tun ── up<i> ── host

Both ways of reaching boundary services run the same scenario (the `sled` fixture's parameter):
- "anycast" (mode b): `boundary_lab((TEP, TEP))`, one V2B TEP, one route to it over both uplinks;
  a switch fails by its nexthop being withdrawn from the route.
- "v2b" (mode a): `boundary_lab(V2B_TEPS)`, a TEP per switch, V2B 0.0.0.0/0 and ::/0 → both TEPs,
  each TEP reached by its own route via its own uplink; a switch fails by its TEP being marked
  down (`DesiredState.with_tep_state`, the control plane's "switch going down for maintenance").

The lab's sled-side veths are replaced by opte-fast's uplink taps (e2e_sled, tests/support/e2e.py): in each switch namespace `ul0` is
taken out of br-ul and deleted (with its sled end), and the tap, moved into the switch namespace
after the data plane started it, takes its place. The taps carry the MACs the lab seeded into OVS
as the sled's (`net_tap...,mac=`).

Scenario: ping through switch 0 (Geneve checked with tshark); 8 rate-limited downloads over both
switches; one switch fails mid-transfer (state committed, internet rerouted, link down): exactly its
flows move to the survivor (flow table, and outer destinations captured on the survivor's uplink);
it comes back while the downloads still run: no established flow moves (default 10 s rebalance
idle), and 16 new short downloads spread over both switches; every download checked by sha256; the
survivor's connections see no TCP retransmission (SenderRetransmits says how that is measured).

For the retransmission count to mean something the lab must lose nothing by itself: each switch's
OVS gets large AF_PACKET receive buffers (`OvsSwitch.enlarge_receive_buffers`), the internet host
sends no tail loss probes, and it returns each connection through the switch its outbound traffic
uses (`pin_return_paths`).
"""
from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from opte_fast.controlplane.dataplane import Dataplane
from tests.support.e2e import (
    GUEST,
    MODES,
    RETURN_TABLE,
    Pin,
    Sled,
    e2e_sled,
    needs_lab_tools,
    ping,
)
from tests.support.geneve import BOUNDARY_VNI, GENEVE_PORT
from tests.support.netns import Frame, Netns, run
from tests.support.ovs import Internet
from tests.support.tools import needs_root

HTTP_PORT = 8080
FILE_SIZE = 8 << 20
CONNECTIONS = 8
# per connection: each transfer lasts ~8 s, so failure and restore land mid-transfer even when a
# failed flow stalled in RTO backoff takes seconds to send again (and so to move)
RATE = "1000k"
NEW_CONNECTIONS = 16
SMALL_SIZE = 256 << 10
SMALL_RATE = "500k"  # ~0.5 s each: the new flows are in the table while the flows are sampled
# `python3 -m http.server` calls getfqdn() on its address at bind: in the internet namespace the
# resolver's queries go down the default route into the lab and time out. This one does not.
HTTP_SERVER = """
import functools, socketserver, sys
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
class Server(ThreadingHTTPServer):
    def server_bind(self):
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]
handler = functools.partial(SimpleHTTPRequestHandler, directory=sys.argv[3])
Server((sys.argv[1], int(sys.argv[2])), handler).serve_forever()
"""



# Two workers: the guest tap's two queues reach both, and flows are handed to their owner (handoff.h).
@pytest.fixture(params=[(mode, (1,)) for mode in sorted(MODES)] + [("anycast", (1, 2))],
                ids=lambda p: p[0] + ("-2-workers" if len(p[1]) > 1 else ""))
def sled(request: pytest.FixtureRequest, eal: None) -> Iterator[Sled]:
    with e2e_sled(*request.param) as s:
        yield s


# -- helpers --------------------------------------------------------------------------------------


def geneve_rows(pcap: Path) -> list[dict[str, str]]:
    fields = ["ipv6.src", "ipv6.dst", "udp.dstport", "geneve.vni", "ip.src", "ip.dst"]
    out = run(["tshark", "-r", str(pcap), "-d", f"udp.port=={GENEVE_PORT},geneve", "-Y", "geneve",
               "-T", "fields", "-E", "separator=|", *[a for f in fields for a in ("-e", f)]], timeout=60).stdout
    return [dict(zip(fields, line.split("|"))) for line in out.splitlines()]


def outer_destinations(frames: Iterable[Frame], sled_address: str, seen: dict[int, set[str]]) -> None:
    """Add to `seen` guest TCP source port → outer IPv6 destinations of the Geneve frames opte-fast
    sent on a captured uplink tap (they arrive on the tap's switch side, so not `outgoing`).
    Parsed by hand: scapy is too slow for the thousands of frames of a transfer."""
    sled = ipaddress.IPv6Address(sled_address).packed
    for frame in frames:
        d = frame.data
        if frame.outgoing or len(d) < 62 or d[12:14] != b"\x86\xdd" or d[20] != 17 or d[22:38] != sled:
            continue
        if struct.unpack("!H", d[56:58])[0] != GENEVE_PORT:
            continue
        inner = 62 + 8 + (d[62] & 0x3F) * 4
        ip = inner + 14
        if d[inner + 12:ip] != b"\x08\x00" or len(d) < ip + 24 or d[ip + 9] != 6:
            continue
        sport = struct.unpack("!H", d[ip + (d[ip] & 0x0F) * 4:][:2])[0]
        seen.setdefault(sport, set()).add(str(ipaddress.IPv6Address(d[38:54])))


def curl_flow_entries(dp: Dataplane) -> dict[int, dict]:
    """Guest source port → flow entry, for the guest's TCP flows to the HTTP server."""
    return {f["src_port"]: f for f in dp.flows(10000)
            if f["proto"] == 6 and f["dst_port"] == HTTP_PORT and f["src"] == GUEST.ipv4}


def curl_flows(dp: Dataplane) -> dict[int, Pin]:
    """Guest source port → (uplink, TEP), for the guest's TCP flows to the HTTP server."""
    return {port: (f["uplink"], f["tep"]) for port, f in curl_flow_entries(dp).items()}


class FlowWatch:
    """Every distinct pin each flow of the guest had, from `start` on, sampled from the flow table
    (a flow's path changes when its next packet passes; closed flows leave the table after 2 s)."""

    def __init__(self, dp: Dataplane, start: dict[int, Pin] | None = None) -> None:
        self.dp = dp
        self.history: dict[int, list[Pin]] = {port: [pin] for port, pin in (start or {}).items()}
        self.packets: dict[int, int] = {}   # the last packet count seen per flow
        self.present: set[int] = set(start or {})  # flows in the table at the last poll

    def poll(self) -> None:
        entries = curl_flow_entries(self.dp)
        self.present = set(entries)
        for port, f in entries.items():
            pin = (f["uplink"], f["tep"])
            pins = self.history.setdefault(port, [])
            if not pins or pins[-1] != pin:
                pins.append(pin)
            self.packets[port] = f["packets"]

    def last(self, port: int) -> Pin | None:
        return self.history[port][-1] if self.history.get(port) else None

    def follow(self, until: Callable[[], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not until() and time.monotonic() < deadline:
            self.poll()
            time.sleep(0.02)
        self.poll()


class SenderRetransmits:
    """Per-connection TCP retransmissions of the HTTP server, the data sender of the downloads.

    Method: a thread runs `ss -tiO` in the internet namespace every 50 ms and keeps, per guest
    port, the highest `retrans:<now>/<total>` total seen (ss omits the field while it is 0).
    The guest's own counters would say nothing here: in a download the guest only sends the
    request and ACKs, and pure ACKs are never retransmitted; a lost data segment or a lost ACK
    both show up as a retransmission by the sender. Limits: a retransmission in the last ~50 ms
    of a connection's life is not seen (failure effects come within an RTO, seconds before the
    transfers end), and the count is the sender's, so it also covers losses on the internet's
    side of the switches: the test routes each connection's return traffic through the switch
    its outbound traffic uses (pin_return_paths), so that a survivor's connection does not
    cross the failed switch in either direction.
    """

    PEER = re.compile(rf"\s{re.escape(GUEST.ipv4)}:(\d+)\s")
    RETRANS = re.compile(r"\sretrans:\d+/(\d+)")

    def __init__(self, ns: Netns, interval: float = 0.05) -> None:
        self.ns = ns
        self.interval = interval
        self.totals: dict[int, int] = {}
        self.samples = 0
        self.errors: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def sample(self) -> None:
        done = self.ns.run("ss", "-tinHO", "state", "connected", "sport", "=", f":{HTTP_PORT}", check=False)
        if done.returncode != 0:
            self.errors.append(done.stderr.strip())
            return
        with self._lock:
            for line in done.stdout.splitlines():
                if (peer := self.PEER.search(line)) is not None:
                    retrans = self.RETRANS.search(line)
                    port, total = int(peer[1]), int(retrans[1]) if retrans else 0
                    self.totals[port] = max(self.totals.get(port, 0), total)
            self.samples += 1

    def snapshot(self) -> dict[int, int]:
        self.sample()
        with self._lock:
            return dict(self.totals)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def __enter__(self) -> SenderRetransmits:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def loss_report(sled: Sled) -> str:
    """Where frames could have been lost: the data plane's counters, the taps' kernel counters
    (a tap's TX drops: its queue toward opte-fast overflowed), OVS's reads per switch."""
    lines = [f"data plane: {({k: v for k, v in sled.dp.counters().items() if v})}"]
    for link, ifname in zip(sled.lab.uplinks, sled.uplink_ifs):
        lines.append(link.switch.ns.ip("-s", "link", "show", ifname).strip())
        lines.append(link.switch.ns.ip("-s", "link", "show", "inet0").strip())
        lines.append(link.switch.appctl("dpif-netdev/pmd-stats-show").strip())
    lines.append(sled.guest_ns.ip("-s", "link", "show", sled.guest_if).strip())
    lines.append(sled.guest_ns.run("nstat", "-as", "TcpExtTCPOFOQueue", "TcpExtTCPRcvQDrop",
                                   "TcpExtTCPOFODrop", "TcpExtPruneCalled", check=False).stdout.strip())
    return "\n".join(lines)


def pin_return_paths(inet: Internet, pins: dict[int, int]) -> None:
    """Internet → guest traffic of connection `port` through switch `pins[port]` (rules on the
    guest's port into return table 100+i). A boundary switch forwards statelessly and the
    internet's multipath hashes on addresses only, so without this every connection's data
    would come back through one switch, whichever opte-fast sends its ACKs through."""
    for port, switch in pins.items():
        inet.ns.ip("-4", "rule", "add", "ipproto", "tcp", "sport", str(HTTP_PORT), "dport", str(port),
                   "table", str(RETURN_TABLE + switch))


@dataclass
class Downloads:
    processes: list[subprocess.Popen[bytes]]
    outputs: list[Path]

    def running(self) -> bool:
        return any(p.poll() is None for p in self.processes)

    def finish(self, timeout: float = 60) -> list[tuple[int, str]]:
        results = []
        for p in self.processes:
            _, stderr = p.communicate(timeout=timeout)
            results.append((p.returncode, stderr.decode(errors="replace")))
        return results

    def digests(self) -> list[str | None]:
        return [hashlib.sha256(o.read_bytes()).hexdigest() if o.exists() else None for o in self.outputs]


class WebServer:
    """The HTTP server in the internet namespace serving random files from a temporary directory."""

    def __init__(self, inet: Internet, served: Path, log: Path) -> None:
        self.inet, self.served, self.log = inet, served, log
        self.digests: dict[str, str] = {}

    def add(self, name: str, size: int) -> None:
        payload = os.urandom(size)
        (self.served / name).write_bytes(payload)
        self.digests[name] = hashlib.sha256(payload).hexdigest()

    def download(self, ns: Netns, name: str, count: int, rate: str, tag: str) -> Downloads:
        outputs = [self.served / f"{tag}{i}" for i in range(count)]
        processes = [ns.popen("curl", "-sS", "--fail", "--max-time", "60", "--limit-rate", rate, "-o", str(out),
                              f"http://{self.inet.ipv4}:{HTTP_PORT}/{name}",
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                     for out in outputs]
        return Downloads(processes, outputs)


@contextlib.contextmanager
def web_server(inet: Internet, tmp_path: Path) -> Iterator[WebServer]:
    served = Path(tempfile.mkdtemp(prefix="oft-e2e-www-"))
    log_path = tmp_path / "http.log"
    try:
        with open(log_path, "wb") as log:
            server = inet.ns.popen(sys.executable, "-c", HTTP_SERVER, inet.ipv4, str(HTTP_PORT), str(served),
                                   stdout=log, stderr=log)
            try:
                deadline = time.monotonic() + 10
                while inet.ns.run("ss", "-Hltn", f"sport = :{HTTP_PORT}").stdout.strip() == "":
                    assert server.poll() is None and time.monotonic() < deadline, \
                        f"http.server did not start: {log_path.read_text()}"
                    time.sleep(0.05)
                yield WebServer(inet, served, log_path)
            finally:
                server.terminate()
                server.wait(timeout=5)
    finally:
        shutil.rmtree(served, ignore_errors=True)


# -- the test -------------------------------------------------------------------------------------


@needs_root("namespaces, taps and Open vSwitch")
@needs_lab_tools
def test_guest_reaches_the_internet_through_two_ovs_switches_and_survives_losing_one(
        sled: Sled, tmp_path: Path) -> None:
    lab, dp = sled.lab, sled.dp
    inet = lab.internet

    # -- ping through switch 0 only, with Geneve captured on uplink 0 for tshark ----------------
    inet.route_via(inet.links[0])  # replies come back through switch 0 too
    dp.commit(sled.state([0]))
    sw0 = lab.uplinks[0].switch.ns
    with sw0.capture(sled.uplink_ifs[0]) as capture:
        answered = ping(sled.guest_ns, inet.ipv4)
        time.sleep(0.2)
        pcap = tmp_path / "uplink0.pcap"
        capture.write_pcap(pcap)
    assert answered == [1, 2, 3], f"echo replies {answered}\n{dp.counters()}\n{lab.diagnostics()}"
    rows = geneve_rows(pcap)
    outbound = [r for r in rows if r["ipv6.dst"] == lab.uplinks[0].tep]
    inbound = [r for r in rows if r["ipv6.dst"] == lab.sled_address]
    assert outbound and all(int(r["geneve.vni"], 0) == BOUNDARY_VNI and r["ip.src"] == GUEST.ipv4
                            for r in outbound), rows
    assert inbound and all(int(r["geneve.vni"], 0) == GUEST.vni and r["ip.dst"] == GUEST.ipv4
                           for r in inbound), rows
    assert len(outbound) + len(inbound) == len(rows), f"Geneve to another TEP: {rows}"

    # -- both switches in service; long downloads ------------------------------------------------
    dp.commit(sled.state())
    inet.route_via(*inet.links)
    with web_server(inet, tmp_path) as www, SenderRetransmits(inet.ns) as retransmits:
        www.add("blob", FILE_SIZE)
        www.add("small", SMALL_SIZE)
        long = www.download(sled.guest_ns, "blob", CONNECTIONS, RATE, "long")
        # wait until every connection has a flow and data is moving
        deadline = time.monotonic() + 10
        while len(before := curl_flows(dp)) < CONNECTIONS or sum(o.exists() and o.stat().st_size > 0
                                                                  for o in long.outputs) < CONNECTIONS:
            assert time.monotonic() < deadline, f"flows {before}, counters {dp.counters()}"
            time.sleep(0.05)
        before = curl_flows(dp)
        assert all(pin in (sled.pin(0), sled.pin(1)) for pin in before.values()), before
        pin_return_paths(inet, {port: int(uplink[-1]) for port, (uplink, _) in before.items()})
        time.sleep(0.5)
        before = curl_flows(dp)
        per_switch = [[p for p, pin in before.items() if pin == sled.pin(i)] for i in (0, 1)]
        # fail the switch that carries flows; prefer one that leaves flows on the survivor
        fi = max((0, 1), key=lambda i: (0 < len(per_switch[i]) < CONNECTIONS, len(per_switch[i])))
        si = 1 - fi
        failed, survived = per_switch[fi], per_switch[si]
        print(f"[{sled.mode}] flows per switch before the failure: {per_switch}; failing switch {fi}")
        retrans_before = retransmits.snapshot()
        counters_before = dp.counters()
        packets_at_failure = {p: f["packets"] for p, f in curl_flow_entries(dp).items()}

        # -- the switch fails ---------------------------------------------------------------------
        # Captured from before the failure: the packet that moves a failed flow may leave at once,
        # and a connection that then stalls sends its next one seconds later.
        with lab.uplinks[si].switch.ns.capture(sled.uplink_ifs[si]) as capture:
            sled.take_down(fi, si)
            assert long.running() and any(o.stat().st_size < FILE_SIZE for o in long.outputs), \
                "failover came after the transfers"
            # A flow moves with its next packet: wait until each failed one has, in the flow table and
            # on the survivor's uplink. A rate-limited download may pause, and a segment lost with the
            # switch stalls its connection for an RTO, 200 ms doubling on every loss: a connection
            # that lost two or three in a row sends its next packet seconds later.
            during_failure = FlowWatch(dp, before)
            destinations: dict[int, set[str]] = {}
            parsed = 0

            def ended_before_failure(p: int) -> bool:
                # Its transfer was over: it left the table (2 s after FIN) without a packet since.
                return p not in during_failure.present and \
                    during_failure.packets.get(p, packets_at_failure.get(p)) == packets_at_failure.get(p)

            def all_moved() -> bool:
                nonlocal parsed
                frames = capture.frames
                outer_destinations(frames[parsed:], lab.sled_address, destinations)
                parsed = len(frames)
                return all((during_failure.last(p) == sled.pin(si) and p in destinations) or ended_before_failure(p)
                           for p in failed)
            during_failure.follow(all_moved, 15)
            assert all_moved(), (f"failed flows not all on the survivor: history "
                                 f"{ {p: during_failure.history.get(p) for p in failed} }, seen on the survivor "
                                 f"{ {p: destinations.get(p) for p in failed} }, counters {dp.counters()}")
            # The failed switch's flows that still had traffic: the ones that must have moved.
            failed = [p for p in failed if not ended_before_failure(p)]
        at_restore = curl_flows(dp)
        counters_at_restore = dp.counters()
        assert long.running(), "the transfers ended before the switch came back"

        # -- the switch comes back; new connections -----------------------------------------------
        sled.bring_back(fi)
        after_restore = FlowWatch(dp, at_restore)
        short = www.download(sled.guest_ns, "small", NEW_CONNECTIONS, SMALL_RATE, "short")
        after_restore.follow(lambda: not (long.running() or short.running()), 60)
        long_results, short_results = long.finish(), short.finish()
        counters = dp.counters()
        retrans_after = retransmits.snapshot()
        long_digests, short_digests = long.digests(), short.digests()
    retrans_errors = retransmits.errors

    def delta(name: str, since: dict[str, int], until: dict[str, int] = counters) -> int:
        return until[name] - since[name]

    # every transfer complete and intact
    assert all(rc == 0 for rc, _ in long_results + short_results), \
        f"curl failures: {long_results} {short_results}\n{counters}"
    assert long_digests == [www.digests["blob"]] * CONNECTIONS
    assert short_digests == [www.digests["small"]] * NEW_CONNECTIONS

    # the failure: exactly the failed switch's flows moved, to the survivor
    assert failed, f"flows before: {before}"
    assert delta("flows_migrated", counters_before, counters_at_restore) >= len(failed), counters_at_restore
    moved = {p: during_failure.history.get(p) for p in failed}
    assert all(pins[-1] == sled.pin(si) for pins in moved.values()), f"failed switch's flows: {moved}"
    stayed = {p: during_failure.history.get(p) for p in survived}
    assert all(pins == [sled.pin(si)] for pins in stayed.values()), f"survivor's flows must not move: {stayed}"
    # ... as the survivor's uplink shows: outer destination the survivor's TEP, never the failed one
    ours = {p: destinations.get(p) for p in before}
    assert all(ours[p] == {sled.pin(si)[1]} for p in failed), f"outer destinations on the survivor: {ours}"
    assert all(d in (None, {sled.pin(si)[1]}) for d in ours.values()), f"outer destinations: {ours}"

    # the switch came back: no established flow moved, new flows use both switches
    assert delta("flows_migrated", counters_at_restore) == 0, (counters_at_restore, counters)
    assert delta("flows_rebalanced", counters_at_restore) == 0, (counters_at_restore, counters)
    kept = {p: after_restore.history.get(p) for p in at_restore}  # the established flows still open
    assert all(pins == [at_restore.get(p)] for p, pins in kept.items()), f"flows moved after the restore: {kept}"
    new = {p: pins for p, pins in after_restore.history.items() if p not in before}
    assert len(new) == NEW_CONNECTIONS, f"new flows: {new}"
    assert all(len(pins) == 1 and pins[0] in (sled.pin(0), sled.pin(1)) for pins in new.values()), new
    assert {pins[0] for pins in new.values()} == {sled.pin(0), sled.pin(1)}, f"new flows on one switch: {new}"

    # no retransmission on the survivor's connections caused by the failure (or the restore)
    assert not retrans_errors, retrans_errors
    assert set(before) <= set(retrans_after), f"ss never saw some connections: {retrans_after}"
    survivor_retrans = {p: retrans_after[p] - retrans_before.get(p, 0) for p in survived}
    assert all(n == 0 for n in survivor_retrans.values()), \
        f"retransmissions on the survivor: {survivor_retrans}\n{loss_report(sled)}"
    print(f"[{sled.mode}] migrated +{delta('flows_migrated', counters_before)}; new flows per switch "
          f"{[sum(pins[0] == sled.pin(i) for pins in new.values()) for i in (0, 1)]}; sender retransmits "
          f"survivor {survivor_retrans}, failed {({p: retrans_after[p] - retrans_before.get(p, 0) for p in failed})}")
