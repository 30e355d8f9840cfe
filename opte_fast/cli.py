"""`opte-fast`: a command per job."""
from __future__ import annotations

import os
import shutil
import sys

import click

from .bench import bench
from .config import Config, run_options
from .ctl import ctl
from .demo import demo
from .pmds import pmds


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
    from .dataplane import DataplaneOptions
    o = config.options
    return DataplaneOptions(
        underlay_addr=o.underlay_addr, n_mbufs=o.mbufs, mbuf_cache=o.mbuf_cache, burst=o.burst,
        rx_desc=o.rx_desc, tx_desc=o.tx_desc, flow_capacity=o.flow_capacity, n_buckets=o.buckets,
        hash_seed=o.hash_seed, tcp_idle_ms=o.tcp_idle_timeout_s * 1000, tcp_closed_ms=o.tcp_closed_timeout_s * 1000,
        udp_idle_ms=o.udp_idle_timeout_s * 1000, icmp_idle_ms=o.icmp_idle_timeout_s * 1000,
        rebalance_idle_ms=None if o.rebalance == "never" else o.rebalance_idle_ms, hop_limit=o.hop_limit,
        flow_label=o.flow_label, udp_checksum=o.udp_checksum, verify_udp_checksum=o.verify_udp_checksum,
        udp_sport_min=o.udp_sport_range[0], udp_sport_max=o.udp_sport_range[1])


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(package_name="opte-fast")
def cli() -> None:
    """opte-fast: a DPDK fast path carrying a VPC's guest traffic over Geneve/IPv6 to
    boundary services, one path per flow, exact failover when a switch goes away."""


@cli.command()
@run_options
def run(config: Config) -> None:
    """Start the data plane and serve until --duration-s ends or SIGINT/SIGTERM."""
    from .daemon import serve
    from .dataplane import Dataplane, DataplaneError, eal_args, eal_cleanup, eal_init

    o = config.options
    workers = parse_lcores(o.lcores)
    prefix = o.file_prefix or f"opte-fast-{os.getpid()}"
    pci = any(looks_like_pci(p.devargs) for p in config.ports)
    try:
        eal_init(eal_args(workers, file_prefix=prefix, hugepages=o.hugepages, memory_mb=o.memory_mb, pci=pci,
                          extra=o.eal_args))
    except DataplaneError as e:
        _fail(f"{e} (EAL arguments: --lcores from --lcores, memory from --memory-mb, --eal-arg to add)", prefix)
    dp = None
    try:
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
    except (DataplaneError, KeyError) as e:
        if dp is not None:
            dp.close()
        eal_cleanup()
        _fail(str(e), prefix)
    try:
        rc = serve(config, dp)
    finally:
        dp.stop()
        dp.close()
        eal_cleanup()
        _remove_runtime_dir(prefix)
    sys.exit(rc)


def _remove_runtime_dir(prefix: str) -> None:
    # EAL leaves /var/run/dpdk/<prefix> behind even with --no-shconf.
    shutil.rmtree(f"/var/run/dpdk/{prefix}", ignore_errors=True)


def _fail(message: str, prefix: str) -> None:
    _remove_runtime_dir(prefix)
    click.echo(f"opte-fast: {message}", err=True)
    sys.exit(2)


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
