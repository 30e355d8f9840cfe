"""`opte-fast demo`: the point of the project in half a minute, on in-process ring ports.

One guest sends UDP over many flows to the internet through boundary services (one anycast TEP)
reached over N upstream switches (nexthop i on uplink i). A third of the way in, nexthop 2's route
(nexthop 1's with two) is withdrawn, as a routing daemon would after its switch failed; two thirds
in, it comes back.
A collector on the uplinks decodes every packet's flow id and sequence number and checks, from
what it saw and nothing else, that:

- exactly the flows that were on the withdrawn nexthop moved, all of them, and no other flow;
- no flow's packets were reordered (per-path FIFO order and no interleaving across paths);
- nothing was dropped or lost;
- after the restore, active flows stayed where they were and new flows used the nexthop again.

Exit code 0 when all of that holds, 1 when not, 2 when the data plane could not start,
130 when interrupted. Everything is taken down on the way out: threads, data plane, EAL and its
runtime directory.
"""
from __future__ import annotations

import ipaddress
import os
import shutil
import signal
import struct
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field

import click
import numpy as np

from ..controlplane.state import mac_bytes
from .sample import (
    GATEWAY_MAC,
    GUEST_IP4,
    GUEST_MAC,
    GUEST_VNI,
    TEP,
    TEP_PREFIX,
    UNDERLAY,
    anycast_state,
    ipv4_checksum,
    switch_gateway,
    switch_mac,
    uplink_name,
)

# -- the sled ----------------------------------------------------------------------------------
DEST_NET = ipaddress.ip_network("198.18.0.0/15")  # RFC 2544 benchmarking range: the "internet"
DEST_PORTS = (443, 53, 123, 4500, 3478, 8080, 5353, 51820)


# -- frames ------------------------------------------------------------------------------------
MAGIC = b"OFDM"
OUTER_LEN = 70                       # Ethernet + IPv6 + UDP + Geneve (no options)
INNER_HDR = 14 + 20 + 8              # Ethernet + IPv4 + UDP
PAYLOAD_LEN = 18                     # magic, flow id, sequence number, padding: a 60-byte inner frame
INNER_LEN = INNER_HDR + PAYLOAD_LEN
FRAME_LEN = OUTER_LEN + INNER_LEN
MAGIC_OFF = INNER_HDR + 0            # offsets inside the inner (guest) frame
SEQ_OFF = INNER_HDR + 8
OUT_MAGIC_OFF = OUTER_LEN + MAGIC_OFF  # ... and inside the encapsulated frame


def guest_frame(flow_id: int, seq: int = 0) -> bytes:
    """Ethernet/IPv4/UDP from the guest to its gateway, one destination address per flow id;
    the payload carries MAGIC, the flow id and the sequence number (big-endian u32)."""
    dst = DEST_NET.network_address + 1 + flow_id
    sport = 32768 + flow_id % 28000
    dport = DEST_PORTS[flow_id % len(DEST_PORTS)]
    payload = MAGIC + struct.pack("!II", flow_id, seq) + bytes(PAYLOAD_LEN - 12)
    udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp) + len(payload), flow_id & 0xFFFF, 0x4000, 64, 17, 0,
                     GUEST_IP4.packed, dst.packed)
    ip = ip[:10] + struct.pack("!H", ipv4_checksum(ip)) + ip[12:]
    eth = mac_bytes(GATEWAY_MAC) + mac_bytes(GUEST_MAC) + b"\x08\x00"
    return eth + ip + udp + payload


MAX_FLOW_IDS = DEST_NET.num_addresses - 2


