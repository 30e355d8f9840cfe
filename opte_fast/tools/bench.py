"""`opte-fast bench`: opte-fast against the I/O ceiling and Open vSwitch, over the same source and sink, in one run.

Every case (direction, flows, frame size, workers, 4 KB pages or hugepages) is measured up to three
ways, one after the other on the same CPUs, never overlapping, `--repeat` times:

1. the I/O ceiling: `dpdk-testpmd` in io forwarding mode (receive, transmit, nothing else), its rate
   read from its own `--stats-period` reports;
2. opte-fast in a subprocess with its own EAL: the sample sled (one guest, V2B 0.0.0.0/0 -> one TEP,
   a route to the TEP via one uplink), outbound (guest -> uplink, Geneve encap) or inbound (uplink
   -> guest, decap), its rate sampled from its counters over the ceiling's window length;
3. with `--with-ovs`, Open vSwitch with DPDK (bench_ovs.py): Geneve over IPv6 to one TEP.

All three take the same source (bench_traffic.py: a looped pcap whose flow fields the bench's DPDK
plugin rewrites per packet, on the forwarding core) and the same sink (`net_null`, `no-rx=1`).

opte-fast's own cost per packet is (1/rate - 1/ceiling) x TSC Hz, each rate per second of the
forwarding threads' time on their CPUs: the cycles it spends on parse, flow lookup and encap beyond
what receiving (and the rewrite) and transmitting the packet already cost.

A case may run opte-fast with a trace armed (`--trace`): one whose match no frame meets, or one that
matches every frame, its ring read as `ctl trace` reads it. What tracing costs is then measured in
that process: TRACE_ROUNDS pairs of windows, the trace not armed in one and armed in the other (in
turn first), each window's cycles/packet from the forwarding thread's own CPU clock; the figure is
the median of the pairs' ratios. A pair is a second apart on the same flows and memory, so the load
of a shared machine, which changes more slowly, weighs on both alike.
"""
from __future__ import annotations

import ipaddress
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import click

from . import bench_ovs
from .bench_report import TRACES, Case, CaseResult, Measurement, print_table, standard_table, summarise
from .bench_traffic import SINK_DEVARGS, Traffic, check_attached, plugin_path
from .sample import GUEST_PORT, UNDERLAY, anycast_state, uplink_name
from .threads import threads_named

TESTPMD = "dpdk-testpmd"
DPDK_RUN_DIR = Path("/var/run/dpdk")
PREFIX_BASE = "oft-bench"
WORKER_LCORES = (1, 2)
N_MBUFS = 32767          # the pcap's frames per queue, descriptors, caches, bursts in flight: not per flow
PERF_EVENTS = ("cycles", "instructions", "cache-misses", "dTLB-load-misses")
NEW_FLOW_TIMEOUT_S = 60.0
RUN_IDLE_MS = 3_600_000
TRACE_NO_MATCH = ipaddress.ip_address("192.0.2.255")  # no bench frame's inner destination, either way
TRACE_ROUNDS = 6          # pairs of windows, not armed and armed, that a traced case's cost ratio takes
TRACE_WINDOW_S = 0.5


def prefixes(tag: str | int | None = None) -> dict[str, str]:
    """EAL file prefixes (and the OVS namespace) of one bench run, per process, so parallel runs never collide."""
    base = f"{PREFIX_BASE}-{os.getpid() if tag is None else tag}"
    return {"ceiling": f"{base}-ceiling", "opte_fast": f"{base}-opte", "ovs": f"{base}-ovs"}


