"""`opte-fast`: a command per job."""
from __future__ import annotations

import os
import sys
import threading

import click

from .api.ctl import ctl
from .config.flags import run_options
from .config.loader import Config
from .controlplane import eal_output, events
from .tools.bench import bench
from .tools.demo import demo
from .tools.pmds import pmds


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


def dataplane_options(config: Config):
    from .controlplane.dataplane import DataplaneOptions
    o = config.options
    return DataplaneOptions(
        underlay_addr=o.underlay_addr, n_mbufs=o.mbufs, mbuf_cache=o.mbuf_cache, burst=o.burst,
        rx_desc=o.rx_desc, tx_desc=o.tx_desc, flow_capacity=o.flow_capacity, n_buckets=o.buckets,
        tcp_idle_ms=o.tcp_idle_timeout_s * 1000, tcp_closed_ms=o.tcp_closed_timeout_s * 1000,
        udp_idle_ms=o.udp_idle_timeout_s * 1000, icmp_idle_ms=o.icmp_idle_timeout_s * 1000,
        rebalance_idle_ms=None if o.rebalance == "never" else o.rebalance_idle_ms, hop_limit=o.hop_limit,
        flow_label=o.flow_label, udp_checksum=o.udp_checksum, verify_udp_checksum=o.verify_udp_checksum,
        strict_underlay=o.strict_underlay,
        udp_sport_min=o.udp_sport_range[0], udp_sport_max=o.udp_sport_range[1], underlay_mtu=o.underlay_mtu_bytes,
        prefix_capacity=o.prefix_capacity)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(package_name="opte-fast")
def cli() -> None:
    """opte-fast: a DPDK fast path carrying a VPC's guest traffic over Geneve/IPv6 to
    boundary services, one path per flow, exact failover when a switch goes away."""


@cli.command()
@run_options
def run(config: Config) -> None:
    """Start the data plane and serve until --duration-s ends or SIGINT/SIGTERM. A stop takes at
    most 10 s; past that, or on a second signal, it is forced (runtime files still removed)."""
    from .controlplane.daemon import STOP_TIMEOUT_S, handle_signals
    from .controlplane.instance import PrefixInUse, claim_file_prefix, release_file_prefix

    events.configure(config.options.log_level, config.options.log_format)
    prefix = config.options.file_prefix or f"opte-fast-{os.getpid()}"

    def force() -> None:
        click.echo(f"opte-fast: stop did not finish within {STOP_TIMEOUT_S:g} s or was asked twice; forced", err=True)
        release_file_prefix(prefix)
        os._exit(1)
    # Before the EAL starts: a SIGTERM during start-up stops the instance cleanly, not by default action.
    stop = threading.Event()
    restore = handle_signals(stop, force)
    try:
        with claim_file_prefix(prefix):
            rc = _run(config, prefix, stop)
    except PrefixInUse as e:
        rc = _fail(str(e))
    finally:
        restore()
    sys.exit(rc)


def _run(config: Config, prefix: str, stop: threading.Event) -> int:
    """The data plane's life inside the claimed prefix; the exit code."""
    from .controlplane.daemon import serve
    from .controlplane.dataplane import eal_cleanup

    # DPDK prints its reasons itself, over many lines: kept back, and the cause put in one line.
    with eal_output.captured() as dpdk:
        try:
            dp, failure = _start(config, prefix), None
        except StartFailed as e:
            failure = e
    if failure is not None:
        cause = eal_output.explain(dpdk.text)
        return _fail("".join((failure.message, f" ({cause})" if cause else "", failure.hint)))
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


def _start(config: Config, prefix: str):
    """EAL, ports and the first tables, then the workers: a started Dataplane, or StartFailed
    with everything it had started undone."""
    from .controlplane import taps
    from .controlplane.dataplane import Dataplane, DataplaneError, capture_init, eal_args, eal_cleanup, eal_init
    from .controlplane.routesync import RouteSyncError

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


def _fail(message: str) -> int:
    click.echo(f"opte-fast: {message}", err=True)
    return 2


cli.add_command(bench)
cli.add_command(pmds)
cli.add_command(ctl)
cli.add_command(demo)


def main() -> None:
    """The console script: the data plane is imported only by the commands that run it, so a
    machine without DPDK's libraries still lists PMDs and talks to a socket, and says what to
    install when a command needs the data plane."""
    try:
        cli()
    except ImportError as e:
        if "librte_" not in str(e) and "_dataplane" not in str(e):
            raise
        click.echo(f"opte-fast: the data plane cannot load ({e}); install DPDK's libraries with "
                   "`apt-get install dpdk` and rebuild with `bash ci/install.sh`", err=True)
        sys.exit(2)