# -- traffic -----------------------------------------------------------------------------------
class Generator(threading.Thread):
    """Injects guest frames round-robin over the active flows at about `rate` packets/s."""

    BATCH = 512

    def __init__(self, dp, n_total: int, n_active: int, rate: int):
        super().__init__(name="demo-generator", daemon=True)
        self.dp = dp
        self.rate = rate
        self.templates = np.frombuffer(b"".join(guest_frame(f) for f in range(n_total)),
                                       dtype=np.uint8).reshape(n_total, INNER_LEN)
        self.seq = np.zeros(n_total, dtype=np.uint32)
        self.n_active = n_active
        self.injected = 0
        self.error: BaseException | None = None
        self.stop_event = threading.Event()
        self._pos = 0

    def activate(self, n_active: int) -> None:
        self.n_active = n_active  # one int store: the generator picks it up at its next batch

    def run(self) -> None:
        try:
            self._run()
        except BaseException as e:  # reported by the main thread
            self.error = e

    def _run(self) -> None:
        inject = self.dp.inject
        t0 = time.monotonic()
        sent = 0
        while not self.stop_event.is_set():
            due = int((time.monotonic() - t0) * self.rate) - sent
            if due <= 0:
                time.sleep(0.0005)
                continue
            if due > self.rate // 10 + self.BATCH:  # fell behind (CPU busy): skip, don't burst
                sent += due - self.BATCH
                due = self.BATCH
            n_active = self.n_active
            n = min(due, self.BATCH, n_active)
            ids = (np.arange(self._pos, self._pos + n) % n_active)
            self._pos = (self._pos + n) % n_active
            frames = self.templates[ids]
            frames[:, SEQ_OFF:SEQ_OFF + 4] = self.seq[ids].astype(">u4").view(np.uint8).reshape(n, 4)
            self.seq[ids] += 1
            buf = frames.tobytes()
            batch = [buf[i * INNER_LEN:(i + 1) * INNER_LEN] for i in range(n)]
            while batch:
                k = inject("guest0", batch)
                self.injected += k
                batch = batch[k:]
                if batch:
                    if self.stop_event.is_set():
                        break
                    time.sleep(0.0002)  # guest ring or mbufs full: let the data plane catch up
            sent += n


@dataclass
class Verdict:
    """What the collector saw, reduced to the numbers the claims are about."""
    received: int = 0
    foreign: int = 0
    fifo_reorders: int = 0          # a sequence number not above the flow's last one on the same uplink
    interleaved_flows: int = 0      # a flow whose sequence numbers on two uplinks overlap (duplicates)
    per_uplink: list = field(default_factory=list)   # packets received per uplink
    moved_to: list = field(default_factory=list)     # per uplink: carried flows that moved to it (or off it: -)
    carried: int = 0                # old flows first seen on the withdrawn nexthop
    carried_moved: int = 0          # ... that moved to one survivor, once, and stayed there
    others: int = 0                 # old flows first seen elsewhere
    others_moved: int = 0           # flows that moved and were not on the withdrawn nexthop
    moved_back: int = 0             # flows that moved again after their migration, moved onto the restored
                                    # nexthop, or started after the restore and moved
    new_seen: int = 0
    new_on_withdrawn: int = 0

    @property
    def reorders(self) -> int:
        return self.fifo_reorders + self.interleaved_flows


