"""A real VM on a `net_vhost` guest port of `opte-fast run`, as users run one: QEMU (TCG) boots
Debian's cloud kernel with an initramfs of busybox, its virtio-net NIC on the port's vhost-user
socket. Through opte-fast alone, and from nothing but the port's config, the VM takes its IPv4
address, mask, router, DNS, domain and MTU by DHCP (busybox udhcpc) and its IPv6 default route and
MTU from a router advertisement (the kernel's own solicitation). Then it pings out from its address
and opens a TCP connection (encapsulated, with the inner checksums complete although virtio-net
hands the port partial ones), and pings from a spoofed address (dropped and counted, no flow).
"""
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from scapy.all import ICMP, IP, TCP, UDP, Ether, raw, rdpcap

from tests.support.checksums import checksums_hold
from tests.support.cli import OPTE_FAST, ctl_json
from tests.support.tools import needs_tools
from tests.support.vm import VM, initramfs, kernel_package, unpacked_kernel

REPO = Path(__file__).resolve().parent.parent
GUEST_MAC = "02:00:00:00:00:01"
GATEWAY_LL = "fe80::aa40:25ff:feff:1"  # the EUI-64 of the gateway MAC a8:40:25:ff:00:01
MTU = 1400
PCAP_HEADER = bytes.fromhex("d4c3b2a1020004000000000000000000ffff000001000000")  # pcap, Ethernet, no packets

CONFIG = f"""
[underlay]
addr = "fd00:0:f7:101::1"
[route_sync]
source = "static"
[dataplane]
flow_capacity = 4096
exception_path = false
state_dir = "{{state_dir}}"
[eal]
memory_mb = 1024
[control]
socket = "{{socket}}"

[[guest]]
name = "vm0"
devargs = "net_vhost0,iface={{vhost}},queues=1"
vni = 7
mac = "{GUEST_MAC}"
gateway_mac = "a8:40:25:ff:00:01"
ipv4 = "10.0.0.2"
ipv6 = "fd77::2"
dns_servers = ["10.0.0.53", "fd77::53"]
domain = "vpc.example"
lease_time_s = 3600
mtu_bytes = {MTU}

[[uplink]]
name = "uplink0"
devargs = "net_pcap0,rx_pcap={{rx_pcap}},tx_pcap={{tx_pcap}}"

[[v2b]]
prefix = "0.0.0.0/0"
teps = ["fd00:99::1"]

[[route]]
prefix = "fd00:99::/64"
nexthops = [{{{{ uplink = "uplink0", gateway = "fe80::1", mac = "02:aa:00:00:00:01" }}}}]
"""

# after BOOT (tests/support/vm.py): the IPv6 route and MTU from a router advertisement, then traffic
SCRIPT = """for i in $(seq 1 60); do
    route=$(ip -6 route show default)
    [ -n "$route" ] && break
    sleep 0.5
done
echo "RA6 route=[$route] mtu6=$(cat /proc/sys/net/ipv6/conf/eth0/mtu)"
echo "AT $(cut -d' ' -f1 /proc/uptime)"
echo "FEATURES $(cat /sys/class/net/eth0/device/features)"
ping -c 1 -W 1 198.51.100.7 >/dev/null
echo x | nc -w 1 198.51.100.7 8080
ip addr add 10.0.0.99/24 dev eth0
ping -c 2 -W 1 -I 10.0.0.99 198.51.100.7 >/dev/null
echo "VM-DONE $(cut -d' ' -f1 /proc/uptime)"
sleep 600
"""


@pytest.fixture
def pcap_dir():
    """The uplink's pcap files, at a short path: DPDK 24.11 takes devargs of at most 128 bytes, and two
    paths under pytest's tmp_path are longer."""
    directory = Path(tempfile.mkdtemp(prefix="oft-vm-"))
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


