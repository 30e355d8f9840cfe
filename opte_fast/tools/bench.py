"""`opte-fast bench`: this data plane against the I/O ceiling, over the same source and sink, in one run.

Both measurements replay the same generated pcap (one frame per flow, looped from memory by
net_pcap's `infinite_rx=1`) into a pure sink (`net_null`, `no-rx=1`), with the same EAL arguments
(one forwarding lcore, same memory, same mbuf count), one after the other, never overlapping:

1. the ceiling: `dpdk-testpmd` in io forwarding mode (receive, transmit, nothing else), its rate read
   from its own `--stats-period` reports (TSC-timed, port TX packets per second);
2. opte-fast's outbound path in a subprocess with its own EAL: guest port on the pcap, uplink on
   net_null, one guest, V2B 0.0.0.0/0 -> one TEP, a route to the TEP via the uplink; the rate is
   `tx_uplink_packets` sampled over the same wall-clock length as the ceiling's measured window.

The data plane's own cost per packet is (1/rate - 1/ceiling) x TSC Hz: the cycles opte-fast spends
on parse, flow lookup, encap beyond what receiving and transmitting the packet already cost.

Peers (Open vSwitch's userspace datapath, `--with-ovs`, say) fit as one more `measure_*` function
returning a `Measurement`, run after these two on the same pcap and reported against the ceiling.
"""
from __future__ import annotations

import ipaddress
import json
import os
import queue
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import click

from .sample import GATEWAY_MAC, GUEST_IP4, GUEST_MAC, GUEST_PORT, UNDERLAY, anycast_state, ipv4_checksum, uplink_name

TESTPMD = "dpdk-testpmd"
DPDK_RUN_DIR = Path("/var/run/dpdk")
PREFIX_BASE = "oft-bench"
WORKER_LCORE = 1

DST_BASE = int(ipaddress.IPv4Address("198.18.0.0"))   # RFC 2544 benchmarking range, 198.18.0.0/15
DST_SPAN = 1 << 17

SOURCE_DEVARGS = "net_pcap0,rx_pcap={pcap},infinite_rx=1"
SINK_DEVARGS = "net_null0,no-rx=1"


def prefixes(tag: str | int | None = None) -> dict[str, str]:
    """EAL file prefixes of one bench run (per process, so parallel runs never collide)."""
    base = f"{PREFIX_BASE}-{os.getpid() if tag is None else tag}"
    return {"ceiling": f"{base}-ceiling", "opte_fast": f"{base}-opte"}


# -- traffic ------------------------------------------------------------------------------------

