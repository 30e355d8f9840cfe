"""Starting an instance: the EAL, ports and first tables, then serving until told to stop.

`opte-fast run` (cli.py) claims the file prefix and the signals, then calls `run`; a start that
fails raises StartFailed with one line that says what to fix, everything it had started undone.
"""
from __future__ import annotations

import dataclasses
import logging
import threading
from typing import TYPE_CHECKING

from ..config.loader import Config
from . import eal_output, events

if TYPE_CHECKING:  # the data plane's module loads DPDK: only once a run starts
    from .dataplane import Dataplane, DataplaneOptions


def parse_lcores(text: str) -> list[int]:
    """'1', '1-3', '1,3' -> worker lcore ids."""
    out: list[int] = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        out.extend(range(int(lo), int(hi or lo) + 1))
    return out


def looks_like_pci(devargs: str) -> bool:
    name = devargs.split(",", 1)[0]
    return name.count(":") >= 1 and "." in name and not name.startswith("net_")


_SIZE_KB = {"K": 1, "M": 1 << 10, "G": 1 << 20}


def choose_hugepages(memory_mb: int, meminfo: str, mounts: str) -> tuple[bool, str]:
    """For --hugepages left to its default: hugepages when a mounted hugetlbfs of the default page size
    has `memory_mb` of them free (the memory --no-huge -m would take), and why, in one line.
    `meminfo` and `mounts` are the text of /proc/meminfo and /proc/mounts."""
    info = dict(line.split(":", 1) for line in meminfo.splitlines() if ":" in line)
    page_kb = int(info.get("Hugepagesize", "0 kB").split()[0])
    free_mb = int(info.get("HugePages_Free", "0")) * page_kb // 1024
    mounted = []
    for fields in (line.split() for line in mounts.splitlines()):
        if len(fields) >= 4 and fields[2] == "hugetlbfs":
            size = next((o[len("pagesize="):] for o in fields[3].split(",") if o.startswith("pagesize=")), None)
            if size is None or int(size[:-1]) * _SIZE_KB.get(size[-1].upper(), 0) == page_kb:
                mounted.append(fields[1])
    if not mounted:
        return False, f"no hugetlbfs of {page_kb // 1024} MB pages mounted: --no-huge -m {memory_mb}"
    if free_mb < memory_mb:
        return False, f"{free_mb} MB of hugepages free, fewer than --memory-mb {memory_mb}: --no-huge -m {memory_mb}"
    return True, f"{free_mb} MB of hugepages free in {mounted[0]}: running on hugepages"


def with_hugepages_chosen(config: Config) -> Config:
    """The config with --hugepages decided: as given, or by choose_hugepages on this host. Choosing hugepages
    is an event; staying on --no-huge, what every earlier release did, is one at debug level only, so a
    start that fails still says so in one line. `ctl instance` shows the choice either way."""
    o = config.options
    if o.hugepages is not None:
        return config
    with open("/proc/meminfo") as meminfo, open("/proc/mounts") as mounts:
        huge, why = choose_hugepages(o.memory_mb, meminfo.read(), mounts.read())
    events.event("hugepages", f"hugepages: {why}", logging.INFO if huge else logging.DEBUG, hugepages=huge)
    return dataclasses.replace(config, options=dataclasses.replace(o, hugepages=huge))


