"""`opte-fast bench`'s cases, and its table: medians over the runs, ratios from the same runs."""
from __future__ import annotations

import statistics
from dataclasses import dataclass, field, replace

import click

LINE_RATE_BPS = 100e9
WIRE_OVERHEAD = 4 + 20          # FCS, preamble and inter-frame gap: what a port's line rate also carries
CONTENDED = 0.95                # below this share of their CPUs, forwarding threads were slowed by others


# What a case's trace does: not armed (every other case), armed with a match no frame meets, armed
# matching every frame (each decision recorded, the ring read as `ctl trace` reads it).
TRACES = ("off", "miss", "all")
TRACE_LABELS = {"off": "", "miss": "trace armed, no frame matches", "all": "trace armed, every frame matches"}


@dataclass(frozen=True)
class Case:
    direction: str          # outbound, inbound, new-flows
    flows: int              # flows looped (new-flows: the table's capacity, filled once)
    frame_bytes: int
    workers: int
    hugepages: bool
    trace: str = "off"      # one of TRACES

    def label(self) -> str:
        return (f"{self.direction}, {_count(self.flows)} flows, {self.frame_bytes} B, "
                f"{'hugepages' if self.hugepages else '4 KB pages'}, {self.workers} worker{'s' * (self.workers > 1)}"
                + (f", {TRACE_LABELS[self.trace]}" if self.trace != "off" else ""))

    def untraced(self) -> Case:
        """The same case with no trace armed: the row a traced one is printed beside."""
        return replace(self, trace="off")


def standard_table(hugepages: bool = True) -> list[Case]:
    """The table of issue #12: outbound at 1K, 64K and 1M flows and new flows on both kinds of memory,
    then on 4 KB pages (what runs everywhere) 512- and 1400-byte frames, inbound, 2 workers; and of
    issue #14, outbound and inbound at 64K flows with a trace armed (beside their untraced rows)."""
    pages = (False, True) if hugepages else (False,)
    rows = [Case("outbound", flows, 64, 1, huge) for flows in (1024, 65536, 1 << 20) for huge in pages
            if not (flows == 1024 and huge)]
    return rows + [Case("outbound", 65536, 512, 1, False), Case("outbound", 65536, 1400, 1, False),
                   Case("inbound", 65536, 64, 1, False)] + [Case("new-flows", 1 << 20, 64, 1, huge) for huge in pages] \
        + [Case("outbound", 65536, 64, 2, False)] \
        + [Case(d, 65536, 64, 1, False, trace) for d in ("outbound", "inbound") for trace in ("miss", "all")]


@dataclass
class Measurement:
    name: str
    pps: float
    seconds: float
    cpu_share: float | None     # of the window, the forwarding threads' time on their CPUs
    threads: int                # forwarding threads
    samples_pps: list[float] = field(default_factory=list)
    command: list[str] = field(default_factory=list)
    extra: dict = field(default_factory=dict)
    perf: dict | None = None    # perf stat counts over the window, per event

    @property
    def mpps(self) -> float:
        """Per second of the forwarding threads' time on their CPUs: what they forward when they
        have their CPUs alone, whatever else the machine ran meanwhile (the wall-clock rate is `pps`)."""
        return self.pps / (self.cpu_share or 1.0) / 1e6

    def cycles_per_packet(self, tsc_hz: int) -> float:
        """TSC cycles the forwarding threads spent per packet: their time on the CPU, not the wall
        clock, so other processes sharing the CPUs do not count (the two agree when they had them alone)."""
        return tsc_hz * (self.cpu_share or 1.0) * self.threads / self.pps

    def perf_per_packet(self) -> dict[str, float] | None:
        if not self.perf or any(v is None for v in self.perf.values()):
            return None
        packets = self.pps * self.seconds
        return {event: round(count / packets, 2) for event, count in self.perf.items()}


@dataclass
class CaseResult:
    case: Case
    ceiling: list[Measurement] = field(default_factory=list)
    opte_fast: list[Measurement] = field(default_factory=list)
    ovs: list[Measurement] = field(default_factory=list)


def _count(n: int) -> str:
    for unit, size in (("M", 1 << 20), ("K", 1 << 10)):
        if n >= size and n % size == 0:
            return f"{n // size}{unit}"
    return str(n)


