"""One VM's TCP stream through opte-fast and through Open vSwitch's userspace datapath, side by side.

The same VM (QEMU under TCG, Debian's cloud kernel, tests/support/vm.py; the same command line,
kernel, initramfs, MAC and addresses for both) downloads a file from a host behind a boundary-
services switch and uploads it back, `--rounds` times, once with its virtio-net NIC's vhost-user
socket served by opte-fast (a `net_vhost` guest port with `tso=1`) and once served by Open vSwitch
with DPDK (`ovs-vswitchd-dpdk`, a `dpdkvhostuserclient` port on a netdev bridge, Geneve over IPv6 to
the same TEP). Both send their Geneve out of the same veth (`net_af_packet`), from the same underlay
address and MAC, to the same far end: the end-to-end tests' boundary-services switch (plain Open
vSwitch, tests/support/ovs.py), which decapsulates and hands the stream to an "internet" host.

    VM ──vhost-user── opte-fast | OVS-DPDK ──sl0 (veth)── ul0 ∈ OVS (TEP) ── internet host (server)
         (sled namespace, one backend at a time)          (switch namespace)  (internet namespace)

The internet host times each transfer from its accept to the last byte (upload) or to the VM's
close after the last byte (download), and checks every byte: it hashes each upload, and the VM
prints the sha256 of each download on its console. Mbit/s are megabits (10^6) a second of payload.

Under TCG the VM is the bottleneck: its emulated CPU runs the guest kernel's TCP, copies and
checksums at a small fraction of native speed, so both backends wait on it and the ratio says more
about what each makes the guest do (opte-fast takes 64 KB TSO frames; OVS 3.1 cannot carry TSO
through a tunnel, so its port offers none and the guest's kernel segments) than about either
datapath's own speed, which `opte-fast bench --with-ovs` measures. QEMU is pinned to CPU 0, the
backend's poll thread to CPU 1.

Usage (root): .venv/bin/python bench/vm_tcp.py [--size-mb 16] [--rounds 5] [--json]
"""
from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from opte_fast.tools.bench_ovs import VSWITCHD_DPDK  # noqa: E402
from opte_fast.tools.bench_ovs import missing as ovs_dpdk_missing  # noqa: E402
from opte_fast.tools.ovs import Ovs, OvsError  # noqa: E402
from tests.support.cli import OPTE_FAST, REPO, ctl_json  # noqa: E402
from tests.support.ovs import BoundaryLab, Guest, boundary_lab  # noqa: E402
from tests.support.transfer import DOWN_PORT, UP_PORT, BlobServers  # noqa: E402
from tests.support.vm import START, VM, GuestKernel, initramfs, kernel_package, unpacked_kernel  # noqa: E402

VM_MAC = "02:00:00:00:00:01"
VM_IP = "10.0.0.2"
GATEWAY_IP = "10.0.0.1"
GATEWAY_MAC = "a8:40:25:ff:00:01"   # the guest's gateway, as opte-fast's port answers for it
BOUNDARY_MAC = "a8:40:25:77:77:77"  # the inner destination of traffic to boundary services
VNI = 7
BOUNDARY_VNI = 99
# DPDK 22.11's net_af_packet reports 1,518-byte frames at most, so an ethdev MTU above 1500 is
# refused (OVS then refuses the port): the guest gets what fits, 1500 less Geneve's 70 bytes
UNDERLAY_MTU = 1500
GUEST_MTU = UNDERLAY_MTU - 70
QEMU_CPU, BACKEND_CPU = 0, 1
HOST_TSO4_BIT = 11                  # virtio-net feature bits, as /sys/class/net/eth0/device/features shows them
BACKENDS = ("opte-fast", "ovs")