class Collector(threading.Thread):
    """Drains every uplink; per flow and uplink keeps packets, lowest and highest sequence number,
    and every gap in the sequence numbers.

    Uplinks are drained one after the other, so the order in which the collector sees two uplinks'
    packets is not the order the data plane sent them. What it checks is what the data plane decides:
    - on one uplink (a FIFO) a flow's sequence numbers rise: anything else is a reorder;
    - a gap on one uplink that another uplink's packets of the flow fill means the flow left that
      uplink and came back (a gap nothing fills is a lost packet);
    - a flow on two uplinks that never came back moved once: the two ranges must not overlap.
    """

    MAX_FRAMES = 2048

    def __init__(self, dp, n_uplinks: int, n_total: int):
        super().__init__(name="demo-collector", daemon=True)
        self._dp = dp
        self.ports = [uplink_name(i) for i in range(n_uplinks)]
        self.macs = [mac_bytes(switch_mac(i)) for i in range(n_uplinks)]
        self.n = n_uplinks
        self.count = np.zeros((n_total, n_uplinks), dtype=np.int64)
        self.lo = np.full((n_total, n_uplinks), np.iinfo(np.int64).max, dtype=np.int64)
        self.hi = np.full((n_total, n_uplinks), -1, dtype=np.int64)
        self._gaps: list[np.ndarray] = []   # rows (flow, uplink, seq before the gap, seq after it)
        self._n_gaps = 0
        self._want = [256] * n_uplinks      # frames to ask each uplink for: grows while it has more
        self.received = 0
        self.foreign = 0
        self.fifo_reorders = 0
        self.lock = threading.Lock()
        self.drain = threading.Event()   # set: stop once a full pass finds every uplink empty
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while True:
                got = 0
                for u, port in enumerate(self.ports):
                    frames = self._dp.collect(port, self._want[u], 256)
                    # the binding zeroes want * 256 bytes a call: ask for little while little comes
                    self._want[u] = min(self.MAX_FRAMES, max(64, 2 * len(frames)))
                    if frames:
                        got += len(frames)
                        self._account(u, frames)
                if not got:
                    if self.drain.is_set():
                        return
                    time.sleep(0.0005)
        except BaseException as e:
            self.error = e

    def _account(self, u: int, frames: list[bytes]) -> None:
        n = len(frames)
        data = b"".join(frames)
        if len(data) == n * FRAME_LEN:
            arr = np.frombuffer(data, dtype=np.uint8).reshape(n, FRAME_LEN)
            ok = self._ours(arr, u)
        else:
            ok = None
        if ok is None or not ok.all():
            mine = [f for f in frames if len(f) == FRAME_LEN]
            arr = np.frombuffer(b"".join(mine), dtype=np.uint8).reshape(len(mine), FRAME_LEN)
            ok = self._ours(arr, u)
            arr = arr[ok]
        fields = np.ascontiguousarray(arr[:, OUT_MAGIC_OFF + 4:OUT_MAGIC_OFF + 12]).view(">u4")
        flow = fields[:, 0].astype(np.int64)
        seq = fields[:, 1].astype(np.int64)
        valid = flow < len(self.count)
        flow, seq = flow[valid], seq[valid]
        with self.lock:
            self.received += len(flow)
            self.foreign += n - len(flow)
            if not len(flow):
                return
            # The uplink ring is FIFO: within one uplink a flow's sequence numbers must rise.
            order = np.argsort(flow, kind="stable")
            fs, ss = flow[order], seq[order]
            same = fs[1:] == fs[:-1]
            self.fifo_reorders += int(np.count_nonzero(same & (ss[1:] <= ss[:-1])))
            gapped = same & (ss[1:] > ss[:-1] + 1)
            starts = np.flatnonzero(np.r_[True, ~same])
            groups = fs[starts]
            last = self.hi[groups, u]
            self.fifo_reorders += int(np.count_nonzero(ss[starts] <= last))
            after_last = (last >= 0) & (ss[starts] > last + 1)
            if (gapped.any() or after_last.any()) and self._n_gaps < 1_000_000:
                gap = np.r_[np.c_[fs[1:][gapped], ss[:-1][gapped], ss[1:][gapped]],
                            np.c_[groups[after_last], last[after_last], ss[starts][after_last]]]
                self._gaps.append(np.c_[gap[:, 0], np.full(len(gap), u), gap[:, 1:]])
                self._n_gaps += len(gap)
            self.hi[groups, u] = np.maximum(self.hi[groups, u], np.maximum.reduceat(ss, starts))
            self.lo[groups, u] = np.minimum(self.lo[groups, u], np.minimum.reduceat(ss, starts))
            self.count[groups, u] += np.diff(np.r_[starts, len(fs)])

    def _ours(self, arr: np.ndarray, u: int) -> np.ndarray:
        """Rows that are our probes, sent to the right switch: outer dst MAC is uplink u's nexthop."""
        magic = np.frombuffer(MAGIC, dtype=np.uint8)
        mac = np.frombuffer(self.macs[u], dtype=np.uint8)
        return (arr[:, OUT_MAGIC_OFF:OUT_MAGIC_OFF + 4] == magic).all(axis=1) & (arr[:, 0:6] == mac).all(axis=1)

    def verdict(self, n_old: int, withdrawn: int) -> Verdict:
        with self.lock:
            count, lo, hi = self.count.copy(), self.lo.copy(), self.hi.copy()
            gaps = np.concatenate(self._gaps) if self._gaps else np.zeros((0, 4), dtype=np.int64)
            v = Verdict(received=self.received, foreign=self.foreign, fifo_reorders=self.fifo_reorders,
                        per_uplink=[int(x) for x in count.sum(axis=0)], moved_to=[0] * self.n)
        seen = count > 0
        n_paths = seen.sum(axis=1)
        first = np.where(seen, lo, np.iinfo(np.int64).max).argmin(axis=1)
        any_seen = n_paths > 0
        old = np.arange(len(count)) < n_old
        v.carried = int(np.count_nonzero(old & any_seen & (first == withdrawn)))
        v.others = int(np.count_nonzero(old & any_seen & (first != withdrawn)))
        v.new_seen = int(np.count_nonzero(~old & any_seen))
        v.new_on_withdrawn = int(np.count_nonzero(~old & any_seen & (first == withdrawn)))
        # A gap (a, b) on uplink u that another uplink's packets of the flow fall into: it came back to u.
        g_flow, g_up, g_a, g_b = gaps.T
        filled = ((np.arange(self.n) != g_up[:, None]) & seen[g_flow]
                  & (lo[g_flow] < g_b[:, None]) & (hi[g_flow] > g_a[:, None])).any(axis=1)
        returns = np.bincount(g_flow[filled], minlength=len(count))
        for f in np.flatnonzero((n_paths > 1) | (returns > 0)):
            segments = sorted((int(lo[f, u]), int(hi[f, u]), u) for u in np.flatnonzero(seen[f]))
            if not returns[f] and any(a[1] >= b[0] for a, b in zip(segments, segments[1:])):
                v.interleaved_flows += 1
            if f >= n_old:                        # started after the restore, then moved
                v.moved_back += 1
            elif first[f] != withdrawn:           # was never on the withdrawn nexthop, moved anyway
                v.others_moved += 1
                v.moved_back += bool(seen[f, withdrawn])
            elif n_paths[f] == 2 and not returns[f]:
                v.carried_moved += 1              # withdrawn nexthop -> one survivor, for good
                v.moved_to[segments[1][2]] += 1
                v.moved_to[withdrawn] -= 1
            else:
                v.moved_back += 1                 # migrated, then moved again
        return v