def _median(values: list[float | None], digits: int = 3) -> float | None:
    values = [v for v in values if v is not None]
    return round(statistics.median(values), digits) if values else None


def line_rate_pps(wire_bytes: int) -> float:
    return LINE_RATE_BPS / ((wire_bytes + WIRE_OVERHEAD) * 8)


def summarise_case(r: CaseResult) -> dict:
    c = r.case
    tsc_hz = r.opte_fast[0].extra["tsc_hz"]
    runs = list(zip(r.ceiling, r.opte_fast))
    own = [o.cycles_per_packet(tsc_hz) - ceil.cycles_per_packet(tsc_hz) for ceil, o in runs]
    opte_mpps = _median([o.mpps for o in r.opte_fast])
    wire_bytes = c.frame_bytes + 70
    out = {
        "case": c.label(), "direction": c.direction, "flows": c.flows, "frame_bytes": c.frame_bytes,
        "uplink_frame_bytes": wire_bytes, "workers": c.workers, "hugepages": c.hugepages, "trace": c.trace,
        "runs": len(runs),
        "ceiling_mpps": _median([m.mpps for m in r.ceiling]),
        "opte_fast_mpps": opte_mpps,
        "opte_fast_to_ceiling": _median([o.mpps / ceil.mpps for ceil, o in runs], 4),
        "ceiling_mpps_wall": _median([m.pps / 1e6 for m in r.ceiling]),
        "opte_fast_mpps_wall": _median([m.pps / 1e6 for m in r.opte_fast]),
        "own_cost_cycles_per_packet": _median(own, 1),
        "ceiling_cycles_per_packet": _median([m.cycles_per_packet(tsc_hz) for m in r.ceiling], 1),
        "opte_fast_cycles_per_packet": _median([m.cycles_per_packet(tsc_hz) for m in r.opte_fast], 1),
        "opte_fast_gbps": round(opte_mpps * 1e6 * c.frame_bytes * 8 / 1e9, 2),
        "uplink_gbps": round(opte_mpps * 1e6 * wire_bytes * 8 / 1e9, 2),
        "line_rate_mpps": round(line_rate_pps(wire_bytes) / 1e6, 2),
        "cores_for_line_rate": round(line_rate_pps(wire_bytes) / (opte_mpps * 1e6 / c.workers), 1),
        # Every worker has a table of flow_capacity entries, and each flow lives in one of them.
        "bytes_per_flow": round(statistics.median(o.extra["table_bytes"] / (o.extra["flow_capacity"] * c.workers)
                                                  for o in r.opte_fast), 1),
        "table_bytes": r.opte_fast[-1].extra["table_bytes"],
        "flow_capacity": r.opte_fast[-1].extra["flow_capacity"],
        "flows_held": r.opte_fast[-1].extra["flows_held"],
        "cpu_share_min": {k: _min_share(ms) for k, ms in (("ceiling", r.ceiling), ("opte_fast", r.opte_fast),
                                                         ("ovs", r.ovs)) if ms},
        "tsc_hz": tsc_hz,
        "ceiling_runs_mpps": [round(m.mpps, 3) for m in r.ceiling],
        "opte_fast_runs_mpps": [round(m.mpps, 3) for m in r.opte_fast],
        "cpu_shares": {k: [None if m.cpu_share is None else round(m.cpu_share, 3) for m in ms]
                       for k, ms in (("ceiling", r.ceiling), ("opte_fast", r.opte_fast), ("ovs", r.ovs)) if ms},
        "counters": r.opte_fast[-1].extra["counters"], "drops": r.opte_fast[-1].extra["drops"],
        "perf_per_packet": {k: _median_dicts([m.perf_per_packet() for m in ms])
                            for k, ms in (("ceiling", r.ceiling), ("opte_fast", r.opte_fast), ("ovs", r.ovs)) if ms},
        "ceiling_command": r.ceiling[-1].command,
    }
    if c.trace != "off":
        # Cycles/packet without and with the trace, window pairs in the same process (bench.py, _trace_cost).
        pairs = [(off * tsc_hz / 1e9, on * tsc_hz / 1e9) for o in r.opte_fast for off, on in o.extra["trace_windows"]]
        ratios = sorted(on / off for off, on in pairs)
        out.update({
            "trace_cost_ratio": _median(ratios, 3),
            "trace_cost_ratio_range": [round(ratios[0], 3), round(ratios[-1], 3)],
            "trace_pairs": len(pairs), "trace_cycles_per_packet_not_armed": _median([off for off, _ in pairs], 1),
            "trace_cycles_per_packet_armed": _median([on for _, on in pairs], 1),
            "trace_records_read": sum(o.extra["trace_records_read"] for o in r.opte_fast),
            "trace_records_lost": sum(o.extra["trace_records_lost"] for o in r.opte_fast)})
    if c.direction == "new-flows":
        out["new_flows_per_s_per_worker"] = round(statistics.median(
            o.extra["flows_per_s"] / (o.cpu_share or 1.0) for o in r.opte_fast) / c.workers)
        # Of the frames sent in the window, those that found no free entry (the reader late past 100%).
        out["new_flows_stateless_share"] = _median([o.extra["stateless_per_s"] / o.pps for o in r.opte_fast], 4)
    if r.ovs:
        pairs = list(zip(r.opte_fast, r.ovs))
        out.update({
            "ovs_mpps": _median([m.mpps for m in r.ovs]),
            "ovs_mpps_wall": _median([m.pps / 1e6 for m in r.ovs]),
            "opte_fast_to_ovs": _median([o.mpps / v.mpps for o, v in pairs], 3),
            "ovs_to_ceiling": _median([v.mpps / ceil.mpps for ceil, v in zip(r.ceiling, r.ovs)], 4),
            "ovs_own_cost_cycles_per_packet": _median([v.cycles_per_packet(tsc_hz) - ceil.cycles_per_packet(tsc_hz)
                                                       for ceil, v in zip(r.ceiling, r.ovs)], 1),
            "ovs_runs_mpps": [round(m.mpps, 3) for m in r.ovs],
            "ovs_failed_upcalls": sum(m.extra["failed_upcalls"] for m in r.ovs),
            "ovs_pmd_cycles_per_packet": _median([m.extra["pmd_processing_cycles_per_packet"] for m in r.ovs], 1),
        })
    out["contended"] = any(s is not None and s < CONTENDED for s in out["cpu_share_min"].values())
    return out