def start_opte_fast(tmp_path: Path, pcap_dir: Path, sock: str, vhost: str) -> subprocess.Popen:
    cfg = tmp_path / "vm.toml"
    (pcap_dir / "empty.pcap").write_bytes(PCAP_HEADER)  # the uplink receives nothing
    cfg.write_text(CONFIG.format(state_dir=tmp_path / "state", socket=sock, vhost=vhost,
                                 rx_pcap=pcap_dir / "empty.pcap", tx_pcap=pcap_dir / "uplink0.pcap"))
    proc = subprocess.Popen([*OPTE_FAST, "run", "--config", str(cfg), "--file-prefix", f"oft-vm-{id(tmp_path)}",
                             "--duration-s", "300"], cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while not Path(sock).exists() or subprocess.run([*OPTE_FAST, "ctl", "--socket", sock, "stats"],
                                                    capture_output=True).returncode != 0:
        assert proc.poll() is None, f"opte-fast run exited: {proc.communicate()[1].decode()}"
        assert time.monotonic() < deadline, "no control socket after 30 s"
        time.sleep(0.1)
    return proc


@needs_tools("qemu-system-x86_64", "dpkg-deb")
@pytest.mark.skipif(kernel_package() is None, reason="no cloud kernel package: run bash ci/install.sh")
def test_a_vm_gets_its_addresses_from_the_guest_port_and_cannot_spoof(tmp_path, pcap_dir):
    kernel, unpacked = unpacked_kernel()
    sock, vhost = str(tmp_path / "ctl.sock"), str(tmp_path / "vm0.sock")
    proc = vm = None
    try:
        initrd = tmp_path / "initrd.cpio"
        initramfs(initrd, kernel, SCRIPT)
        proc = start_opte_fast(tmp_path, pcap_dir, sock, vhost)
        vm = VM(tmp_path, kernel, initrd, vhost, GUEST_MAC)
        # TCG on a busy 2-CPU machine: the kernel alone may take 30 s to reach /init
        console = vm.wait_for("VM-DONE", timeout_s=240)
        counters = ctl_json(sock, "stats")["counters"]
        ports = ctl_json(sock, "port", "list")
    finally:
        if vm is not None:
            vm.stop()
        if proc is not None:
            proc.terminate()
            proc.wait(30)
            proc.stderr.close()
        shutil.rmtree(unpacked, ignore_errors=True)

    assert "INSMOD-FAILED" not in console and "DHCP-FAILED" not in console, console
    dhcp = next(line for line in console.splitlines() if line.startswith("DHCP4 "))
    assert dhcp == ("DHCP4 ip=10.0.0.2 mask=24 router=10.0.0.1 serverid=10.0.0.1 dns=[10.0.0.53] "
                    f"domain=vpc.example lease=3600 mtu={MTU}")
    ra = next(line for line in console.splitlines() if line.startswith("RA6 "))
    # only a router advertisement gives the VM an IPv6 default route (busybox ip shows no "proto ra")
    assert ra.startswith(f"RA6 route=[default via {GATEWAY_LL} dev eth0 ") and ra.endswith(f"mtu6={MTU}"), ra
    assert counters["gateway_dhcp4_replies"] >= 2  # the OFFER and the ACK
    assert counters["gateway_ra_replies"] >= 1
    assert counters["spoof_src_ip"] == 2  # the two pings from 10.0.0.99
    assert counters["flows_created"] == 2  # the echo's and the TCP connection's; nothing from 10.0.0.99
    assert {k for k, v in counters.items() if k.startswith("spoof_") and v} <= {"spoof_src_ip", "spoof_arp_sender"}
    # what left on the uplink: Geneve to the TEP, inner frames from the VM with whole checksums
    inner = [Ether(raw(p[UDP].payload)[8:]) for p in rdpcap(str(pcap_dir / "uplink0.pcap"))
             if UDP in p and p[UDP].dport == 6081]
    assert counters["tx_uplink_packets"] == len(inner), [p.summary() for p in inner]
    syns = [p for p in inner if TCP in p and p[TCP].flags == "S" and p[IP].src == "10.0.0.2"]
    echoes = [p for p in inner if ICMP in p and p[IP].src == "10.0.0.2"]
    assert syns and echoes, ([p.summary() for p in inner], str({k: v for k, v in counters.items() if v}))
    assert all(p[IP].src == "10.0.0.2" for p in inner)  # nothing spoofed left
    for p in syns + echoes:
        checksums_hold(raw(p))
    guest = next(p for p in ports if p["name"] == "vm0")
    assert guest["hands_out"]["ipv4"] == "10.0.0.2/24" and guest["hands_out"]["mtu"] == MTU