# -- sizing -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Setup:
    case: Case
    seconds: int
    warmup: float
    pcap: str

    @property
    def traffic(self) -> Traffic:
        c = self.case
        return Traffic("outbound" if c.direction == "new-flows" else c.direction, c.frame_bytes,
                       0 if c.direction == "new-flows" else c.flows, c.workers)

    @property
    def lcores(self) -> list[int]:
        return list(WORKER_LCORES[:self.case.workers])

    @property
    def flow_capacity(self) -> int:
        return max(self.case.flows, 1024)

    @property
    def memory_mb(self) -> int:
        """EAL memory: mbufs (about 2.5 KB each), the tables (the prefix tries take 128 MB and more), and
        up to 640 bytes per flow-table entry per worker; the same for every side of a case."""
        mb = 384 + N_MBUFS * 5 // 2 // 1024 + self.flow_capacity * self.case.workers * 640 // (1 << 20)
        return -(-mb // 64) * 64

    def eal(self, prefix: str, argv0: str) -> list[str]:
        from ..controlplane.dataplane import eal_args
        args = eal_args(self.lcores, file_prefix=prefix, hugepages=self.case.hugepages, memory_mb=self.memory_mb,
                        extra=("-d", str(plugin_path())))
        return [argv0, *args[1:]]


_WORKER_THREAD = re.compile(r"worker-?\d+$")   # rte-worker-1 (DPDK 22.11), dpdk-worker1 (24.11)


class ThreadClock:
    """Time on the CPU of a process's forwarding threads (from /proc/PID/task/TID/schedstat)."""

    def __init__(self, pid: int | str = "self", name: re.Pattern = _WORKER_THREAD):
        self.tasks = [Path(f"/proc/{pid}/task/{tid}") for tid in threads_named(pid, name)]

    @property
    def tids(self) -> list[int]:
        return [int(t.name) for t in self.tasks]

    def read(self) -> tuple[float, int | None]:
        """(monotonic seconds, nanoseconds on the CPU so far, summed over the threads; None when unknown)"""
        try:
            return time.monotonic(), sum(int((t / "schedstat").read_text().split()[0]) for t in self.tasks) \
                if self.tasks else None
        except (OSError, ValueError, IndexError):
            return time.monotonic(), None

    def share(self, start: tuple[float, int | None], end: tuple[float, int | None]) -> float | None:
        """Of the window, the share the threads were on their CPUs (1.0: each had its CPU alone)."""
        if start[1] is None or end[1] is None or end[0] <= start[0]:
            return None
        return min(1.0, (end[1] - start[1]) / 1e9 / (end[0] - start[0]) / len(self.tasks))

    def own_cpu_ns(self) -> int:
        """Nanoseconds on the CPU so far, summed over the threads, exact to the call: their thread CPU
        clocks, which this process may read for its own threads only (schedstat lags up to a tick)."""
        return sum(time.clock_gettime_ns((~tid << 3) | 6) for tid in self.tids)  # the kernel's thread CPUCLOCK_SCHED


# -- perf stat ----------------------------------------------------------------------------------

def perf_unavailable() -> str | None:
    """Why `perf stat` cannot count the hardware events here, or None when it can."""
    if shutil.which("perf") is None:
        return "perf is not installed (apt-get install linux-perf)"
    try:
        out = subprocess.run(["perf", "stat", "-x,", "-e", ",".join(PERF_EVENTS), "--", "true"],
                             capture_output=True, text=True, timeout=20).stderr
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"perf stat failed: {e}"
    counts = parse_perf(out)
    missing = [e for e in PERF_EVENTS if counts.get(e) is None]
    if missing:
        return (f"perf stat cannot count {', '.join(missing)} on this machine (no hardware performance counters, "
                f"as in a VM without a virtual PMU)")
    return None


def parse_perf(csv: str) -> dict[str, int | None]:
    """perf stat -x, lines: value,unit,event,... ('<not supported>' or '<not counted>' as value: None)."""
    counts: dict[str, int | None] = {}
    for line in csv.splitlines():
        fields = line.split(",")
        if len(fields) < 3:
            continue
        event = fields[2].split(":")[0]
        if event in PERF_EVENTS:
            counts[event] = int(fields[0]) if fields[0].isdigit() else None
    return counts


class PerfStat:
    """perf stat over threads `tids` for `seconds`, started now."""

    def __init__(self, tids: list[int], seconds: float):
        self.proc = subprocess.Popen(["perf", "stat", "-x,", "-e", ",".join(PERF_EVENTS), "-t",
                                      ",".join(map(str, tids)), "--", "sleep", f"{seconds:.3f}"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def result(self) -> dict[str, int | None]:
        try:
            _, err = self.proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return {}
        return parse_perf(err)


def _start_perf(enabled: bool, tids: list[int], seconds: float) -> PerfStat | None:
    return PerfStat(tids, seconds) if enabled and tids else None


# -- processes ----------------------------------------------------------------------------------

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


def measure_ceiling(setup: Setup, prefix: str, perf: bool = False, startup_timeout_s: float = 60.0) -> Measurement:
    """testpmd io forwarding, source -> sink. testpmd prints a report every stats period (one
    second, sometimes two: it counts the period in TSC cycles from its TSC estimate and sleeps in
    whole seconds); the first, printed as forwarding starts, has no rate. Reports whose interval
    began within the warm-up are skipped, then reports are taken until their intervals cover
    `seconds`. A report's rate is the sum of the ports' Tx-pps (only the sink transmits), which
    testpmd times itself; the interval lengths, weighting them, are the reports' arrival times here."""
    traffic = setup.traffic
    n = setup.case.workers
    cmd = [*setup.eal(prefix, testpmd_path()),
           "--vdev", traffic.source_devargs(Path(setup.pcap)), "--vdev", SINK_DEVARGS,
           "--", "--forward-mode=io", f"--nb-cores={n}", f"--rxq={n}", f"--txq={n}", "--no-flush-rx",
           f"--total-num-mbufs={N_MBUFS}", "--stats-period=1"]
    lines: list[str] = []
    attached = False
    events: queue.Queue = queue.Queue()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            text=True, errors="replace", start_new_session=True, env=traffic.env())

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            events.put((time.monotonic(), line))
        events.put((time.monotonic(), None))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    perf_stat = None
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
            attached = attached or line.startswith("opte-fast bench traffic: ")
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
                if window_start is None:
                    window_start = readings[0]
                    perf_stat = _start_perf(perf, clock.tids, setup.seconds)
                samples.append((interval, float(sum(block))))
                covered += interval
                if covered >= setup.seconds - 0.05:
                    break
    finally:
        _stop(proc)
        reader.join(5)
        cleanup_prefix(prefix)
    if not attached:
        raise click.ClickException(f"{TESTPMD}: the traffic plugin never rewrote the source's frames; its output "
                                   f"ends:\n{_tail(lines)}")
    pps = sum(d * r for d, r in samples) / covered
    if pps <= 0:
        raise click.ClickException(f"{TESTPMD} forwarded nothing in its {covered:.1f} s window (its thread ran "
                                   f"{clock.share(window_start, readings[1]) or 0:.0%} of it): the CPU was taken")
    return Measurement("ceiling", pps, covered, clock.share(window_start, readings[1]), n,
                       [r for _, r in samples], cmd, perf=perf_stat.result() if perf_stat else None)


# -- 2. opte-fast ------------------------------------------------------------------------------------

class BenchError(Exception):
    """A run that could not measure what it was asked to."""


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
    # No flow expires within a run, however long the first pass over millions of flows takes.
    dp = Dataplane(DataplaneOptions(underlay_addr=UNDERLAY, n_mbufs=cfg["n_mbufs"], flow_capacity=cfg["flow_capacity"],
                                    udp_idle_ms=RUN_IDLE_MS))
    outbound = cfg["direction"] != "inbound"
    sent = "tx_uplink_packets" if outbound else "tx_guest_packets"
    try:
        dp.add_port(GUEST_PORT, cfg["source"] if outbound else cfg["sink"], "guest")
        dp.add_port(uplink_name(0), cfg["sink"] if outbound else cfg["source"], "uplink")
        dp.commit(anycast_state(1))
        dp.start(cfg["lcores"])
        table_bytes = dp.memory()["bytes"]["flow"]     # the workers' flow tables, measured as allocated
        clock = ThreadClock()
        result = {"tsc_hz": _dataplane.tsc_hz(), "table_bytes": table_bytes, "flow_capacity": cfg["flow_capacity"]}
        if cfg["direction"] == "new-flows":
            result.update(_fill_rate(dp, clock, cfg["flow_capacity"]))
        else:
            time.sleep(cfg["warmup"])
            if outbound:     # the first pass over the flows inserts them all: measure after it
                _until_created(dp, min(cfg["flows"], cfg["flow_capacity"]))
            trace = ArmedTrace(dp, cfg["trace"]) if cfg["trace"] != "off" else None
            r0 = clock.read()
            perf_stat = _start_perf(cfg["perf"], clock.tids, cfg["seconds"])
            t0, c0 = time.monotonic(), dp.counters()[sent]
            samples, t, c = [], t0, c0
            end = t0 + cfg["seconds"]
            while t < end:
                time.sleep(max(0.0, min(t + 1.0, end) - time.monotonic()))
                t1, c1 = time.monotonic(), dp.counters()[sent]
                if t1 - t >= 0.5:      # per-second samples for the record; a short tail only counts in the total
                    samples.append((c1 - c) / (t1 - t))
                t, c = t1, c1
            r1 = clock.read()
            if trace is not None:
                result.update(trace.stop())
                result["trace_windows"] = _trace_cost(dp, clock, sent, cfg["trace"], result)
            result.update({"pps": (c - c0) / (t - t0), "seconds": t - t0, "samples_pps": samples,
                           "cpu_share": clock.share(r0, r1), "perf": perf_stat.result() if perf_stat else None})
        flows_held = dp.flow_count()
        dp.stop()
        counters = dp.counters()
        drops = dict(zip(dp.counter_names, _dataplane.counter_drops()))
        keep = ("rx_guest_packets", "rx_uplink_packets", "tx_uplink_packets", "tx_guest_packets", "flows_created",
                "flow_table_full", "handed_off")
        result.update({"flows_held": flows_held, "counters": {k: counters[k] for k in keep},
                       "drops": {k: v for k, v in counters.items() if drops[k] and v}})
        print(json.dumps(result), flush=True)
    except (DataplaneError, BenchError) as e:
        print(json.dumps({"error": str(e)}), flush=True)
        sys.exit(1)
    finally:
        dp.close()
        eal_cleanup()


class ArmedTrace:
    """A trace armed for a measurement (`kind`: miss or all, bench_report.TRACES), its ring read
    every TRACE_POLL_S as the control server reads it for `ctl trace`, on the control thread's CPU."""

    def __init__(self, dp, kind: str):
        from .. import _dataplane
        from ..api.server import ControlAPI
        self.dp, self.read, self.poll_s = dp, 0, ControlAPI.TRACE_POLL_S
        self.stopping = threading.Event()
        dp.trace_start(TRACE_NO_MATCH if kind == "miss" else None, count=_dataplane.TRACE_COUNT_MAX)
        self.thread = threading.Thread(target=self._drain, daemon=True)
        self.thread.start()

    def _drain(self) -> None:
        while not self.stopping.wait(self.poll_s):
            self.read += len(self.dp.trace_records()[0])

    def stop(self) -> dict:
        """Stops reading; the records read and refused. A trace that ran out of frames mid-window is an error."""
        self.stopping.set()
        self.thread.join()
        records, armed = self.dp.trace_records()
        if not armed:
            raise BenchError("the trace ran out of frames before the window ended; measure for less time")
        self.dp.trace_stop()
        return {"trace_records_read": self.read + len(records), "trace_records_lost": self.dp.trace_lost()}


def _trace_cost(dp, clock: ThreadClock, sent: str, kind: str, counts: dict) -> list[list[float]]:
    """[not armed, armed] CPU nanoseconds per packet of the forwarding threads, window by window in
    pairs (the first window of each pair alternating), adding the armed windows' records to `counts`."""
    pairs = []
    for i in range(TRACE_ROUNDS):
        per_packet = {}
        for armed in ((False, True) if i % 2 == 0 else (True, False)):
            trace = ArmedTrace(dp, kind) if armed else None
            time.sleep(TRACE_WINDOW_S / 10)   # the workers' next bursts run the other copy
            n0, ns0 = dp.counters()[sent], clock.own_cpu_ns()
            time.sleep(TRACE_WINDOW_S)
            n1, ns1 = dp.counters()[sent], clock.own_cpu_ns()
            if trace is not None:
                for k, v in trace.stop().items():
                    counts[k] += v
            if n1 <= n0:
                raise BenchError(f"nothing forwarded in a {TRACE_WINDOW_S} s window of the trace's cost")
            per_packet[armed] = (ns1 - ns0) / (n1 - n0)
        pairs.append([per_packet[False], per_packet[True]])
    return pairs


def _until_created(dp, flows: int) -> None:
    """Until the first pass has inserted every flow. Its last inserts, into a table nearly full, are
    the slowest: a minute, and a second per 25,000 flows beyond 1.5 million (4M flows: 168 s)."""
    timeout = max(NEW_FLOW_TIMEOUT_S, flows / 25_000)
    deadline = time.monotonic() + timeout
    while (created := dp.counters()["flows_created"]) < flows:
        if time.monotonic() > deadline:
            raise BenchError(f"{created} of the {flows} flows were created in {timeout:.0f} s of warm-up")
        time.sleep(0.05)


def _fill_rate(dp, clock: ThreadClock, capacity: int) -> dict:
    """Every packet a new flow: flows set up per second while the table fills from 10% to 90% of
    `capacity` (the ramp's ends excluded: start-up, and the last free slots' longer searches), or
    to where it got by the deadline (`filled_to` says which)."""
    lo, hi = capacity // 10, capacity * 9 // 10
    start = last = None     # (t, flows_created, packets sent, stateless, cpu reading): past lo, and the latest
    deadline = time.monotonic() + NEW_FLOW_TIMEOUT_S
    while time.monotonic() < deadline:
        time.sleep(0.002)
        reading = clock.read()
        c = dp.counters()
        last = (reading[0], c["flows_created"], c["tx_uplink_packets"], c["flow_table_full"], reading)
        if start is None and last[1] >= lo:
            start = last
        if last[1] >= hi:
            break
    if start is None or last[0] <= start[0]:
        raise BenchError(f"the flow table did not fill to {lo} flows in {NEW_FLOW_TIMEOUT_S:.0f} s")
    (t0, f0, p0, s0, r0), (t1, f1, p1, s1, r1) = start, last
    # A new flow that finds no free entry is forwarded statelessly (flow_table_full): sent, not set up.
    return {"pps": (p1 - p0) / (t1 - t0), "flows_per_s": (f1 - f0) / (t1 - t0), "seconds": t1 - t0,
            "stateless_per_s": (s1 - s0) / (t1 - t0),
            "filled_to": f1, "samples_pps": [], "cpu_share": clock.share(r0, r1), "perf": None}


def measure_opte_fast(setup: Setup, prefix: str, seconds: float, perf: bool = False) -> Measurement:
    traffic = setup.traffic
    cfg = {"eal": setup.eal(prefix, "opte-fast-bench"), "source": traffic.source_devargs(Path(setup.pcap)),
           "sink": SINK_DEVARGS, "n_mbufs": N_MBUFS, "flow_capacity": setup.flow_capacity,
           "direction": setup.case.direction, "flows": setup.case.flows, "lcores": setup.lcores,
           "warmup": setup.warmup, "seconds": seconds, "perf": perf, "trace": setup.case.trace}
    cmd = [sys.executable, "-c", "from opte_fast.tools.bench import _worker; _worker()", json.dumps(cfg)]
    env = traffic.env()
    root = str(Path(__file__).resolve().parents[2])   # the repository, for a run from the source tree
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                            text=True, errors="replace", env=env, start_new_session=True)
    try:
        limit = 90 + setup.warmup + seconds + 2 * NEW_FLOW_TIMEOUT_S + setup.case.flows / 25_000
        out, err = proc.communicate(timeout=limit)
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
    try:
        check_attached(err, "opte-fast")
    except RuntimeError as e:
        raise click.ClickException(str(e)) from None
    if result["pps"] <= 0:
        raise click.ClickException(f"opte-fast forwarded nothing in its {result['seconds']:.1f} s window (its "
                                   f"threads ran {result['cpu_share'] or 0:.0%} of it): the CPU was taken")
    extra = {k: result[k] for k in ("tsc_hz", "table_bytes", "flow_capacity", "flows_held", "counters", "drops")}
    if "flows_per_s" in result:
        extra.update({k: result[k] for k in ("flows_per_s", "stateless_per_s", "filled_to")})
    if "trace_records_read" in result:
        extra.update({k: result[k] for k in ("trace_records_read", "trace_records_lost", "trace_windows")})
    return Measurement("opte_fast", result["pps"], result["seconds"], result["cpu_share"], setup.case.workers,
                       result["samples_pps"], cmd[:3], extra, result["perf"])


# -- 3. Open vSwitch -----------------------------------------------------------------------------------

def measure_ovs(setup: Setup, name: str, seconds: float, perf: bool = False) -> Measurement:
    """OVS's PMD threads' "packets received" per second over the window (pmd-stats-show counts in
    real time; interface statistics refresh only every 5 s), after the warm-up."""
    cpus = _worker_cpus(setup)
    try:
        with bench_ovs.OvsPeer(setup.traffic, Path(setup.pcap), pmd_cpus=cpus, hugepages=setup.case.hugepages,
                               memory_mb=max(setup.memory_mb, 2048), name=name) as ovs:
            time.sleep(setup.warmup)
            clock = ThreadClock(ovs.vswitchd_pid, bench_ovs.PMD_THREAD)
            if not clock.tasks:
                raise bench_ovs.OvsError(f"ovs-vswitchd has no PMD thread\n{ovs.diagnostics()}")
            s0, r0 = ovs.pmd_stats(), clock.read()
            perf_stat = _start_perf(perf, clock.tids, seconds)
            time.sleep(seconds)
            s1, r1 = ovs.pmd_stats(), clock.read()
            received = s1.get("packets received", 0) - s0.get("packets received", 0)
            lost = s1.get("miss with failed upcall", 0) - s0.get("miss with failed upcall", 0)
            if received <= 0:
                raise bench_ovs.OvsError(f"Open vSwitch received nothing\n{ovs.diagnostics()}")
            cycles = s1.get("processing cycles", 0) - s0.get("processing cycles", 0)
            extra = {"failed_upcalls": int(lost), "pmd_processing_cycles_per_packet": round(cycles / received, 1),
                     "pmd_cpus": cpus}
            return Measurement("ovs", (received - lost) / (r1[0] - r0[0]), r1[0] - r0[0], clock.share(r0, r1),
                               len(clock.tasks), [], [str(bench_ovs.VSWITCHD_DPDK)], extra,
                               perf_stat.result() if perf_stat else None)
    except (bench_ovs.OvsError, OSError, subprocess.TimeoutExpired) as e:
        raise click.ClickException(f"Open vSwitch run failed: {e}") from None


def _worker_cpus(setup: Setup) -> list[int]:
    """The CPUs the EAL puts the worker lcores on (dataplane.eal_args), for OVS's PMD threads."""
    placed = []
    for arg in setup.eal("x", "x"):
        if arg.startswith("--lcores="):
            for item in arg.split("=", 1)[1].split(","):
                lcore, _, cpu = item.partition("@")
                if lcore.isdigit() and int(lcore) in setup.lcores and cpu.isdigit():
                    placed.append(int(cpu))
    return placed


# -- hugepages -----------------------------------------------------------------------------------------

NR_HUGEPAGES = Path("/proc/sys/vm/nr_hugepages")


def _meminfo() -> dict[str, int]:
    info = {}
    for line in Path("/proc/meminfo").read_text().splitlines():
        key, _, value = line.partition(":")
        if value.split():
            info[key] = int(value.split()[0])
    return info


class Hugepages:
    """Reserves the 2 MB pages the hugepage cases need, if fewer are free, and releases what it
    added afterwards. `reason` says why there are none (the cases on hugepages are then skipped)."""

    def __init__(self, needed_mb: int):
        self.needed_mb = needed_mb
        self.added = 0
        self.reason: str | None = None

    def __enter__(self) -> Hugepages:
        try:
            info = _meminfo()
            page_kb = info["Hugepagesize"]
            free = info["HugePages_Free"]
            want = -(-self.needed_mb * 1024 // page_kb)
            if free < want:
                total = int(NR_HUGEPAGES.read_text())
                NR_HUGEPAGES.write_text(str(total + want - free))
                self.added = int(NR_HUGEPAGES.read_text()) - total
                free = _meminfo()["HugePages_Free"]
            if free < want:
                self.reason = (f"only {free * page_kb // 1024} MB of hugepages could be reserved, "
                               f"{self.needed_mb} MB are needed")
        except (OSError, KeyError, ValueError) as e:
            self.reason = f"cannot reserve hugepages: {e}"
        return self

    def __exit__(self, *_: object) -> None:
        if self.added > 0:
            try:
                NR_HUGEPAGES.write_text(str(max(0, int(NR_HUGEPAGES.read_text()) - self.added)))
            except OSError as e:
                click.echo(f"opte-fast bench: could not release {self.added} hugepages: {e}", err=True)


def measure_case(setup: Setup, result: CaseResult, names: dict[str, str], with_ovs: bool, perf: bool) -> None:
    """One run of each side; a run counts only when all its sides measured (ratios pair them)."""
    ceiling = measure_ceiling(setup, names["ceiling"], perf=perf)
    opte = measure_opte_fast(setup, names["opte_fast"], ceiling.seconds, perf=perf)
    ovs = measure_ovs(setup, names["ovs"], ceiling.seconds, perf=perf) \
        if with_ovs and setup.case.direction != "new-flows" and setup.case.trace == "off" else None
    result.ceiling.append(ceiling)
    result.opte_fast.append(opte)
    if ovs is not None:
        result.ovs.append(ovs)


# -- the command -----------------------------------------------------------------------------------------

def _csv_ints(_ctx, _param, value: str | None) -> list[int] | None:
    if value is None:
        return None
    try:
        out = [int(v.replace("_", ""), 0) for v in value.split(",") if v.strip()]
    except ValueError:
        raise click.BadParameter(f"expected numbers separated by commas, got {value!r}") from None
    if not out:
        raise click.BadParameter("expected at least one number")
    return out


def _csv_choice(choices: tuple[str, ...]):
    def parse(_ctx, _param, value: str | None) -> list[str] | None:
        if value is None:
            return None
        out = [v.strip() for v in value.split(",") if v.strip()]
        bad = [v for v in out if v not in choices]
        if bad or not out:
            raise click.BadParameter(f"expected some of {', '.join(choices)} separated by commas, got {value!r}")
        return out
    return parse


def plan(flows: list[int] | None, frames: list[int] | None, directions: list[str] | None,
         workers: list[int] | None, pages: list[str] | None, huge_default: bool,
         traces: list[str] | None = None) -> list[Case]:
    """The standard table when no case option is given, else every combination of the given ones
    (the others at 65,536 flows, 64-byte frames, outbound, 1 worker, 4 KB pages, no trace). A traced
    case comes beside its untraced twin; new flows are never traced."""
    if all(x is None for x in (flows, frames, directions, workers, pages, traces)):
        return standard_table(huge_default)
    for n in flows or ():
        if not 1 <= n <= 1 << 24:
            raise click.BadParameter(f"--flows: {n} is outside 1 .. 16777216")
    for n in frames or ():
        if not 60 <= n <= 1514:
            raise click.BadParameter(f"--frame-bytes: {n} is outside 60 .. 1514")
    for n in workers or ():
        if n not in (1, 2):
            raise click.BadParameter(f"--workers: {n}; the bench runs 1 or 2 workers")
    traces = ["off", *(t for t in traces or () if t != "off")]
    if "new-flows" in (directions or ()) and len(traces) > 1:
        raise click.BadParameter("--trace: new flows are not traced (a trace is measured on known flows)")
    return [Case(d, f, b, w, p == "huge", trace)
            for d in directions or ["outbound"] for f in flows or [65536] for b in frames or [64]
            for w in workers or [1] for p in pages or ["4k"] for trace in traces]


@click.command("bench")
@click.option("--flows", callback=_csv_ints, metavar="N[,N...]",
              help="Distinct flows looped by the source (comma list), up to 16M. [default: the standard table]")
@click.option("--frame-bytes", callback=_csv_ints, metavar="B[,B...]",
              help="Guest frame lengths as in the mbuf (no FCS), 60-1514.")
@click.option("--direction", callback=_csv_choice(("outbound", "inbound", "new-flows")), metavar="D[,D...]",
              help="outbound (encap), inbound (decap) or new-flows (every packet a new flow until the table is full).")
@click.option("--workers", callback=_csv_ints, metavar="1|2|1,2", help="Worker lcores (1 and 2 side by side: 1,2).")
@click.option("--pages", callback=_csv_choice(("4k", "huge")), metavar="4k|huge|4k,huge",
              help="EAL memory on 4 KB pages (--no-huge) or 2 MB hugepages (reserved for the run, released after).")
@click.option("--trace", "traces", callback=_csv_choice(TRACES), metavar="off|miss|all[,...]",
              help="Also run each case with a trace armed: miss (a match no frame meets), all (every frame "
                   "traced, the ring read as ctl trace reads it), and measure its cost against no trace.")
@click.option("--with-ovs", is_flag=True, help="Also measure Open vSwitch with DPDK (openvswitch-switch-dpdk).")
@click.option("--repeat", type=click.IntRange(1, 20), default=3, show_default=True,
              help="Runs of every measurement; figures are medians.")
@click.option("--duration-s", "seconds", type=click.IntRange(1, 3600), default=3, show_default=True,
              help="Measured time of each run (rounded up to whole testpmd reports), after the warm-up.")
@click.option("--warmup-s", "warmup", type=click.FloatRange(0.5, 60), default=1.0, show_default=True,
              help="Seconds of traffic before measuring.")
@click.option("--perf/--no-perf", default=True, show_default=True,
              help="Count cycles, instructions, cache and dTLB misses of the forwarding threads with perf stat, "
                   "where the machine has the counters.")
@click.option("--json", "as_json", is_flag=True, help="Print the whole table as one JSON object.")
def bench(flows, frame_bytes, direction, workers, pages, traces, with_ovs: bool, repeat: int, seconds: int,
          warmup: float, perf: bool, as_json: bool) -> None:
    """Measure opte-fast against the I/O ceiling (dpdk-testpmd io) and, with --with-ovs, Open vSwitch,
    over the same source and sink, one after the other, REPEAT times; print the table of medians.
    Without case options it runs the standard table: outbound at 1K, 64K and 1M flows on 4 KB pages and
    hugepages, 512- and 1400-byte frames, inbound, new flows, 2 workers beside 1, and outbound and inbound
    with a trace armed."""
    testpmd_path()
    try:
        plugin_path()
    except FileNotFoundError as e:
        raise click.ClickException(str(e)) from None
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2 or 1 not in cpus:
        raise click.ClickException(f"bench needs CPU 1 and one more (this process may use {cpus})")
    cases = plan(flows, frame_bytes, direction, workers, pages, huge_default=True, traces=traces)
    notes: list[str] = []
    ovs_missing = bench_ovs.missing() if with_ovs else None
    if ovs_missing:
        notes.append(f"Open vSwitch skipped: {ovs_missing}")
    perf_reason = perf_unavailable() if perf else "not asked for (--no-perf)"
    if perf_reason:
        notes.append(f"perf stat: {perf_reason}")
    if any(c.workers == 2 for c in cases) and len(cpus) < 3:
        notes.append(f"2 workers on {len(cpus)} CPUs: the second worker shares CPU 0 with the control thread and "
                     f"everything else on the machine, so the 2-worker figures are not meaningful (3 CPUs needed)")
    tmp = Path(tempfile.mkdtemp(prefix="oftb-"))
    names = prefixes()
    results: list[CaseResult] = []
    huge_mb = max([Setup(c, seconds, warmup, "").memory_mb + (2048 if with_ovs else 0)
                   for c in cases if c.hugepages] or [0])
    try:
        with Hugepages(huge_mb) as huge:
            if huge.reason and huge_mb:
                notes.append(f"hugepage cases skipped: {huge.reason}")
                cases = [c for c in cases if not c.hugepages]
            setups = []
            for i, case in enumerate(cases):
                pcap = tmp / f"{i}.pcap"
                setup = Setup(case, seconds, warmup, str(pcap))
                setup.traffic.write_pcap(pcap)
                setups.append(setup)
                results.append(CaseResult(case))
            if not as_json:
                click.echo(f"{len(cases)} cases x {repeat} runs, each {seconds + warmup:.0f} s or more per side; "
                           f"load average {os.getloadavg()[0]:.2f}", err=True)
            for run in range(repeat):
                for setup, result in zip(setups, results):
                    if not as_json:
                        click.echo(f"run {run + 1}/{repeat}: {setup.case.label()} ...", err=True)
                    try:
                        measure_case(setup, result, names, with_ovs and not ovs_missing, not perf_reason)
                    except click.ClickException as e:   # one case failing leaves the others' figures
                        notes.append(f"{setup.case.label()}, run {run + 1}: {e.message}")
                        if not as_json:
                            click.echo(f"  failed: {e.message}", err=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        for prefix in names.values():
            cleanup_prefix(prefix)
    table = summarise(results, notes, {"repeat": repeat, "seconds": seconds, "warmup_seconds": warmup,
                                       "with_ovs": with_ovs, "cpus": len(cpus),
                                       "load_average": round(os.getloadavg()[0], 2)})
    if as_json:
        click.echo(json.dumps(table))
    else:
        print_table(table)


if __name__ == "__main__":
    bench()