def write_pcap(path: Path, flows: int, frame_bytes: int) -> None:
    """One Ethernet/IPv4/UDP frame per flow, guest -> gateway MAC, `frame_bytes` long (no FCS, as in
    the mbuf). Flow i goes to 198.18.0.0 + i % 2^17, source port 1024 + i // 2^17, dst port 9."""
    if frame_bytes < 42:
        raise ValueError("frames need at least 42 bytes (Ethernet + IPv4 + UDP)")
    eth = bytes.fromhex(GATEWAY_MAC.replace(":", "")) + bytes.fromhex(GUEST_MAC.replace(":", "")) + b"\x08\x00"
    ip_len, udp_len = frame_bytes - 14, frame_bytes - 34
    record = struct.pack("<IIII", 0, 0, frame_bytes, frame_bytes)
    padding = bytes(udp_len - 8)
    out = bytearray(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))   # microsecond pcap, Ethernet
    for i in range(flows):
        dst = (DST_BASE + i % DST_SPAN).to_bytes(4, "big")
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, ip_len, 0, 0, 64, 17, 0, GUEST_IP4.packed, dst)
        ip = ip[:10] + struct.pack("!H", ipv4_checksum(ip)) + ip[12:]
        udp = struct.pack("!HHHH", 1024 + i // DST_SPAN, 9, udp_len, 0)
        out += record + eth + ip + udp + padding
    path.write_bytes(out)


# -- sizing -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Setup:
    flows: int
    seconds: int
    warmup: float
    frame_bytes: int
    hugepages: bool
    pcap: str
    n_mbufs: int
    memory_mb: int
    flow_capacity: int

    @classmethod
    def make(cls, flows: int, seconds: int, warmup: float, frame_bytes: int, hugepages: bool, pcap: Path) -> Setup:
        # The pcap stays resident (one mbuf per frame) next to descriptors, caches and bursts in flight.
        n_mbufs = (1 << (flows + 16384 - 1).bit_length()) - 1
        memory_mb = max(1024, 256 + n_mbufs * 3 // 1024 + flows // 1024)
        return cls(flows, seconds, warmup, frame_bytes, hugepages, str(pcap), n_mbufs, -(-memory_mb // 64) * 64,
                   max(flows, 1024))

    def eal(self, prefix: str, argv0: str) -> list[str]:
        from ..controlplane.dataplane import eal_args
        args = eal_args([WORKER_LCORE], file_prefix=prefix, hugepages=self.hugepages, memory_mb=self.memory_mb)
        return [argv0, *args[1:]]


@dataclass
class Measurement:
    name: str
    pps: float
    seconds: float
    cpu_share: float | None     # of the measured window, the forwarding thread's time on its CPU
    samples_pps: list[float] = field(default_factory=list)
    command: list[str] = field(default_factory=list)
    extra: dict = field(default_factory=dict)

    @property
    def mpps(self) -> float:
        return self.pps / 1e6

    def cycles_per_packet(self, tsc_hz: int) -> float:
        """TSC cycles the forwarding thread spent per packet: its time on the CPU, not the wall
        clock, so other processes sharing the CPU do not count (the two agree when it had the CPU alone)."""
        return tsc_hz * (self.cpu_share or 1.0) / self.pps


_WORKER_THREAD = re.compile(rf"worker-?{WORKER_LCORE}$")   # rte-worker-1 (DPDK 22.11), dpdk-worker1 (24.11)


class ThreadClock:
    """Time on the CPU of a process's forwarding lcore thread (from /proc/PID/task/TID/schedstat)."""

    def __init__(self, pid: int | str = "self"):
        self.path = None
        for task in Path(f"/proc/{pid}/task").iterdir():
            try:
                if _WORKER_THREAD.search((task / "comm").read_text().strip()):
                    self.path = task / "schedstat"
                    break
            except OSError:
                continue

    def read(self) -> tuple[float, int | None]:
        """(monotonic seconds, nanoseconds on the CPU so far or None when unknown)"""
        try:
            return time.monotonic(), int(self.path.read_text().split()[0]) if self.path else None
        except (OSError, ValueError, IndexError):
            return time.monotonic(), None

    @staticmethod
    def share(start: tuple[float, int | None], end: tuple[float, int | None]) -> float | None:
        if start[1] is None or end[1] is None or end[0] <= start[0]:
            return None
        return min(1.0, (end[1] - start[1]) / 1e9 / (end[0] - start[0]))


def cleanup_prefix(prefix: str) -> None:
    shutil.rmtree(DPDK_RUN_DIR / prefix, ignore_errors=True)


def _tail(lines: list[str], n: int = 15) -> str:
    return "".join(lines[-n:]).rstrip() or "(no output)"


def _stop(proc: subprocess.Popen, sig: int = signal.SIGINT, grace_s: float = 15.0) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# -- 1. the I/O ceiling ---------------------------------------------------------------------------

def testpmd_path() -> str:
    found = shutil.which(TESTPMD) or shutil.which(f"/usr/bin/{TESTPMD}")
    if not found:
        raise click.ClickException(f"{TESTPMD} not found: install dpdk-dev (apt-get install dpdk-dev)")
    return found


_TX_PPS = re.compile(r"Tx-pps:\s+(\d+)")
N_PORTS = 2


def measure_ceiling(setup: Setup, prefix: str, startup_timeout_s: float = 60.0) -> Measurement:
    """testpmd io forwarding, source -> sink. testpmd prints a report every stats period (one
    second, sometimes two: it counts the period in TSC cycles from its TSC estimate and sleeps in
    whole seconds); the first, printed as forwarding starts, has no rate. Reports whose interval
    began within the warm-up are skipped, then reports are taken until their intervals cover
    `seconds`. A report's rate is the sum of the ports' Tx-pps (only the sink transmits), which
    testpmd times itself; the interval lengths, weighting them, are the reports' arrival times here."""
    cmd = [*setup.eal(prefix, testpmd_path()),
           "--vdev", SOURCE_DEVARGS.format(pcap=setup.pcap), "--vdev", SINK_DEVARGS,
           "--", "--forward-mode=io", "--nb-cores=1", "--rxq=1", "--txq=1", "--no-flush-rx",
           f"--total-num-mbufs={setup.n_mbufs}", "--stats-period=1"]
    lines: list[str] = []
    events: queue.Queue = queue.Queue()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            text=True, errors="replace", start_new_session=True)

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            events.put((time.monotonic(), line))
        events.put((time.monotonic(), None))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        clock = None
        readings = [None, None]  # thread clock at the previous report and at this one
        window_start = None
        started = None          # when the first report (forwarding start) arrived
        block_start = None      # when the report being read arrived
        prev_block_start = None
        block: list[int] = []
        samples: list[tuple[float, float]] = []   # (interval length, pps)
        covered = 0.0
        deadline = time.monotonic() + startup_timeout_s
        while True:
            try:
                now, line = events.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                raise click.ClickException(
                    f"{TESTPMD} gave no statistics in time; its output ends:\n{_tail(lines)}") from None
            if line is None:
                raise click.ClickException(f"{TESTPMD} exited (status {proc.wait()}) before the measurement "
                                           f"ended; its output ends:\n{_tail(lines)}")
            lines.append(line)
            del lines[:-200]
            if "Port statistics" in line:
                prev_block_start, block_start, block = block_start, now, []
                if started is None:
                    started = now
                    clock = ThreadClock(proc.pid)
                readings = [readings[1], clock.read()]
                deadline = now + 15.0   # reports come every 1-2 s
                continue
            m = _TX_PPS.search(line)
            if m is None or block_start is None:
                continue
            block.append(int(m.group(1)))
            if len(block) < N_PORTS or prev_block_start is None:
                continue
            interval = block_start - prev_block_start
            if prev_block_start >= started + setup.warmup:
                window_start = window_start or readings[0]
                samples.append((interval, float(sum(block))))
                covered += interval
                if covered >= setup.seconds - 0.05:
                    break
    finally:
        _stop(proc)
        reader.join(5)
        cleanup_prefix(prefix)
    pps = sum(d * r for d, r in samples) / covered
    return Measurement("ceiling", pps, covered, ThreadClock.share(window_start, readings[1]),
                       [r for _, r in samples], cmd)


# -- 2. opte-fast's outbound path ----------------------------------------------------------------

def _worker() -> None:
    """The opte-fast side, in its own process (its own EAL): prints one JSON line."""
    cfg = json.loads(sys.argv[1])
    from .. import _dataplane
    from ..controlplane.dataplane import Dataplane, DataplaneError, DataplaneOptions, eal_cleanup, eal_init
    try:
        eal_init(cfg["eal"])
    except DataplaneError as e:
        print(json.dumps({"error": f"EAL: {e}"}), flush=True)
        sys.exit(1)
    dp = Dataplane(DataplaneOptions(underlay_addr=UNDERLAY, n_mbufs=cfg["n_mbufs"],
                                    flow_capacity=cfg["flow_capacity"]))
    try:
        dp.add_port(GUEST_PORT, cfg["source"], "guest")
        dp.add_port(uplink_name(0), cfg["sink"], "uplink")
        dp.commit(anycast_state(1))
        dp.start([WORKER_LCORE])
        clock = ThreadClock()
        time.sleep(cfg["warmup"])
        r0 = clock.read()
        t0, c0 = time.monotonic(), dp.counters()["tx_uplink_packets"]
        samples, t, c = [], t0, c0
        end = t0 + cfg["seconds"]
        while t < end:
            time.sleep(max(0.0, min(t + 1.0, end) - time.monotonic()))
            t1, c1 = time.monotonic(), dp.counters()["tx_uplink_packets"]
            if t1 - t >= 0.5:      # per-second samples for the record; a short tail only counts in the total
                samples.append((c1 - c) / (t1 - t))
            t, c = t1, c1
        r1 = clock.read()
        dp.stop()
        counters = dp.counters()
        drops = dict(zip(dp.counter_names, _dataplane.counter_drops()))
        print(json.dumps({
            "pps": (c - c0) / (t - t0), "seconds": t - t0, "samples_pps": samples, "tsc_hz": _dataplane.tsc_hz(),
            "cpu_share": ThreadClock.share(r0, r1),
            "counters": {k: counters[k] for k in ("rx_guest_packets", "tx_uplink_packets", "flows_created",
                                                  "flow_table_full")},
            "drops": {k: v for k, v in counters.items() if drops[k] and v},
        }), flush=True)
    except (DataplaneError, KeyError) as e:
        print(json.dumps({"error": str(e)}), flush=True)
        sys.exit(1)
    finally:
        dp.close()
        eal_cleanup()


def measure_opte_fast(setup: Setup, prefix: str, seconds: float) -> Measurement:
    cfg = {"eal": setup.eal(prefix, "opte-fast-bench"), "source": SOURCE_DEVARGS.format(pcap=setup.pcap),
           "sink": SINK_DEVARGS, "n_mbufs": setup.n_mbufs, "flow_capacity": setup.flow_capacity,
           "warmup": setup.warmup, "seconds": seconds}
    cmd = [sys.executable, "-c", "from opte_fast.tools.bench import _worker; _worker()", json.dumps(cfg)]
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                            text=True, errors="replace", env=env, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=60 + setup.warmup + seconds)
    except subprocess.TimeoutExpired:
        _stop(proc, signal.SIGTERM, 5)
        raise click.ClickException("the opte-fast run did not finish in time") from None
    finally:
        _stop(proc, signal.SIGTERM, 5)
        cleanup_prefix(prefix)
    result = None
    for line in reversed(out.splitlines()):
        if line.startswith("{"):
            result = json.loads(line)
            break
    if result is None or "error" in result or proc.returncode != 0:
        why = (result or {}).get("error") or (err.strip().splitlines() or ["no output"])[-1]
        raise click.ClickException(f"the opte-fast run failed (status {proc.returncode}): {why}")
    return Measurement("opte_fast", result["pps"], result["seconds"], result["cpu_share"], result["samples_pps"],
                       cmd[:3],
                       {"tsc_hz": result["tsc_hz"], "counters": result["counters"], "drops": result["drops"]})


# -- the command ---------------------------------------------------------------------------------

def check_hugepages(setup: Setup) -> None:
    try:
        info = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines() if ":" in line)
        free_mb = int(info["HugePages_Free"]) * int(info["Hugepagesize"].split()[0]) // 1024
    except (OSError, KeyError, ValueError):
        free_mb = 0
    if free_mb < setup.memory_mb:
        pages = -(-setup.memory_mb * 1024 // 2048)
        raise click.ClickException(
            f"--hugepages needs about {setup.memory_mb} MB of free hugepages, {free_mb} MB are free: "
            f"echo {pages} > /proc/sys/vm/nr_hugepages, or use --no-hugepages")


CONTENDED = 0.95   # below this share of its CPU, a forwarding thread was slowed by other processes


def report(setup: Setup, ceiling: Measurement, opte: Measurement) -> dict:
    tsc_hz = opte.extra["tsc_hz"]
    ceiling_cpp, opte_cpp = ceiling.cycles_per_packet(tsc_hz), opte.cycles_per_packet(tsc_hz)
    shares = [m.cpu_share for m in (ceiling, opte)]
    return {
        "flows": setup.flows, "frame_bytes": setup.frame_bytes, "seconds": setup.seconds,
        "warmup_seconds": setup.warmup, "hugepages": setup.hugepages, "lcore": WORKER_LCORE,
        "ceiling_mpps": round(ceiling.mpps, 3),
        "opte_fast_mpps": round(opte.mpps, 3),
        "ratio": round(opte.pps / ceiling.pps, 4),
        # (1/rate - 1/ceiling) x TSC Hz, each rate per second the forwarding thread was on its CPU.
        "cost_cycles_per_packet": round(opte_cpp - ceiling_cpp, 1),
        "ceiling_cycles_per_packet": round(ceiling_cpp, 1),
        "opte_fast_cycles_per_packet": round(opte_cpp, 1),
        "ratio_on_cpu": round(ceiling_cpp / opte_cpp, 4),
        "ceiling_cpu_share": None if shares[0] is None else round(shares[0], 3),
        "opte_fast_cpu_share": None if shares[1] is None else round(shares[1], 3),
        "contended": any(s is not None and s < CONTENDED for s in shares),
        "tsc_hz": tsc_hz, "tsc_source": "rte_get_tsc_hz() in the opte-fast run",
        "ceiling": {"pps": round(ceiling.pps), "measured_seconds": round(ceiling.seconds, 3),
                    "samples_mpps": [round(s / 1e6, 3) for s in ceiling.samples_pps], "command": ceiling.command},
        "opte_fast": {"pps": round(opte.pps), "measured_seconds": round(opte.seconds, 3),
                      "samples_mpps": [round(s / 1e6, 3) for s in opte.samples_pps], **opte.extra},
    }


def print_text(r: dict) -> None:
    mem = "hugepages" if r["hugepages"] else "no hugepages"
    c, o = r["opte_fast"]["counters"], r["opte_fast"]

    def share(x: float | None) -> str:
        return "  CPU share ?" if x is None else f"  CPU share {x:4.0%}"

    click.echo(f"opte-fast bench: {r['flows']} flows, {r['frame_bytes']}-byte frames, net_pcap (looped) -> "
               f"net_null, lcore {r['lcore']}, {mem}, {r['ceiling']['measured_seconds']:.1f} s measured each")
    click.echo(f"  I/O ceiling (dpdk-testpmd io)       {r['ceiling_mpps']:8.2f} Mpps  "
               f"{r['ceiling_cycles_per_packet']:7.1f} cycles/packet{share(r['ceiling_cpu_share'])}")
    click.echo(f"  opte-fast outbound (Geneve encap)   {r['opte_fast_mpps']:8.2f} Mpps  "
               f"{r['opte_fast_cycles_per_packet']:7.1f} cycles/packet{share(r['opte_fast_cpu_share'])}")
    click.echo(f"  ratio opte-fast / ceiling           {r['ratio']:8.3f}")
    click.echo(f"  data plane cost                     {r['cost_cycles_per_packet']:8.1f} cycles/packet "
               f"(TSC {r['tsc_hz'] / 1e9:.3f} GHz)")
    drops = ", ".join(f"{k} {v}" for k, v in o["drops"].items()) or "none"
    click.echo(f"  flows created {c['flows_created']}, flow table full {c['flow_table_full']}, drops: {drops}")
    if r["contended"]:
        click.echo(f"  warning: other processes ran on CPU {r['lcore']} during the measurement (CPU share below "
                   f"{CONTENDED:.0%}): the rates and their ratio are low and noisy; cycles/packet count only the "
                   f"forwarding thread's own time (on-CPU ratio {r['ratio_on_cpu']:.3f}). Rerun on a quiet machine.")


@click.command("bench")
@click.option("--flows", type=click.IntRange(1, 1 << 20), default=65536, show_default=True,
              help="Distinct flows in the replayed traffic (one frame each).")
@click.option("--duration-s", "seconds", type=click.IntRange(1, 3600), default=5, show_default=True,
              help="Measured time of each run (rounded up to whole testpmd reports), after the warm-up.")
@click.option("--warmup-s", "warmup", type=click.FloatRange(0.5, 60), default=1.0, show_default=True,
              help="Seconds of traffic before measuring.")
@click.option("--frame-bytes", type=click.IntRange(60, 1514), default=64, show_default=True,
              help="Frame length as in the mbuf (no FCS).")
@click.option("--hugepages/--no-hugepages", default=False, show_default=True,
              help="Run both sides on hugepages (--in-memory; reserve them first) or on plain memory.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def bench(flows: int, seconds: int, warmup: float, frame_bytes: int, hugepages: bool, as_json: bool) -> None:
    """Measure opte-fast's outbound path against the I/O ceiling (dpdk-testpmd io forwarding) over
    the same source (a looped pcap of FLOWS flows) and sink (net_null), one after the other.
    Cycles per packet count the forwarding thread's own time on its CPU; a warning says when
    other processes shared that CPU (then rerun on a quiet machine)."""
    testpmd_path()
    if len(os.sched_getaffinity(0)) < 2 or WORKER_LCORE not in os.sched_getaffinity(0):
        raise click.ClickException(f"bench needs CPU {WORKER_LCORE} and one more (this process may use "
                                   f"{sorted(os.sched_getaffinity(0))})")
    tmp = Path(tempfile.mkdtemp(prefix="opte-fast-bench-"))
    names = prefixes()
    try:
        setup = Setup.make(flows, seconds, warmup, frame_bytes, hugepages, tmp / "guest.pcap")
        if hugepages:
            check_hugepages(setup)
        write_pcap(Path(setup.pcap), flows, frame_bytes)
        if not as_json:
            click.echo(f"measuring the I/O ceiling (dpdk-testpmd), then opte-fast, about "
                       f"{2 * (seconds + warmup) + 8:.0f} s ...", err=True)
        ceiling = measure_ceiling(setup, names["ceiling"])
        opte = measure_opte_fast(setup, names["opte_fast"], ceiling.seconds)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        for prefix in names.values():
            cleanup_prefix(prefix)
    r = report(setup, ceiling, opte)
    if as_json:
        click.echo(json.dumps(r))
    else:
        print_text(r)


if __name__ == "__main__":
    bench()
