"""Open vSwitch with DPDK as the bench's peer: the same traffic (source pcap and plugin, sink
net_null) through OVS's userspace datapath, Geneve over IPv6 to one TEP, on the same CPUs.

Outbound: source -> br-int -> geneve (remote fd00:99::1, VNI 99) -> tunnel push, routed out br-phy
-> sink. Inbound: source (Geneve from the TEP to br-phy's address and MAC) -> br-phy LOCAL -> tunnel
pop -> br-int -> sink. OVS runs in a network namespace and a directory of its own (db, sockets,
logs), both removed afterwards with every process it started; its EAL runs with a file prefix of
its own and leaves nothing in /var/run/dpdk. Recipe and quirks: ../shared/notes/ovs-geneve-peer.md.
"""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from .bench_traffic import PEER_BRIDGE_MAC, SINK_DEVARGS, Traffic, check_attached, plugin_path
from .ovs import SCHEMA, Ovs, OvsError, run_ovs
from .sample import TEP, UNDERLAY, switch_mac
from .threads import threads_named

VSWITCHD_DPDK = Path("/usr/lib/openvswitch-switch-dpdk/ovs-vswitchd-dpdk")
PACKAGE = "openvswitch-switch-dpdk"
PMD_THREAD = re.compile(r"^pmd-c\d+")
UNDERLAY_PREFIX_LEN = 16        # OVS 3.1 routes a tunnel only toward a subnet of br-phy
PEER_VNI = 99


def missing() -> str | None:
    """Why the peer cannot run here, or None."""
    for path in (VSWITCHD_DPDK, SCHEMA):
        if not path.exists():
            return f"{path} not found (apt-get install {PACKAGE})"
    for tool in ("ovsdb-tool", "ovsdb-server", "ovs-vsctl", "ovs-ofctl", "ovs-appctl", "ip"):
        if shutil.which(tool) is None:
            return f"{tool} not found (apt-get install {PACKAGE})"
    return None