# -- the view ----------------------------------------------------------------------------------
@dataclass
class Snapshot:
    elapsed: float
    phase: str
    mpps: float
    counters: dict
    drops: int
    nexthops: dict            # uplink index -> (flows pinned, packets/s) for nexthops in the tables
    verdict: Verdict
    n_active: int


class View:
    def __init__(self, live: bool, args: DemoArgs):
        self.live = live
        self.args = args
        self.color = live
        self.utf8 = (getattr(sys.stdout, "encoding", "") or "").lower().replace("-", "") == "utf8"
        self.events: list[str] = []
        self._drawn = 0
        self._next_plain = 1.0

    def style(self, text: str, **kw) -> str:
        return click.style(text, **kw) if self.color else text

    def header(self) -> None:
        a = self.args
        dash = "\u2014" if self.utf8 else "-"
        click.echo(self.style(f"opte-fast demo {dash} one guest, {a.nexthops} upstream switches, "
                              f"boundary services by anycast", bold=True))
        click.echo(f"  guest {GUEST_IP4} (VNI {GUEST_VNI}): {a.flows:,} UDP flows to {DEST_NET}, "
                   f"~{a.rate_pps:,} packets/s")
        click.echo(f"  V2B 0.0.0.0/0 -> TEP {TEP}; route {TEP_PREFIX} via {a.nexthops} nexthops "
                   f"(uplink0-{a.nexthops - 1})")
        click.echo(f"  nexthop {a.withdrawn}'s route is withdrawn at {a.t_withdraw:.1f} s (switch failure), "
                   f"restored at {a.t_restore:.1f} s")
        click.echo()

    def event(self, elapsed: float, text: str) -> None:
        line = f"[{elapsed:5.1f} s] {text}"
        self.events.append(line)
        if not self.live:
            click.echo(line)

    def update(self, s: Snapshot) -> None:
        if self.live:
            self._draw(self._lines(s))
        elif s.elapsed >= self._next_plain:
            self._next_plain = int(s.elapsed) + 1.0
            click.echo(self._plain(s))

    def finish(self) -> None:
        if self.live and self._drawn:
            sys.stdout.write("\x1b[?25h")
            sys.stdout.flush()

    def _plain(self, s: Snapshot) -> str:
        per = "/".join(str(s.nexthops[i][0]) if i in s.nexthops else "-" for i in range(self.args.nexthops))
        v = s.verdict
        return (f"[{s.elapsed:5.1f} s] {s.phase:<19} {s.mpps:.3f} Mpps  flows/nexthop {per}  "
                f"migrated {s.counters['flows_migrated']}  rebalanced {s.counters['flows_rebalanced']}  "
                f"reorders {v.reorders}  others moved {v.others_moved}  drops {s.drops}")

    def _bar(self, fraction: float, width: int) -> str:
        full = "\u2588" if self.utf8 else "#"
        n = max(0, min(width, round(fraction * width)))
        return full * n + " " * (width - n)

    def _lines(self, s: Snapshot) -> list[str]:
        a = self.args
        v = s.verdict
        width = 30
        done = "\u2501" if self.utf8 else "="
        todo = "\u2500" if self.utf8 else "-"
        mark = "\u2502" if self.utf8 else "|"
        cells = [done if (i + 0.5) / width * a.duration_s <= s.elapsed else todo for i in range(width)]
        cells[width // 3] = cells[2 * width // 3] = mark
        timeline = "".join(cells)
        phase_color = {"withdrawn": "red", "restored": "cyan"}
        color = next((c for k, c in phase_color.items() if k in s.phase), "green")
        lines = [
            f"  elapsed {s.elapsed:5.1f} s / {a.duration_s:g} s  {timeline}  "
            + self.style(s.phase, fg=color, bold=True),
            f"  rate    {s.mpps:5.3f} Mpps to the uplinks   flows {s.n_active:,}   "
            f"packets {s.counters['tx_uplink_packets']:,}",
            "",
            self.style("  nexthop  uplink   switch    route        flows  packets/s  moved", bold=True),
        ]
        most = max((f for f, _ in s.nexthops.values()), default=0) or 1
        for i in range(a.nexthops):
            if i in s.nexthops:
                flows, pps = s.nexthops[i]
                state = self.style("up       ", fg="green")
                bar = self._bar(flows / most, 10)
            else:
                flows, pps = 0, 0
                state = self.style("WITHDRAWN", fg="red", bold=True)
                bar = ""
            moved = f"{v.moved_to[i]:+,}" if v.moved_to[i] else ""
            lines.append(f"  {i:>7}  {uplink_name(i):<7}  {str(switch_gateway(i)):<8}  {state}  "
                         f"{flows:>7,}  {pps:>9,.0f}  {moved:>5}  {bar}".rstrip())
        lines.append("")
        lines.append(f"  flows migrated {s.counters['flows_migrated']:>6,}    "
                     f"rebalanced {s.counters['flows_rebalanced']:>3,}"
                     f"    drops (data plane) {s.drops:>3,}")
        reorder = self.style(f"{v.reorders:,}", fg="green" if v.reorders == 0 else "red", bold=True)
        others = self.style(f"{v.others_moved:,}", fg="green" if v.others_moved == 0 else "red", bold=True)
        lines.append(f"  collector: reorders {reorder}    flows moved that were not on nexthop {a.withdrawn}: {others}")
        lines.append("")
        for e in (self.events[-2:] + ["", ""])[:2]:
            lines.append(f"  {e}" if e else "")
        return lines

    def _draw(self, lines: list[str]) -> None:
        out = []
        if self._drawn:
            out.append(f"\x1b[{self._drawn}F")
        else:
            out.append("\x1b[?25l")
        width = shutil.get_terminal_size().columns - 1
        for line in lines:  # a wrapped line would break the cursor-up arithmetic: cut to the width
            out.append(_fit(line, width) + "\x1b[K\n")
        out.append("\x1b[J")
        sys.stdout.write("".join(out))
        sys.stdout.flush()
        self._drawn = len(lines)


def _fit(line: str, width: int) -> str:
    """`line` cut to `width` visible characters, ANSI escape sequences kept (and closed if cut)."""
    out, visible, i = [], 0, 0
    while i < len(line):
        if line[i] == "\x1b":
            end = line.find("m", i)
            end = len(line) - 1 if end < 0 else end
            out.append(line[i:end + 1])
            i = end + 1
            continue
        if visible == width:
            out.append("\x1b[0m")
            break
        out.append(line[i])
        visible += 1
        i += 1
    return "".join(out)


# -- the run -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class DemoArgs:
    duration_s: float
    flows: int
    nexthops: int
    rate_pps: int
    lcore: int

    @property
    def withdrawn(self) -> int:
        return min(2, self.nexthops - 1)

    @property
    def new_flows(self) -> int:
        return max(1, self.flows // 2)

    @property
    def t_withdraw(self) -> float:
        return self.duration_s / 3

    @property
    def t_restore(self) -> float:
        return self.duration_s * 2 / 3


# The uplink rings hold more than there are mbufs: when the collector (our stand-in for the switches)
# falls behind, the mbufs run out first and the generator waits, as a guest's virtio queue would,
# rather than the data plane dropping on a full transmit ring, which a real NIC at line rate would not.
N_MBUFS = 32767
UPLINK_RING = 65536


class Interrupted(Exception):
    pass


class ThreadFailed(Exception):
    """The generator or the collector died; its exception is on the thread object."""


def _raise_interrupted(signum, frame):
    raise Interrupted()


@click.command()
@click.option("--duration-s", type=click.FloatRange(3, 3600), default=30, show_default=True,
              help="How long the demo runs; the withdrawal happens at 1/3, the restore at 2/3.")
@click.option("--flows", type=click.IntRange(1, MAX_FLOW_IDS * 2 // 3), default=2000, show_default=True,
              help="Guest flows from the start (half as many new ones start after the restore).")
@click.option("--nexthops", type=click.IntRange(2, 16), default=4, show_default=True,
              help="Upstream switches: one uplink and one nexthop each.")
@click.option("--rate-pps", type=click.IntRange(1000, 10_000_000), default=200_000, show_default=True,
              help="Guest packets per second to inject (Python-side generator: a few 100k at most).")
@click.option("--lcore", type=click.IntRange(0, 127), default=1, show_default=True,
              help="The worker lcore (CPU) for the data plane.")
@click.option("--no-live", is_flag=True, help="Plain lines once a second instead of a live view "
              "(the default when stdout is not a terminal).")
def demo(duration_s: float, flows: int, nexthops: int, rate_pps: int, lcore: int, no_live: bool) -> None:
    """Fail a switch under load and watch exactly its flows move, in order, on virtual ports.

    Ring ports guest0 and uplink0..N-1; one guest's flows go to boundary services through an
    anycast TEP reached via N nexthops. Nexthop 2 (1 with --nexthops 2) is withdrawn at 1/3 of
    the run and restored at 2/3. Needs root (DPDK, --no-huge); touches no network interface. Exit 0 when every claim in
    the summary holds, 1 when one does not.
    """
    args = DemoArgs(duration_s, flows, nexthops, rate_pps, lcore)
    live = not no_live and sys.stdout.isatty()
    sys.exit(run_demo(args, View(live, args)))


def run_demo(args: DemoArgs, view: View) -> int:
    from ..controlplane.dataplane import (
        Dataplane,
        DataplaneError,
        DataplaneOptions,
        drops_of_injected_frames,
        eal_args,
        eal_cleanup,
        eal_init,
    )

    prefix = f"opte-fast-demo-{os.getpid()}"
    n_total = args.flows + args.new_flows
    old_handlers = {s: signal.signal(s, _raise_interrupted) for s in (signal.SIGINT, signal.SIGTERM)}
    dp = gen = col = None
    eal_up = started = False
    rc = 1
    result: tuple | None = None
    try:
        try:
            eal_init(eal_args([args.lcore], file_prefix=prefix, memory_mb=512, extra=("--no-telemetry",)))
            eal_up = True
            capacity = 1 << max(14, (2 * n_total - 1).bit_length())
            dp = Dataplane(DataplaneOptions(underlay_addr=UNDERLAY, n_mbufs=N_MBUFS, flow_capacity=capacity,
                                            rebalance_idle_ms=10_000))
            dp.add_ring_port("guest0", "guest")
            for i in range(args.nexthops):
                dp.add_ring_port(uplink_name(i), "uplink", ring_size=UPLINK_RING)
            dp.commit(anycast_state(args.nexthops))
            dp.start([args.lcore])
            started = True
        except (DataplaneError, ValueError) as e:
            click.echo(f"opte-fast demo: {e}", err=True)
            return 2
        drop_names = drops_of_injected_frames()
        view.header()
        gen = Generator(dp, n_total, args.flows, args.rate_pps)
        col = Collector(dp, args.nexthops, n_total)
        result = _timeline(args, view, dp, gen, col, drop_names)
        rc = 0 if all(ok for ok, _, _ in result[0]) else 1
    except Interrupted:
        for s in old_handlers:  # a second Ctrl-C must not cut the clean-up short
            signal.signal(s, signal.SIG_IGN)
        view.finish()
        click.echo("\ninterrupted: stopping traffic and taking the data plane down", err=True)
        rc = 130
    except ThreadFailed:
        rc = 1  # reported below, once the threads are down
    finally:
        for s in old_handlers:
            signal.signal(s, signal.SIG_IGN)
        view.finish()
        _stop_traffic(dp, gen, col)
        if dp is not None:
            if started:
                dp.stop()
            dp.close()
        if eal_up:
            eal_cleanup()
        shutil.rmtree(f"/var/run/dpdk/{prefix}", ignore_errors=True)
        for s, h in old_handlers.items():
            signal.signal(s, h)
    if result is not None:
        _summary(args, view, *result)
    for t in (gen, col):
        if t is not None and t.error is not None:
            click.echo(f"opte-fast demo: {t.name} failed: {t.error!r}", err=True)
            rc = 1
    return rc


def _stop_traffic(dp, gen: Generator | None, col: Collector | None) -> None:
    """Stop the generator, let the data plane finish what it took, drain the uplinks, join."""
    if gen is not None and gen.is_alive():
        gen.stop_event.set()
        gen.join(timeout=5)
    if dp is not None and gen is not None:
        deadline = time.monotonic() + 2
        while dp.counters()["rx_guest_packets"] < gen.injected and time.monotonic() < deadline:
            time.sleep(0.002)
        dp.quiesce()
    if col is not None and col.is_alive():
        col.drain.set()
        col.join(timeout=5)


def _timeline(args: DemoArgs, view: View, dp, gen: Generator, col: Collector, drop_names: list[str]):
    w = args.withdrawn
    phase = f"all {args.nexthops} nexthops up"
    withdrawn_done = restored_done = False
    carried_by_dp = 0
    history: deque = deque()  # (t, packets sent on uplinks, {uplink index: nexthop packets}) over ~1 s
    t0 = time.monotonic()
    col.start()
    gen.start()
    while True:
        elapsed = time.monotonic() - t0
        if not withdrawn_done and elapsed >= args.t_withdraw:
            carried_by_dp = next((n["flows"] for n in dp.paths()["nexthops"] if n["uplink"] == uplink_name(w)), 0)
            dp.commit(anycast_state(args.nexthops, without=w))
            withdrawn_done = True
            phase = f"nexthop {w} withdrawn"
            view.event(elapsed, f"switch {w} fails, route via {uplink_name(w)} withdrawn: "
                                f"{carried_by_dp:,} flows were on it")
        elif withdrawn_done and not restored_done and elapsed >= args.t_restore:
            dp.commit(anycast_state(args.nexthops))
            gen.activate(args.flows + args.new_flows)
            restored_done = True
            phase = f"nexthop {w} restored"
            view.event(elapsed, f"switch {w} back, route via {uplink_name(w)} restored: "
                                f"{args.new_flows:,} new flows start")
        if gen.error is not None or col.error is not None:
            raise ThreadFailed()
        counters = dp.counters()
        paths = dp.paths()["nexthops"]
        now = time.monotonic() - t0
        packets = {int(n["uplink"].removeprefix("uplink")): n["packets"] for n in paths}
        history.append((now, counters["tx_uplink_packets"], packets))
        while len(history) > 2 and now - history[1][0] >= 1.0:
            history.popleft()
        t_then, sent_then, _ = history[0]
        dt = max(now - t_then, 1e-3)
        mpps = (counters["tx_uplink_packets"] - sent_then) / dt / 1e6
        nexthops = {}
        for n in paths:
            i = int(n["uplink"].removeprefix("uplink"))
            # the oldest sample in the window that has this nexthop (a restored one starts afresh)
            t_i, p_i = next(((t, p[i]) for t, _, p in history if i in p))
            rate = max(n["packets"] - p_i, 0) / (now - t_i) if now > t_i else 0.0
            nexthops[i] = (n["flows"], rate)
        view.update(Snapshot(min(now, args.duration_s), phase, mpps, counters,
                             sum(counters[n] for n in drop_names), nexthops,
                             col.verdict(args.flows, w), gen.n_active))
        if now >= args.duration_s:
            break
        time.sleep(min(0.25, max(0.0, args.duration_s - (time.monotonic() - t0))))
    _stop_traffic(dp, gen, col)
    counters = dp.counters()
    return (claims(args, col.verdict(args.flows, w), counters, drop_names, gen.injected, carried_by_dp),
            col.verdict(args.flows, w), counters, gen.injected)


def claims(args: DemoArgs, v: Verdict, counters: dict, drop_names: list[str], injected: int,
           carried_by_dp: int) -> list[tuple[bool, str, str]]:
    """(holds, claim, evidence) per claim, from what the collector saw; the data plane's own counts as evidence."""
    w = args.withdrawn
    lost = injected - v.received
    drops = sum(counters[n] for n in drop_names)
    reasons = ", ".join(f"{n} {counters[n]:,}" for n in drop_names if counters[n])
    others = [str(i) for i in range(args.nexthops) if i != w]
    if v.carried:
        carried = f"withdrawn nexthop {w} carried {v.carried:,} flows: all {v.carried_moved:,} moved to survivors"
    else:
        carried = f"withdrawn nexthop {w} carried no flow: nothing moved (try more --flows)"
    return [
        (v.carried > 0 and v.carried_moved == v.carried, carried,
         f"data plane: {carried_by_dp:,} pinned, {counters['flows_migrated']:,} migrated"),
        (v.others_moved == 0,
         f"{v.others_moved:,} other flows moved",
         f"{v.others - v.others_moved:,} stayed on nexthop{'s' * (len(others) > 1)} {', '.join(others)}"),
        (v.reorders == 0,
         f"{v.reorders:,} packets reordered",
         f"sequence numbers of {v.received:,} packets checked"),
        (drops == 0 and lost == 0 and v.foreign == 0,
         f"{drops:,} dropped by the data plane, {lost:,} lost",
         f"{injected:,} sent, {v.received:,} received" + (f", {v.foreign:,} unrecognised" if v.foreign else "")
         + (f"; {reasons}" if reasons else "")
         + (f"; {counters['rx_no_mbuf']:,} offered again for want of mbufs" if counters["rx_no_mbuf"] else "")),
        (v.moved_back == 0 and counters["flows_rebalanced"] == 0,
         f"after restore, active flows stayed put ({v.moved_back:,} moved)",
         f"{counters['flows_rebalanced']:,} rebalanced"),
        (v.new_on_withdrawn > 0 or v.new_seen < 8 * args.nexthops,
         f"{v.new_on_withdrawn:,} new flows used nexthop {w}",
         f"of {v.new_seen:,} started after the restore"),
    ]


def _summary(args: DemoArgs, view: View, claims, v: Verdict, counters: dict, injected: int) -> None:
    click.echo()
    click.echo(view.style("summary", bold=True) + f": {injected:,} packets over {args.flows + args.new_flows:,} "
               f"flows in {args.duration_s:g} s")
    click.echo("  packets per uplink: " + " / ".join(f"{n:,}" for n in v.per_uplink))
    width = max(len(text) for _, text, _ in claims)
    inline = 10 + width + max(len(e) for _, _, e in claims) < shutil.get_terminal_size().columns
    for ok, text, evidence in claims:
        mark = view.style(" ok ", fg="green", bold=True) if ok else view.style("FAIL", fg="red", bold=True)
        if inline:
            click.echo(f"  {mark}  {text:<{width}}  " + view.style(evidence, dim=True))
        else:
            click.echo(f"  {mark}  {text}\n          " + view.style(evidence, dim=True))
    failed = sum(not ok for ok, _, _ in claims)
    if failed:
        click.echo(view.style(f"{failed} of {len(claims)} claims do not hold", fg="red", bold=True))
    else:
        click.echo(view.style(f"all {len(claims)} claims hold", fg="green", bold=True))