# after START (tests/support/vm.py): a static address (OVS answers no DHCP), then the rounds
SCRIPT = """echo 1 > /proc/sys/net/ipv6/conf/all/disable_ipv6
ip link set eth0 mtu {mtu}
ip addr add {vm_ip}/24 dev eth0
arp -i eth0 -s {gateway_ip} {gateway_mac}
ip route add default via {gateway_ip} dev eth0
echo "FEATURES $(cat /sys/class/net/eth0/device/features)"
for r in $(seq 1 {rounds}); do
    rm -f /tmp/blob
    wget -q -O /tmp/blob http://{server}:{down}/blob || echo "ROUND $r DOWN-FAILED"
    echo "ROUND $r DOWN $(sha256sum /tmp/blob | cut -d' ' -f1)"
    nc {server} {up} < /tmp/blob || echo "ROUND $r UP-FAILED"
done
echo "VM-DONE"
sleep 3600
"""

OPTE_FAST_CONFIG = """
[underlay]
addr = "{underlay}"
mtu_bytes = {underlay_mtu}
[route_sync]
source = "static"
[dataplane]
flow_capacity = 4096
exception_path = false
state_dir = "{state_dir}"
[eal]
memory_mb = 1024
lcores = "{cpu}"
[control]
socket = "{socket}"

[[guest]]
name = "vm0"
devargs = "net_vhost0,iface={vhost},queues=1,client=1,tso=1"
vni = {vni}
mac = "{vm_mac}"
gateway_mac = "{gateway_mac}"
ipv4 = "{vm_ip}"
mtu_bytes = {mtu}

[[uplink]]
name = "{uplink}"
devargs = "net_af_packet0,iface={uplink}"

[[v2b]]
prefix = "0.0.0.0/0"
teps = ["{tep}"]

[[route]]
prefix = "{tep}/128"
nexthops = [{{ uplink = "{uplink}", gateway = "fe80::1", mac = "{nexthop_mac}" }}]
"""


# -- the two backends: each serves the VM's vhost-user socket from the sled namespace ------------------