class OvsPeer(Ovs):
    """OVS with DPDK in a namespace `name` of its own, forwarding `traffic`; a context manager."""

    VSWITCHD_START_S = 60.0

    def __init__(self, traffic: Traffic, pcap: Path, *, pmd_cpus: list[int], hugepages: bool, memory_mb: int,
                 name: str):
        super().__init__(name, str(VSWITCHD_DPDK), traffic.env())
        self.traffic, self.pcap, self.pmd_cpus = traffic, pcap, pmd_cpus
        self.hugepages, self.memory_mb = hugepages, memory_mb
        self.prefix = name
        self._ns_made = False

    # -- life cycle -----------------------------------------------------------------------------
    def start(self) -> None:
        run_ovs(["ip", "netns", "add", self.netns])
        self._ns_made = True
        run_ovs(["ip", "-n", self.netns, "link", "set", "lo", "up"])
        super().start()
        self._configure()

    def _before_vswitchd(self) -> None:
        if self.hugepages:
            memory = "--in-memory"
        else:   # OVS adds --in-memory itself, which beside --no-huge needs --legacy-mem
            memory = f"--no-huge --legacy-mem -m {self.memory_mb}"
        extra = f"{memory} --no-pci --no-shconf --file-prefix={self.prefix} -d {plugin_path()}"
        cpus = sum(1 << c for c in self.pmd_cpus)
        self.vsctl("--no-wait", "set", "Open_vSwitch", ".", "other_config:dpdk-init=true",
                   f"other_config:dpdk-extra={extra}", f"other_config:pmd-cpu-mask={cpus:#x}",
                   "other_config:pmd-auto-lb=false")

    def _configure(self) -> None:
        # Queue q on PMD q, as worker q polls queue q (OVS's own assignment put both on one PMD).
        affinity = ",".join(f"{q}:{cpu}" for q, cpu in enumerate(self.pmd_cpus))
        source = ["type=dpdk", f"options:dpdk-devargs={self.traffic.source_devargs(self.pcap)}",
                  f"options:n_rxq={self.traffic.queues}", f"other_config:pmd-rxq-affinity={affinity}"]
        sink = ["type=dpdk", f"options:dpdk-devargs={SINK_DEVARGS}", f"options:n_txq={self.traffic.queues}"]
        outbound = self.traffic.direction == "outbound"
        key = PEER_VNI if outbound else "flow"
        self.vsctl("add-br", "br-phy", "--", "set", "bridge", "br-phy", "datapath_type=netdev", "fail_mode=secure",
                   f"other_config:hwaddr={PEER_BRIDGE_MAC}")
        self.vsctl("add-br", "br-int", "--", "set", "bridge", "br-int", "datapath_type=netdev", "fail_mode=secure")
        self.vsctl("add-port", "br-phy" if outbound else "br-int", "sink", "--", "set", "Interface", "sink", *sink)
        self.vsctl("add-port", "br-int" if outbound else "br-phy", "source", "--", "set", "Interface", "source",
                   *source)
        self.vsctl("add-port", "br-int", "gnv", "--", "set", "Interface", "gnv", "type=geneve",
                   f"options:remote_ip={TEP}", f"options:local_ip={UNDERLAY}", f"options:key={key}")
        run_ovs(["ip", "-n", self.netns, "addr", "add", f"{UNDERLAY}/{UNDERLAY_PREFIX_LEN}", "dev", "br-phy", "nodad"])
        run_ovs(["ip", "-n", self.netns, "link", "set", "br-phy", "up"])
        self.appctl("tnl/neigh/set", "br-phy", str(TEP), switch_mac(0))
        if outbound:
            self.ofctl("add-flow", "br-int", "in_port=source,actions=output:gnv")
            self.ofctl("add-flow", "br-phy", "in_port=LOCAL,actions=output:sink")
        else:
            self.ofctl("add-flow", "br-phy", "in_port=source,actions=LOCAL")
            self.ofctl("add-flow", "br-int", "in_port=gnv,actions=output:sink")
        self._until(lambda: check_attached(self.stderr.read_text(errors="replace"), "ovs-vswitchd"),
                    "the traffic plugin in ovs-vswitchd", timeout=20, errors=(RuntimeError, OSError))

    def stop(self) -> None:
        """OVS stops (Ovs.stop); the namespace and any EAL run directory of the prefix go."""
        try:
            super().stop()
        finally:
            if self._ns_made:
                subprocess.run(["ip", "netns", "del", self.netns], capture_output=True, check=False)
                self._ns_made = False
            shutil.rmtree(Path("/var/run/dpdk") / self.prefix, ignore_errors=True)

    # -- control ---------------------------------------------------------------------------------
    def pmd_stats(self) -> dict[str, float]:
        """Sums over PMD threads of `dpif-netdev/pmd-stats-show`'s counts ("packets received", ...)."""
        totals: dict[str, float] = {}
        for line in self.appctl("dpif-netdev/pmd-stats-show").splitlines():
            m = re.match(r"\s+([a-z][a-z .\-]+):\s+([\d.]+)", line)
            if m:
                totals[m.group(1).strip()] = totals.get(m.group(1).strip(), 0.0) + float(m.group(2))
        return totals

    def diagnostics(self) -> str:
        parts = []
        for cmd in (["dpctl/dump-flows"], ["tnl/ports/show", "-v"], ["dpif-netdev/pmd-rxq-show"]):
            try:
                parts.append(f"--- {' '.join(cmd)}\n{self.appctl(*cmd).rstrip()}")
            except (OvsError, subprocess.TimeoutExpired) as e:
                parts.append(f"--- {' '.join(cmd)}: {e}")
        return "\n".join([*parts, super().diagnostics()])


def pmd_thread_ids(pid: int) -> list[int]:
    """ovs-vswitchd's PMD threads (named pmd-c<core>/id:<n>)."""
    return list(threads_named(pid, PMD_THREAD))

