"""A VM's TCP through the data plane with its offloads on, both ways, checked by sha256.

QEMU (TCG) runs Debian's cloud kernel on a `net_vhost` guest port, which opte-fast offers TSO and
checksum offload (`tso=1`): the VM's virtio-net sends 64 KB TSO frames with partial checksums, which
the data plane cuts into segments and completes before encapsulating them. The far end is a second
guest on the same sled, a `net_tap` port whose kernel in its own namespace serves a file: the two
are V2P peers, so every frame between them is encapsulated in Geneve toward the sled's own
underlay address and leaves on an uplink that is a `net_ring` loopback, whose frames come straight
back in and are decapsulated (OVS under TCG would be the slow part; the Geneve frames themselves
are checked against scapy and OVS elsewhere). The VM downloads 4 MB and uploads it back (its TSO
frames cut here); both kernels check every checksum, and sha256 checks every byte.

At MTU 1500 only: DPDK 22.11's net_tap reports 1,522-byte frames at most, so ethdev caps its MTU at
1504 and its TX drops anything longer, and these machines have no /dev/vhost-net for a
virtio_user kernel peer. Jumbo frames and TSO at MTU 9000 are checked byte for byte on ring ports
(tests/test_jumbo_tso.py), and with a VM through Open vSwitch (tests/test_vm_jumbo_ovs.py).
"""
import hashlib
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.support.cli import OPTE_FAST, ctl_json
from tests.support.netns import namespace, run
from tests.support.tools import needs_tools
from tests.support.transfer import DOWN_PORT, UP_PORT, BlobServers
from tests.support.vm import VM, initramfs, kernel_package, unpacked_kernel

REPO = Path(__file__).resolve().parent.parent
VM_MAC, SRV_MAC = "02:00:00:00:00:01", "02:00:00:00:00:03"
VM_IP, SRV_IP = "10.0.0.2", "10.0.0.3"
UNDERLAY = "fd00:0:f7:101::1"
BLOB = os.urandom(4 << 20)

CONFIG = """
[underlay]
addr = "{underlay}"
mtu_bytes = 1600
[route_sync]
source = "static"
[dataplane]
flow_capacity = 4096
exception_path = false
state_dir = "{state_dir}"
[eal]
memory_mb = 1024
[control]
socket = "{socket}"

[[guest]]
name = "vm0"
devargs = "net_vhost0,iface={vhost},queues=1"
vni = 7
mac = "{vm_mac}"
gateway_mac = "a8:40:25:ff:00:01"
ipv4 = "{vm_ip}"
mtu_bytes = 1500

[[guest]]
name = "srv0"
devargs = "net_tap_{srv},iface={srv}"
vni = 7
mac = "{srv_mac}"
gateway_mac = "a8:40:25:ff:00:01"
ipv4 = "{srv_ip}"
mtu_bytes = 1500

[[uplink]]
name = "uplink0"
devargs = "{up0}"

[[v2p]]
vni = 7
ip = "{vm_ip}"
underlay = "{underlay}"
mac = "{vm_mac}"

[[v2p]]
vni = 7
ip = "{srv_ip}"
underlay = "{underlay}"
mac = "{srv_mac}"

[[route]]
prefix = "{underlay}/128"
nexthops = [{{ uplink = "uplink0", gateway = "fe80::1", mac = "02:aa:00:00:00:01" }}]
"""

# after BOOT (tests/support/vm.py): down the blob, up it again
SCRIPT = f"""echo "FEATURES $(cat /sys/class/net/eth0/device/features)"
ping -c 2 -W 2 {SRV_IP} >/dev/null && echo "PING-OK" || echo "PING-FAILED"
wget -q -O /tmp/blob http://{SRV_IP}:{DOWN_PORT}/blob
echo "DOWN $(sha256sum /tmp/blob | cut -d' ' -f1)"
nc {SRV_IP} {UP_PORT} < /tmp/blob
echo "UP sent"
echo "VM-DONE"
sleep 600
"""


def wait_for_iface(name: str, proc: subprocess.Popen, sock: str) -> None:
    deadline = time.monotonic() + 30
    while not Path(sock).exists() or run(["ip", "link", "show", name], check=False).returncode != 0:
        assert proc.poll() is None, f"opte-fast run exited: {proc.communicate()[1].decode()}"
        assert time.monotonic() < deadline, "no control socket after 30 s"
        time.sleep(0.1)