class OpteFastBackend:
    """`opte-fast run` in the sled namespace: a net_vhost guest port (client=1: QEMU serves the
    socket, as for OVS) and a net_af_packet uplink on the sled's veth."""

    def __init__(self, lab: BoundaryLab, workdir: Path, vhost: str, tag: str) -> None:
        self.socket = str(workdir / "ctl.sock")
        link = lab.uplinks[0]
        config = workdir / "vm_tcp.toml"
        config.write_text(OPTE_FAST_CONFIG.format(
            underlay=lab.sled_address, underlay_mtu=UNDERLAY_MTU, state_dir=workdir / "state", cpu=BACKEND_CPU,
            socket=self.socket, vhost=vhost, vni=VNI, vm_mac=VM_MAC, gateway_mac=GATEWAY_MAC, vm_ip=VM_IP,
            mtu=GUEST_MTU, uplink=link.ifname, tep=link.tep, nexthop_mac=link.nexthop_mac))
        self.stderr = open(workdir / "opte-fast.stderr", "w+b")
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", lab.sled.name, *OPTE_FAST, "run", "--config", str(config),
             "--file-prefix", f"oft-vmtcp-{tag}", "--no-follow-link", "--duration-s", "3600"],
            cwd=REPO, stdout=subprocess.DEVNULL, stderr=self.stderr)
        deadline = time.monotonic() + 60
        while subprocess.run([*OPTE_FAST, "ctl", "--socket", self.socket, "stats"], cwd=REPO,
                             capture_output=True).returncode != 0:
            if self.proc.poll() is not None:
                raise RuntimeError(f"opte-fast run exited {self.proc.returncode}: {self.errors()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"opte-fast run: no control socket after 60 s: {self.errors()}")
            time.sleep(0.2)

    def errors(self) -> str:
        self.stderr.seek(0)
        return self.stderr.read().decode(errors="replace")[-2000:]

    def counters(self) -> tuple[dict[str, int], dict[str, int]]:
        """Every counter, and the drops that are not zero."""
        stats = ctl_json(self.socket, "stats")
        counters = dict(stats["counters"])
        for port in ctl_json(self.socket, "port", "list"):   # each port's ethdev counts, as port.<name>.<count>
            counters.update({f"port.{port['name']}.{k}": v for k, v in port.items() if isinstance(v, int)})
        return counters, {k: counters[k] for k in stats["drops"] if counters[k]}

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.stderr.close()


class OvsBackend(Ovs):
    """Open vSwitch with DPDK in the sled namespace, as a hypervisor runs it for a VM: the VM's
    dpdkvhostuserclient port on br-int, Geneve (VNI 99 out, the VM's VNI in) to the TEP, routed
    out br-phy, whose port is the sled's veth through DPDK's net_af_packet. br-phy carries the
    sled's underlay address and MAC, so the far end cannot tell the two backends apart. Flows do
    what opte-fast's port does to the inner frame: the inner destination becomes boundary
    services' MAC on the way out, the inner source the gateway's MAC on the way in."""

    VSWITCHD_START_S = 60.0

    def __init__(self, lab: BoundaryLab, vhost: str, tag: str) -> None:
        super().__init__(lab.sled.name, str(VSWITCHD_DPDK))
        self.lab, self.vhost, self.prefix = lab, vhost, f"oft-vmtcp-ovs-{tag}"
        self.start()
        try:
            self._configure()
        except BaseException:
            self.stop()
            raise

    def _before_vswitchd(self) -> None:
        # OVS adds --in-memory itself, which beside --no-huge needs --legacy-mem (notes/ovs-geneve-peer.md)
        extra = f"--no-huge --legacy-mem -m 1024 --no-pci --no-shconf --file-prefix={self.prefix}"
        self.vsctl("--no-wait", "set", "Open_vSwitch", ".", "other_config:dpdk-init=true",
                   f"other_config:dpdk-extra={extra}", f"other_config:pmd-cpu-mask={1 << BACKEND_CPU:#x}",
                   "other_config:userspace-tso-enable=false")

    def _configure(self) -> None:
        link = self.lab.uplinks[0]
        self.vsctl("add-br", "br-phy", "--", "set", "bridge", "br-phy", "datapath_type=netdev", "fail_mode=secure",
                   f"other_config:hwaddr={link.mac}")
        self.vsctl("add-port", "br-phy", "ul", "--", "set", "Interface", "ul", "type=dpdk",
                   f"options:dpdk-devargs=net_af_packet0,iface={link.ifname}", f"mtu_request={UNDERLAY_MTU}")
        self.vsctl("add-br", "br-int", "--", "set", "bridge", "br-int", "datapath_type=netdev", "fail_mode=secure")
        self.vsctl("add-port", "br-int", "vm0", "--", "set", "Interface", "vm0", "type=dpdkvhostuserclient",
                   f"options:vhost-server-path={self.vhost}", f"mtu_request={GUEST_MTU}")
        self.vsctl("add-port", "br-int", "gnv", "--", "set", "Interface", "gnv", "type=geneve",
                   f"options:remote_ip={link.tep}", f"options:local_ip={self.lab.sled_address}", "options:key=flow")
        for port in ("ul", "vm0", "gnv"):
            if int(self.vsctl("get", "Interface", port, "ofport")) <= 0:
                raise OvsError(f"Open vSwitch could not add port {port}: "
                               f"{self.vsctl('get', 'Interface', port, 'error')}\n{self.diagnostics()}")
        ns = self.lab.sled
        ns.add_address("br-phy", f"{self.lab.sled_address}/16")
        ns.link_up("br-phy")
        self.appctl("tnl/neigh/set", "br-phy", link.tep, link.nexthop_mac)
        self.ofctl("add-flow", "br-phy", "in_port=LOCAL,actions=output:ul")
        self.ofctl("add-flow", "br-phy", "in_port=ul,actions=LOCAL")
        self.ofctl("add-flow", "br-int", f"in_port=vm0,ip,dl_src={VM_MAC},nw_src={VM_IP},"
                   f"actions=set_field:{BOUNDARY_VNI}->tun_id,mod_dl_dst:{BOUNDARY_MAC},output:gnv")
        self.ofctl("add-flow", "br-int", f"in_port=gnv,tun_id={VNI},dl_dst={VM_MAC},"
                   f"actions=mod_dl_src:{GATEWAY_MAC},output:vm0")

    def counters(self) -> tuple[dict[str, int], dict[str, int]]:
        """The PMD's counts (dpif-netdev/pmd-stats-show: "packets received" and the like), and the
        coverage counters of drops that are not zero."""
        counts: dict[str, int] = {}
        for line in self.appctl("dpif-netdev/pmd-stats-show").splitlines():
            key, _, value = line.strip().partition(":")
            if value.strip() and value.split()[0].isdigit():
                counts[key.replace(" ", "_")] = counts.get(key.replace(" ", "_"), 0) + int(value.split()[0])
        drops = {}
        port = None   # dpctl/show -s: "port N: NAME (type...)", then "RX packets:... dropped:D ..." and "TX ..."
        for line in self.appctl("dpctl/show", "-s").splitlines():
            words = line.split()
            if line.startswith("  port "):
                port = words[2]
            elif port and words and words[0] in ("RX", "TX") and words[1].startswith("packets:"):
                fields = dict(w.split(":", 1) for w in words[1:] if ":" in w)
                for name in ("packets", "dropped", "errors"):
                    if fields.get(name, "").isdigit():
                        counts[f"port.{port}.{words[0].lower()}_{name}"] = int(fields[name])
                        if name != "packets" and int(fields[name]):
                            drops[f"{port} {words[0].lower()}_{name}"] = int(fields[name])
        for line in self.appctl("coverage/show").splitlines():
            words = line.split()   # name  rates...  total: N
            if words and "drop" in words[0] and words[-2:-1] == ["total:"] and int(words[-1]):
                drops[words[0]] = int(words[-1])
        return counts, drops

    def stop(self) -> None:
        try:
            super().stop()
        finally:
            shutil.rmtree(Path("/var/run/dpdk") / self.prefix, ignore_errors=True)


# -- one leg: a backend, the VM on it, its rounds --------------------------------------------------


@dataclass
class Leg:
    backend: str
    down_mbit_s: list[float]
    up_mbit_s: list[float]
    down_sha256: list[str]          # the VM's, of each download
    up_sha256: list[str]            # the internet host's, of each upload
    host_tso4: bool
    counters: dict[str, int]
    drops: dict[str, int]
    wall_s: float


def run_leg(kind: str, lab: BoundaryLab, server: BlobServers, kernel: GuestKernel, initrd: Path, rounds: int,
            blob: bytes, timeout_s: float) -> Leg:
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix=f"oft-vmtcp-{kind}-"))
    vhost = str(workdir / "vm0.sock")
    tag = f"{os.getpid()}-{kind}"
    backend = vm = None
    try:
        # QEMU serves the socket for both (the same command line); each backend connects to it
        vm = VM(workdir, kernel, initrd, vhost, VM_MAC, vhost_server=True, cpus=str(QEMU_CPU))
        deadline = time.monotonic() + 30
        while not Path(vhost).exists():
            if vm.proc.poll() is not None:
                raise RuntimeError(f"QEMU exited: {vm.proc.stderr.read().decode()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"QEMU made no vhost-user socket {vhost} in 30 s")
            time.sleep(0.05)
        backend = OpteFastBackend(lab, workdir, vhost, tag) if kind == "opte-fast" else OvsBackend(lab, vhost, tag)
        console = vm.wait_for("VM-DONE", timeout_s)
        counters, drops = backend.counters()
    except (AssertionError, RuntimeError, OvsError) as e:
        detail = ""
        if isinstance(backend, OvsBackend):
            detail = backend.diagnostics()
        elif isinstance(backend, OpteFastBackend):
            with contextlib.suppress(AssertionError, OSError, ValueError, subprocess.TimeoutExpired):
                detail = f"drops {backend.counters()[1]}\n{backend.errors()}"
        raise SystemExit(f"vm_tcp: the {kind} leg failed: {e}\n{detail}") from None
    finally:
        if vm is not None:
            vm.stop()
        if backend is not None:
            backend.stop()
        shutil.rmtree(workdir, ignore_errors=True)

    transfers = server.take()
    want = hashlib.sha256(blob).hexdigest()
    lines = console.splitlines()
    downs = [" ".join(line.split()[3:]) for line in lines if line.startswith("ROUND ") and line.split()[2] == "DOWN"]
    failures = [line for line in lines if "-FAILED" in line]
    if failures or downs != [want] * rounds or transfers.uploads != [want] * rounds \
            or len(transfers.down_s) != rounds:
        raise SystemExit(f"vm_tcp: the {kind} leg's data did not arrive whole: the VM's downloads {downs}, "
                         f"the host's uploads {transfers.uploads}, want {want} x {rounds}; {failures}\n{console}")
    features = next(line.split()[1] for line in lines if line.startswith("FEATURES "))
    bits = len(blob) * 8 / 1e6
    return Leg(kind, [bits / s for s in transfers.down_s], [bits / s for s in transfers.up_s], downs,
               transfers.uploads, features[HOST_TSO4_BIT] == "1", counters, drops, time.monotonic() - started)


# -- report --------------------------------------------------------------------------------------------


def machine() -> str:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor())
    debian = Path("/etc/debian_version").read_text().strip() if Path("/etc/debian_version").exists() else "?"
    qemu = subprocess.run(["qemu-system-x86_64", "--version"], capture_output=True, text=True).stdout.split("\n")[0]
    ovs = subprocess.run([str(VSWITCHD_DPDK), "--version"], capture_output=True, text=True).stdout.split("\n")[0]
    return (f"{model}, {os.cpu_count()} CPUs, Debian {debian}, load average {os.getloadavg()[0]:.1f} at the end; "
            f"{qemu.strip()} (TCG); {ovs.strip()}")


