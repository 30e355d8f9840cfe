"""Route sync latency: a path withdrawn in the kernel to the data plane's commit, at several table sizes.

    python3 -m opte_fast.tools.bench_routesync [--routes 1000,10000,100000] [--withdrawals 20]

For each size it makes a network namespace with two uplinks (veth pairs) and
known neighbours, and installs that many IPv6 routes with `ip -6 -batch` from
a file: /64s over one uplink or the other, one in a hundred over both. It
then runs the real data plane (ring ports, no worker lcores: a commit waits
for no reader) behind a controller following the host table, with the TEP
fd00:99::1 and 32 V2P sleds inside the installed prefixes, and plays a
routing daemon through one `ip -batch` process: fd00:99::/64 over both
uplinks, then one path withdrawn, as many times as asked; then uplink1's
peer set down (carrier lost) and up again as often. For the withdrawals it
prints the delay from route sync receiving the kernel's event to the end of
the commit, and from writing the command to the end of the commit (which
adds `ip` and the kernel); for carrier loss, from the event to the commit
that marks the path down. Needs root; each namespace and the
EAL's runtime directory are removed before it exits.
"""
from __future__ import annotations

import ipaddress
import math
import os
import shutil
import subprocess
import tempfile
import threading
import time

import click

from ..controlplane.controller import Controller
from ..controlplane.dataplane import Dataplane, DataplaneOptions, eal_args, eal_cleanup, eal_init
from ..controlplane.routesync import NetlinkRouteSync
from ..controlplane.state import V2B, V2P, DesiredState, Tep, Underlay

UPLINKS = ("uplink0", "uplink1")
UNDERLAY = ipaddress.IPv6Address("fd00:1::1")
TEP = ipaddress.IPv6Address("fd00:99::1")
BOTH_PATHS = "route replace fd00:99::/64 nexthop via fe80::1 dev uplink0 nexthop via fe80::2 dev uplink1"
WITHDRAW_ONE = "route del fd00:99::/64 via fe80::2 dev uplink1"
CARRIER_DOWN, CARRIER_UP = "link set peer1 down", "link set peer1 up"  # uplink1's switch gone, and back
SLEDS = 32


def _prefix(i: int) -> str:
    return f"fd01:{i >> 16:x}:{i & 0xFFFF:x}::/64"


def _sled(i: int) -> ipaddress.IPv6Address:
    """A sled's underlay address inside the i-th installed prefix."""
    return ipaddress.IPv6Network(_prefix(i)).network_address + 1


def _host_table(routes: int) -> str:
    """`ip -6 -batch` lines for `routes` routes: one in a hundred over both uplinks."""
    lines = []
    for i in range(routes):
        if i % 100 == 0:
            via = "nexthop via fe80::1 dev uplink0 nexthop via fe80::2 dev uplink1"
        else:
            via = f"via fe80::{1 + i % 2} dev uplink{i % 2}"
        lines.append(f"route add {_prefix(i)} {via}\n")
    return "".join(lines)


def _namespace(ns: str, routes: int) -> None:
    def ip(*args: str) -> None:
        subprocess.run(["ip", "-n", ns, *args], check=True)
    subprocess.run(["ip", "netns", "add", ns], check=True)
    subprocess.run(["ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0",
                    "net.ipv6.conf.default.accept_dad=0"], check=True)
    for i in (0, 1):
        ip("link", "add", f"uplink{i}", "type", "veth", "peer", "name", f"peer{i}")
        ip("link", "set", f"uplink{i}", "up")
        ip("link", "set", f"peer{i}", "up")
        ip("-6", "neigh", "replace", f"fe80::{i + 1}", "lladdr", f"a8:40:25:00:00:0{i + 1}",
           "dev", f"uplink{i}", "nud", "permanent")
    with tempfile.NamedTemporaryFile("w", prefix="of-bench-routes-", suffix=".batch") as batch:
        batch.write(_host_table(routes))
        batch.flush()
        ip("-6", "-batch", batch.name)
    ip("-6", *BOTH_PATHS.split())


class _TimedDataplane:
    """The data plane, with the time each commit ended."""

    def __init__(self, dataplane: Dataplane):
        self._dataplane = dataplane
        self.committed = threading.Event()
        self.ended_ns = 0

    def commit(self, state: DesiredState) -> None:
        self._dataplane.commit(state)
        self.ended_ns = time.monotonic_ns()
        self.committed.set()


class Result:
    """What one table size gave, in microseconds: (event -> commit, command -> commit) per failure."""

    def __init__(self, routes: int, host_routes: int, start_us: float, withdrawn: tuple[list[float], list[float]],
                 carrier_lost: tuple[list[float], list[float]]):
        self.routes, self.host_routes, self.start_us = routes, host_routes, start_us
        self.withdrawn, self.carrier_lost = withdrawn, carrier_lost