def _min_share(ms: list[Measurement]) -> float | None:
    shares = [m.cpu_share for m in ms if m.cpu_share is not None]
    return round(min(shares), 3) if shares else None


def _median_dicts(ds: list[dict[str, float] | None]) -> dict[str, float] | None:
    ds = [d for d in ds if d]
    return {k: round(statistics.median(d[k] for d in ds), 2) for k in ds[0]} if ds else None


def summarise(results: list[CaseResult], notes: list[str], run: dict) -> dict:
    return {**run, "notes": notes, "cases": [summarise_case(r) for r in results if r.opte_fast]}


# -- text --------------------------------------------------------------------------------------------

COLUMNS = ("case", "flows", "memory", "I/O ceiling (testpmd io)", "opte-fast", "Open vSwitch Geneve",
           "opte-fast / OVS", "opte-fast's own cost", "opte-fast Gbit/s", "cores for 100 GbE", "memory per flow",
           "CPU share")


def _f(x: float | None, fmt: str, unit: str = "") -> str:
    return "–" if x is None else f"{x:{fmt}}{unit}"


def row(s: dict) -> list[str]:
    new_flows = s["direction"] == "new-flows"
    what = {"outbound": "outbound", "inbound": "inbound (decap)", "new-flows": "new flows"}[s["direction"]]
    what += f", {s['frame_bytes']} B"
    if s["workers"] > 1:
        what += f", {s['workers']} workers"
    if s["trace"] != "off":
        what += f", {TRACE_LABELS[s['trace']]}"
    opte = _f(s["opte_fast_mpps"], ".2f", " Mpps")
    if new_flows:
        opte += f", {s['new_flows_per_s_per_worker'] / 1e6:.2f} M flows/s per worker"
        if s["new_flows_stateless_share"]:
            opte += f" ({s['new_flows_stateless_share']:.1%} of frames stateless: table full)"
    ovs = "not comparable" if new_flows else _f(s.get("ovs_mpps"), ".2f", " Mpps")
    return [what, f"{s['flows']:,}", "hugepages" if s["hugepages"] else "4 KB pages",
            _f(s["ceiling_mpps"], ".2f", " Mpps"), opte, ovs, _f(s.get("opte_fast_to_ovs"), ".2f", "×"),
            _f(s["own_cost_cycles_per_packet"], ".0f", " cycles/packet"),
            f"{s['opte_fast_gbps']:.1f} ({s['uplink_gbps']:.1f} on the uplink)",
            f"{s['cores_for_line_rate']:.1f}", f"{s['bytes_per_flow']:.0f} B",
            _f(min([v for v in s["cpu_share_min"].values() if v is not None], default=None), ".0%")]


