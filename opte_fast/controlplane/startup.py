"""Starting an instance: the EAL, ports and first tables, then serving until told to stop.

`opte-fast run` (cli.py) claims the file prefix and the signals, then calls `run`; a start that
fails raises StartFailed with one line that says what to fix, everything it had started undone.
"""
from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from ..config.loader import Config
from . import eal_output

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
