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
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from .bench_traffic import PEER_BRIDGE_MAC, SINK_DEVARGS, Traffic, check_attached, plugin_path
from .sample import TEP, UNDERLAY, switch_mac

VSWITCHD_DPDK = Path("/usr/lib/openvswitch-switch-dpdk/ovs-vswitchd-dpdk")
SCHEMA = Path("/usr/share/openvswitch/vswitch.ovsschema")
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


class OvsError(RuntimeError):
    pass


def _run(argv: list[str], env: dict[str, str] | None = None, timeout: float = 20.0) -> str:
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=timeout, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        raise OvsError(f"{' '.join(argv)}: {(proc.stderr or proc.stdout).strip() or f'status {proc.returncode}'}")
    return proc.stdout


class OvsPeer:
    """One ovsdb-server + ovs-vswitchd-dpdk in namespace `ns`, forwarding `traffic`; a context manager."""

    def __init__(self, traffic: Traffic, pcap: Path, *, pmd_cpus: list[int], hugepages: bool, memory_mb: int,
                 name: str):
        self.traffic, self.pcap, self.pmd_cpus = traffic, pcap, pmd_cpus
        self.hugepages, self.memory_mb = hugepages, memory_mb
        self.ns = name
        self.prefix = name
        self.dir = Path(tempfile.mkdtemp(prefix=f"{name}-"))
        self.env = {**traffic.env(), "OVS_RUNDIR": str(self.dir / "run"), "OVS_DBDIR": str(self.dir / "db"),
                    "OVS_LOGDIR": str(self.dir / "log"), "OVS_SYSCONFDIR": str(self.dir / "etc")}
        self.db_socket = self.dir / "run" / "db.sock"
        self.ctl = self.dir / "run" / "ovs-vswitchd.ctl"
        self.stderr = self.dir / "log" / "ovs-vswitchd.stderr"
        self._daemons: list[tuple[subprocess.Popen, Path, list[str]]] = []
        self._ns_made = False

    @property
    def vswitchd_pid(self) -> int:
        return self._daemons[-1][0].pid

    # -- life cycle -----------------------------------------------------------------------------
    def __enter__(self) -> OvsPeer:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def start(self) -> None:
        for sub in ("run", "db", "log", "etc"):
            (self.dir / sub).mkdir()
        _run(["ip", "netns", "add", self.ns])
        self._ns_made = True
        _run(["ip", "-n", self.ns, "link", "set", "lo", "up"])
        db = self.dir / "db" / "conf.db"
        _run(["ovsdb-tool", "create", str(db), str(SCHEMA)])
        self._spawn(self.dir / "run" / "ovsdb-server.ctl", [], "ovsdb-server", str(db),
                    f"--remote=punix:{self.db_socket}", f"--log-file={self.dir / 'log' / 'ovsdb-server.log'}")
        self._until(lambda: self.vsctl("--no-wait", "init"), "ovsdb-server")
        if self.hugepages:
            memory = "--in-memory"
        else:   # OVS adds --in-memory itself, which beside --no-huge needs --legacy-mem
            memory = f"--no-huge --legacy-mem -m {self.memory_mb}"
        extra = f"{memory} --no-pci --no-shconf --file-prefix={self.prefix} -d {plugin_path()}"
        cpus = sum(1 << c for c in self.pmd_cpus)
        self.vsctl("--no-wait", "set", "Open_vSwitch", ".", "other_config:dpdk-init=true",
                   f"other_config:dpdk-extra={extra}", f"other_config:pmd-cpu-mask={cpus:#x}",
                   "other_config:pmd-auto-lb=false")
        self._spawn(self.ctl, ["--cleanup"], str(VSWITCHD_DPDK), f"unix:{self.db_socket}",
                    f"--log-file={self.dir / 'log' / 'ovs-vswitchd.log'}")
        self._until(lambda: self.appctl("version"), "ovs-vswitchd", timeout=60)
        self._configure()

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
        _run(["ip", "-n", self.ns, "addr", "add", f"{UNDERLAY}/{UNDERLAY_PREFIX_LEN}", "dev", "br-phy", "nodad"])
        _run(["ip", "-n", self.ns, "link", "set", "br-phy", "up"])
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
        """vswitchd exits with --cleanup, then the db server (each killed after 10 s); the namespace,
        the directory and any EAL run directory of the prefix go."""
        try:
            for daemon, ctl, exit_args in reversed(self._daemons):
                if daemon.poll() is None:
                    subprocess.run(["ovs-appctl", "-t", str(ctl), "exit", *exit_args], env=self.env,
                                   capture_output=True, timeout=20, check=False)
                try:
                    daemon.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    daemon.send_signal(signal.SIGKILL)
                    daemon.wait()
            self._daemons.clear()
        finally:
            if self._ns_made:
                subprocess.run(["ip", "netns", "del", self.ns], capture_output=True, check=False)
                self._ns_made = False
            shutil.rmtree(self.dir, ignore_errors=True)
            shutil.rmtree(Path("/var/run/dpdk") / self.prefix, ignore_errors=True)

    # -- control ---------------------------------------------------------------------------------
    def vsctl(self, *args: str) -> str:
        return _run(["ovs-vsctl", f"--db=unix:{self.db_socket}", "--timeout=30", *args], env=self.env, timeout=40)

    def ofctl(self, *args: str) -> str:
        return _run(["ovs-ofctl", *args], env=self.env)

    def appctl(self, *args: str) -> str:
        return _run(["ovs-appctl", "-t", str(self.ctl), *args], env=self.env)

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
        for log in (self.stderr, self.dir / "log" / "ovs-vswitchd.log"):
            try:
                parts.append(f"--- {log.name}\n" + "\n".join(log.read_text(errors="replace").splitlines()[-15:]))
            except OSError:
                pass
        return "\n".join(parts)

    def _spawn(self, ctl: Path, exit_args: list[str], *argv: str) -> None:
        """A daemon in the foreground (our child), inside the namespace, its control socket at `ctl`."""
        with open(self.dir / "log" / f"{Path(argv[0]).name.replace('-dpdk', '')}.stderr", "wb") as out:
            daemon = subprocess.Popen(["ip", "netns", "exec", self.ns, *argv, f"--unixctl={ctl}", "-vconsole:off",
                                       "--no-chdir"], env=self.env, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                      start_new_session=True)
        self._daemons.append((daemon, ctl, exit_args))

    def _until(self, attempt, what: str, timeout: float = 10.0, errors=(OvsError,)) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                attempt()
                return
            except errors as e:
                dead = [d for d, _, _ in self._daemons if d.poll() is not None]
                if time.monotonic() > deadline or dead:
                    why = "it exited" if dead else f"not within {timeout:.0f} s"
                    raise OvsError(f"Open vSwitch: {what} not ready ({why}): {e}\n{self.diagnostics()}") from None
                time.sleep(0.05)


def pmd_thread_ids(pid: int) -> list[int]:
    """ovs-vswitchd's PMD threads (named pmd-c<core>/id:<n>)."""
    tids = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            if PMD_THREAD.match((task / "comm").read_text().strip()):
                tids.append(int(task.name))
        except OSError:
            continue
    return tids