def spread(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def report(legs: dict[str, Leg], blob: bytes, rounds: int) -> dict:
    result: dict = {"size_bytes": len(blob), "rounds": rounds, "sha256": hashlib.sha256(blob).hexdigest(),
                    "machine": machine(), "backends": {}, "ratio": {}}
    for name, leg in legs.items():
        result["backends"][name] = {"download_mbit_s": spread(leg.down_mbit_s), "upload_mbit_s": spread(leg.up_mbit_s),
                                    "rounds_download_mbit_s": leg.down_mbit_s, "rounds_upload_mbit_s": leg.up_mbit_s,
                                    "download_sha256": leg.down_sha256, "upload_sha256": leg.up_sha256,
                                    "guest_host_tso4": leg.host_tso4, "counters": leg.counters, "drops": leg.drops,
                                    "wall_s": leg.wall_s}
    ours, theirs = legs["opte-fast"], legs["ovs"]
    for direction, a, b in (("download", ours.down_mbit_s, theirs.down_mbit_s),
                            ("upload", ours.up_mbit_s, theirs.up_mbit_s)):
        per_round = [x / y for x, y in zip(a, b)]
        result["ratio"][direction] = {"median": statistics.median(a) / statistics.median(b),
                                      "min": min(per_round), "max": max(per_round)}
    return result


def print_report(r: dict) -> None:
    fmt = "{median:8.1f}  [{min:.1f} – {max:.1f}]"
    print(f"One TCP stream of {r['size_bytes'] / 2**20:g} MiB each way, {r['rounds']} rounds, the same VM through each "
          f"backend (one after the other), every byte checked by sha256")
    print(f"machine: {r['machine']}")
    print("NOTE: the VM runs under TCG (no KVM here): its emulated CPU is the bottleneck for both backends, so these "
          "figures measure mostly the guest, not the datapaths (see opte-fast bench --with-ovs for those).")
    print(f"{'backend':<60} {'download Mbit/s (median [range])':<34} upload Mbit/s (median [range])")
    labels = {"opte-fast": "opte-fast (net_vhost, tso=1)", "ovs": "Open vSwitch userspace (DPDK vhost-user)"}
    for name, b in r["backends"].items():
        tso = "guest TSO on" if b["guest_host_tso4"] else "guest TSO off"
        down, up = fmt.format(**b["download_mbit_s"]), fmt.format(**b["upload_mbit_s"])
        print(f"{labels[name] + ', ' + tso:<60} {down:<34} {up}")
    rd, ru = r["ratio"]["download"], r["ratio"]["upload"]
    ratio = "{median:8.2f}  [{min:.2f} – {max:.2f}]"
    print(f"{'ratio opte-fast / OVS':<60} {ratio.format(**rd):<34} {ratio.format(**ru)}")
    c = r["backends"]["opte-fast"]["counters"]
    print(f"opte-fast cut {c.get('tso_frames', 0)} TSO frames into {c.get('tso_segments', 0)} segments and completed "
          f"{c.get('guest_csum_filled', 0)} checksums. Open vSwitch runs with userspace-tso-enable=false: 3.1 "
          "(Debian 12) carries no TSO through a tunnel (its userspace TSO is for flat and VLAN networks), so its "
          "port offers the guest none and the guest's kernel segments itself.")
    print(f"drops: opte-fast {r['backends']['opte-fast']['drops'] or 'none'}; "
          f"Open vSwitch {r['backends']['ovs']['drops'] or 'none'}")


# -- main ----------------------------------------------------------------------------------------------


def missing() -> str | None:
    """Why the bench cannot run here, or None."""
    if os.geteuid() != 0:
        return "needs root (network namespaces, Open vSwitch)"
    for tool in ("qemu-system-x86_64", "dpkg-deb", "taskset", "ovs-vsctl", "ethtool"):
        if shutil.which(tool) is None:
            return f"{tool} not found: run bash ci/install.sh"
    if kernel_package() is None:
        return "no linux-image-*-cloud-amd64 package: run bash ci/install.sh"
    return ovs_dpdk_missing()


@contextlib.contextmanager
def lab_with_server(blob: bytes) -> Iterator[tuple[BoundaryLab, BlobServers]]:
    with boundary_lab(guests=(Guest(mac=VM_MAC, ipv4=VM_IP, vni=VNI),)) as lab:
        lab.uplinks[0].switch.enlarge_receive_buffers()
        server = BlobServers(lab.internet.ns, lab.internet.ipv4, blob)
        try:
            yield lab, server
        finally:
            server.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=float, default=16, help="bytes each way a round, in MiB (default 16)")
    parser.add_argument("--rounds", type=int, default=5, help="transfers each way per backend (default 5)")
    parser.add_argument("--timeout-s", type=float, default=900, help="longest a backend's VM may take (default 900)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.size_mb <= 0:
        parser.error("--rounds must be at least 1 and --size-mb positive")
    why = missing()
    if why:
        print(f"vm_tcp: cannot run: {why}", file=sys.stderr)
        return 2
    size = int(args.size_mb * 2**20)
    blob = os.urandom(size)
    kernel, unpacked = unpacked_kernel()
    try:
        with lab_with_server(blob) as (lab, server):
            initrd = unpacked / "initrd.cpio"
            initramfs(initrd, kernel, SCRIPT.format(mtu=GUEST_MTU, vm_ip=VM_IP, gateway_ip=GATEWAY_IP,
                                                    gateway_mac=GATEWAY_MAC, rounds=args.rounds,
                                                    server=lab.internet.ipv4, down=DOWN_PORT, up=UP_PORT), boot=START)
            legs = {kind: run_leg(kind, lab, server, kernel, initrd, args.rounds, blob, args.timeout_s)
                    for kind in BACKENDS}
    finally:
        shutil.rmtree(unpacked, ignore_errors=True)
    result = report(legs, blob, args.rounds)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print_report(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