def measure(routes: int, withdrawals: int, timeout_s: float = 10.0) -> Result:
    """Withdraw one path of fd00:99::/64 `withdrawals` times over a host table of `routes` routes."""
    ns = f"oft-bench-rs-{os.getpid()}-{routes}"
    dataplane = Dataplane(DataplaneOptions(underlay_addr=UNDERLAY, flow_capacity=4096, n_mbufs=4095))
    sync = batch = None
    try:
        _namespace(ns, routes)
        for name in UPLINKS:
            dataplane.add_ring_port(name, "uplink")
        timed = _TimedDataplane(dataplane)
        sleds = tuple(V2P(7, ipaddress.IPv4Address(f"10.0.{i}.2"), _sled(i * (routes // SLEDS)), "a8:40:25:f0:00:02")
                      for i in range(SLEDS))
        controller = Controller(timed, DesiredState(Underlay(UNDERLAY), v2p=sleds,
                                                    v2b=(V2B(ipaddress.ip_network("0.0.0.0/0"), (Tep(TEP),)),)),
                                UPLINKS)
        sync = NetlinkRouteSync(UPLINKS, controller.host_routes_changed, ns)
        controller.follow_host_routes(sync)
        t0 = time.monotonic_ns()
        sync.start()
        start_us = (time.monotonic_ns() - t0) / 1000
        batch = subprocess.Popen(["ip", "-n", ns, "-6", "-force", "-batch", "-"], stdin=subprocess.PIPE,
                                 text=True, bufsize=1)

        def change(command: str) -> float:
            """Microseconds from writing `command` to the end of its commit."""
            timed.committed.clear()
            sent = time.monotonic_ns()
            batch.stdin.write(command + "\n")
            batch.stdin.flush()
            if not timed.committed.wait(timeout_s):
                raise click.ClickException(f"{routes} routes: no commit within {timeout_s} s of {command!r}")
            return (timed.ended_ns - sent) / 1000

        def series(fail: str, restore: str) -> tuple[list[float], list[float]]:
            """(event -> commit, command -> commit) of `fail`, each time followed by `restore`."""
            event_us, command_us = [], []
            for _ in range(withdrawals):
                sync.latencies_us.clear()
                command_us.append(change(fail))
                event_us.append(sync.latencies_us[0])  # the first commit after the event
                change(restore)
            return event_us, command_us

        withdrawn = series(WITHDRAW_ONE, BOTH_PATHS)
        carrier_lost = series(CARRIER_DOWN, CARRIER_UP)
        if sync.stats()["commit_failures"]:
            raise click.ClickException(f"{routes} routes: {sync.stats()['commit_failures']} commits refused")
        return Result(routes, sync.stats()["host_routes"], start_us, withdrawn, carrier_lost)
    finally:
        if batch is not None:
            batch.stdin.close()
            batch.wait()
        if sync is not None:
            sync.stop()
        dataplane.close()
        subprocess.run(["ip", "netns", "del", ns], check=False, stderr=subprocess.DEVNULL)


def _rank(samples: list[float], q: float) -> float:
    """The nearest-rank quantile: the smallest sample at or above a fraction `q` of them."""
    s = sorted(samples)
    return s[max(0, math.ceil(q * len(s)) - 1)]


def _ms(us: float) -> str:
    return f"{us / 1000:8.2f}"


def _pair(samples_us: list[float]) -> str:
    """p50 and p99 in milliseconds."""
    return f"{_ms(_rank(samples_us, 0.5))} {_ms(_rank(samples_us, 0.99))}"


@click.command()
@click.option("--routes", "sizes", default="1000,10000,100000", show_default=True, metavar="N,N,…",
              help="host table sizes to measure")
@click.option("--withdrawals", type=click.IntRange(1, 10_000), default=20, show_default=True,
              help="withdrawals timed at each size")
def main(sizes: str, withdrawals: int) -> None:
    """Time route sync from a withdrawn path in the kernel to the data plane's commit."""
    try:
        counts = [int(s) for s in sizes.split(",")]
    except ValueError:
        raise click.BadParameter(f"expected sizes like 1000,10000, got {sizes!r}", param_hint="--routes") from None
    prefix = f"oft-bench-rs-{os.getpid()}"
    eal_init(eal_args([], file_prefix=prefix, memory_mb=768))
    try:
        click.echo(f"milliseconds, p50 and p99 of {withdrawals}; withdrawn: one path of fd00:99::/64 deleted; "
                   "carrier lost: uplink1's peer set down")
        click.echo(f"{'routes':>8} {'start':>8} | {'event->commit':>17} {'command->commit':>17} | "
                   f"{'carrier lost':>17}")
        click.echo(f"{'':>8} {'':>8} | {'withdrawn':>17} {'withdrawn':>17} | {'event->commit':>17}")
        for n in counts:
            r = measure(n, withdrawals)
            click.echo(f"{r.host_routes:8d} {_ms(r.start_us)} | {_pair(r.withdrawn[0])} {_pair(r.withdrawn[1])} | "
                       f"{_pair(r.carrier_lost[0])}")
    finally:
        eal_cleanup()
        shutil.rmtree(f"/var/run/dpdk/{prefix}", ignore_errors=True)


if __name__ == "__main__":
    main()