def dataplane_options(config: Config) -> DataplaneOptions:
    from .dataplane import DataplaneOptions
    o = config.options
    return DataplaneOptions(
        underlay_addr=o.underlay_addr, n_mbufs=o.mbufs, mbuf_cache=o.mbuf_cache, burst=o.burst,
        guest_tx_retries=o.guest_tx_retries,
        rx_desc=o.rx_desc, tx_desc=o.tx_desc, flow_capacity=o.flow_capacity, n_buckets=o.buckets,
        tcp_idle_ms=o.tcp_idle_timeout_s * 1000, tcp_closed_ms=o.tcp_closed_timeout_s * 1000,
        udp_idle_ms=o.udp_idle_timeout_s * 1000, icmp_idle_ms=o.icmp_idle_timeout_s * 1000,
        rebalance_idle_ms=None if o.rebalance == "never" else o.rebalance_idle_ms, hop_limit=o.hop_limit,
        flow_label=o.flow_label, udp_checksum=o.udp_checksum, verify_udp_checksum=o.verify_udp_checksum,
        strict_underlay=o.strict_underlay,
        udp_sport_min=o.udp_sport_range[0], udp_sport_max=o.udp_sport_range[1], underlay_mtu=o.underlay_mtu_bytes,
        prefix_capacity=o.prefix_capacity)


def run(config: Config, prefix: str, stop: threading.Event) -> int:
    """The data plane's life inside the claimed prefix: the exit code, or StartFailed."""
    from .daemon import serve
    from .dataplane import eal_cleanup

    config = with_hugepages_chosen(config)  # once: start() and serve() must agree
    # DPDK prints its reasons itself, over many lines: kept back, and the cause put in one line.
    with eal_output.captured() as dpdk:
        try:
            dp, failure = start(config, prefix), None
        except StartFailed as e:
            failure = e
    if failure is not None:
        cause = eal_output.explain(dpdk.text)
        raise StartFailed("".join((failure.message, f" ({cause})" if cause else "", failure.hint)))
    eal_output.replay(dpdk.text)
    try:
        return serve(config, dp, stop) if not stop.is_set() else 0  # stopped while starting
    finally:
        dp.stop()
        dp.close()
        eal_cleanup()


class StartFailed(Exception):
    def __init__(self, message: str, hint: str = ""):
        super().__init__(message)
        self.message, self.hint = message, hint


def start(config: Config, prefix: str) -> Dataplane:
    """EAL, ports and the first tables, then the workers: a started Dataplane, or StartFailed
    with everything it had started undone."""
    from . import taps
    from .dataplane import Dataplane, DataplaneError, capture_init, eal_args, eal_cleanup, eal_init
    from .routesync import RouteSyncError

    o = config.options
    workers = parse_lcores(o.lcores)
    pci = any(looks_like_pci(p.devargs) for p in config.ports)
    # The shared config stays, so DPDK's own tools attach to a running instance (README: Operations).
    try:
        eal_init(eal_args(workers, file_prefix=prefix, hugepages=o.hugepages, memory_mb=o.memory_mb, pci=pci,
                          shared_config=True, extra=o.eal_args))
    except DataplaneError as e:
        raise StartFailed(str(e), "; EAL arguments come from --lcores, --memory-mb and --eal-arg") from None
    dp = None
    try:
        capture_init()
        dp = Dataplane(dataplane_options(config), state_dir=o.state_dir)
        for port in config.ports:
            dp.add_port(port.name, port.devargs, port.role)
        if o.exception_path:
            macs = {p["name"]: p["mac"] for p in dp.ports()}
            for i, name in enumerate(config.uplinks):
                # The kernel sees the uplink under its own name and address (as VPP's linux-cp does),
                # so a routing daemon's routes point at it and its neighbors learn the uplink's MAC.
                dp.add_port(f"{name}.kernel", f"net_tap_exc{i},iface={name},mac={macs[name]}", "exception")
                dp.set_exception(name, f"{name}.kernel")
        # Tables before traffic: a worker started first would drop what arrives meanwhile.
        dp.commit(config.initial_state())
        dp.start(workers)
        if o.exception_path and o.netns:
            # The routing daemon runs in --netns: its interfaces must be there (taps.py says why only now).
            for name in config.uplinks:
                taps.move_into(name, o.netns)
    except (DataplaneError, KeyError, taps.TapError, RouteSyncError) as e:
        if dp is not None:
            dp.close()
        eal_cleanup()
        raise StartFailed(str(e)) from None
    return dp