def print_table(t: dict) -> None:
    click.echo(f"opte-fast bench: medians of {t['repeat']} runs, {t['seconds']} s measured each after "
               f"{t['warmup_seconds']:.1f} s; {t['cpus']} CPUs, load average {t['load_average']}; source a looped "
               f"pcap rewritten per packet (net_pcap + the bench's plugin), sink net_null. Rates are per second "
               f"of the forwarding threads' time on their CPUs (CPU share: the lowest share of the wall clock "
               f"they got); ratios pair the sides of each run.")
    click.echo("")
    click.echo("| " + " | ".join(COLUMNS) + " |")
    click.echo("|---|--:|---|" + "--:|" * (len(COLUMNS) - 3))
    for s in t["cases"]:
        click.echo("| " + " | ".join(row(s)) + " |")
    click.echo("")
    if t["cases"]:
        click.echo(f"TSC {t['cases'][0]['tsc_hz'] / 1e9:.3f} GHz. Own cost: (1/rate - 1/ceiling) x TSC, each rate per "
                   f"second on CPU. Cores for 100 GbE: the uplink's line rate at the case's frame size (+70 B "
                   f"Geneve, +24 B FCS and gap) over one worker's rate.")
    for s in t["cases"]:
        shares = ", ".join(f"{k} {_f(v, '.0%')}" for k, v in s["cpu_share_min"].items())
        drops = ", ".join(f"{k} {v}" for k, v in s["drops"].items()) or "none"
        wall = ", ".join(f"{k} {s[k + '_mpps_wall']:.2f}" for k in ("ceiling", "opte_fast", "ovs")
                         if s.get(k + "_mpps_wall") is not None)
        line = (f"- {s['case']}: ceiling {s['ceiling_cycles_per_packet']} and opte-fast "
                f"{s['opte_fast_cycles_per_packet']} cycles/packet on CPU; lowest CPU share {shares}; "
                f"wall-clock Mpps {wall}; "
                f"flow table {s['table_bytes'] / 2**20:.1f} MB for {s['flow_capacity']:,} flows "
                f"({s['flows_held']:,} held); drops {drops}")
        if "ovs_mpps" in s:
            line += (f"; OVS {s['ovs_own_cost_cycles_per_packet']} cycles/packet beyond the ceiling "
                     f"(its PMD counts {s['ovs_pmd_cycles_per_packet']}), failed upcalls {s['ovs_failed_upcalls']}")
        for side, per_packet in s["perf_per_packet"].items():
            if per_packet:
                line += f"; {side} per packet: " + ", ".join(f"{k} {v}" for k, v in per_packet.items())
        if s["contended"]:
            line += (" — contended: other processes took the forwarding CPUs' time; the figures count only the "
                     "threads' own time, but the caches they shared make them noisy")
        click.echo(line)
    traced = [s for s in t["cases"] if s["trace"] != "off"]
    if traced:
        click.echo("")
        click.echo("Tracing's cost: opte-fast's cycles/packet on CPU with the trace armed over not armed, in the "
                   "same process, window pairs in turn; the median of the pairs' ratios (lowest and highest):")
        for s in traced:
            lo, hi = s["trace_cost_ratio_range"]
            click.echo(f"- {s['case']}: {s['trace_cost_ratio']:.3f}× ({lo:.3f} to {hi:.3f}, {s['trace_pairs']} "
                       f"pairs; {s['trace_cycles_per_packet_not_armed']:.0f} -> "
                       f"{s['trace_cycles_per_packet_armed']:.0f} cycles/packet); records read "
                       f"{s['trace_records_read']:,}, refused by the full ring {s['trace_records_lost']:,}")
    for note in t["notes"]:
        click.echo(f"Note: {note}")