@needs_tools("qemu-system-x86_64", "dpkg-deb")
@pytest.mark.skipif(kernel_package() is None, reason="no cloud kernel package: run bash ci/install.sh")
def test_a_vms_tso_tcp_arrives_whole_both_ways(tmp_path):
    kernel, unpacked = unpacked_kernel()
    tag = f"ts{os.getpid() % 10000}"
    srv, up0 = f"{tag}s", f"net_ring_{tag}"
    sock, vhost = str(tmp_path / "ctl.sock"), str(tmp_path / "vm0.sock")
    proc = vm = servers = None
    with namespace("tso-srv") as srv_ns:
        try:
            initrd = tmp_path / "initrd.cpio"
            initramfs(initrd, kernel, SCRIPT)
            cfg = tmp_path / "tso.toml"
            cfg.write_text(CONFIG.format(underlay=UNDERLAY, state_dir=tmp_path / "state", socket=sock, vhost=vhost,
                                         vm_mac=VM_MAC, vm_ip=VM_IP, srv=srv, srv_mac=SRV_MAC, srv_ip=SRV_IP,
                                         up0=up0))
            proc = subprocess.Popen([*OPTE_FAST, "run", "--config", str(cfg), "--file-prefix", f"oft-tso-{tag}",
                                     "--no-follow-link", "--duration-s", "900"], cwd=REPO,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            wait_for_iface(srv, proc, sock)
            # the server: the second guest's kernel, with the port's MAC
            run(["ip", "link", "set", srv, "netns", srv_ns.name])
            srv_ns.sysctl(net__ipv6__conf__all__disable_ipv6=1)
            srv_ns.ip("link", "set", srv, "address", SRV_MAC)
            srv_ns.add_address(srv, f"{SRV_IP}/24")
            srv_ns.link_up(srv)
            servers = BlobServers(srv_ns, SRV_IP, BLOB)
            vm = VM(tmp_path, kernel, initrd, vhost, VM_MAC)
            try:
                console = vm.wait_for("VM-DONE", timeout_s=300)
            except AssertionError as e:
                assert proc.poll() is None, f"opte-fast exited {proc.returncode}: {proc.stderr.read().decode()}\n{e}"
                counters = ctl_json(sock, "stats")["counters"]
                raise AssertionError(f"{e}\n{ {k: v for k, v in counters.items() if v} }\n{ctl_json(sock, 'port', 'list')}") from None
            counters = ctl_json(sock, "stats")["counters"]
        finally:
            if vm is not None:
                vm.stop()
            if servers is not None:
                servers.close()
            if proc is not None:
                proc.terminate()
                proc.wait(30)
                proc.stderr.close()
            shutil.rmtree(unpacked, ignore_errors=True)

    assert "INSMOD-FAILED" not in console, console
    # what the port handed out by DHCP, from its config alone (no DNS servers, no domain, the default lease)
    assert next((line for line in console.splitlines() if line.startswith("DHCP4 ")), console) == (
        f"DHCP4 ip={VM_IP} mask=24 router=10.0.0.1 serverid=10.0.0.1 dns=[] domain= lease=86400 mtu=1500")
    down = next((line.split()[1] for line in console.splitlines() if line.startswith("DOWN ")), None)
    want = hashlib.sha256(BLOB).hexdigest()
    assert down == want, console
    assert servers.uploads == [want], (servers.uploads, console)  # what the VM sent back
    features = next(line.split()[1] for line in console.splitlines() if line.startswith("FEATURES "))
    assert features[11] == "1" and features[0] == "1", features  # HOST_TSO4 and CSUM negotiated
    # the VM's TSO frames were cut here, and nothing was dropped as malformed or misdirected
    assert counters["tso_frames"] > 0 and counters["tso_segments"] > counters["tso_frames"], counters
    assert {k: counters[k] for k in DROPS if counters[k]} == {}


# Not spoof_src_mac: the server's kernel speaks up on its tap before the test gives it the port's MAC.
# Not tx_full: a VM starved of CPU under TCG leaves its receive ring full now and then, and TCP resends.
DROPS = ["guest_over_mtu", "tso_not_tcp", "tso_no_mbuf", "headers_beyond_segment", "parse_truncated",
         "ip_bad_header", "udp_bad_checksum", "inner_truncated", "inner_bad_header", "vni_mac_unknown",
         "no_headroom", "outer_truncated", "udp_bad_length", "spoof_src_ip"]
