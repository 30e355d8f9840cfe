"""A VM's TCP through opte-fast and two real Open vSwitch peers at MTU 1500 and 9000, by sha256.

QEMU (TCG) runs Debian's cloud kernel on a `net_vhost` guest port (TSO on), which hands it its MTU
by DHCP (1500 or 9000). The data plane runs in this process; its uplinks are the lab's sled veths
through DPDK's `net_af_packet`, and the far end is the end-to-end tests' pair of boundary-services
switches (Open vSwitch's userspace datapath, tests/support/ovs.py), one anycast TEP behind both,
which decapsulate toward an internet host. The VM downloads 4 MB from that host and uploads it back; both kernels check every checksum,
sha256 every byte, and the uplinks' byte counts show frames of the guest's size went both ways
(at MTU 9000, 9,084-byte Geneve frames: 14 + 70 + 9000).

Why net_af_packet and a 12 KB mbuf data room: DPDK 22.11's net_tap caps its MTU at 1504, and
net_af_packet copies each frame into one mbuf (no scatter) from a kernel ring of `framesz` slots,
so frames of 9 KB need both a ring slot and an mbuf that hold them; its ethdev MTU stays at 1500
(it reports 1,518-byte frames at most) but nothing in it enforces that. A NIC with scatter RX takes
jumbo frames as chains of 2 KB mbufs (tests/test_jumbo_tso.py).
"""
from __future__ import annotations

import hashlib
import ipaddress
import os
import shutil

import pytest

from opte_fast.controlplane.dataplane import Dataplane, DataplaneOptions
from opte_fast.controlplane.state import V2B, DesiredState, GuestPort, Nexthop, Route, Tep, Underlay
from tests.support.ovs import TEP, Guest, boundary_lab
from tests.support.tools import needs_root, needs_tools
from tests.support.transfer import DOWN_PORT, UP_PORT, BlobServers
from tests.support.vm import VM, initramfs, kernel_package, unpacked_kernel

VM_MAC, GATEWAY_MAC = "02:00:00:00:00:01", "a8:40:25:ff:00:01"
VM_IP = "10.0.0.2"
VNI = 7
UNDERLAY_MTU = 9216
BLOB = os.urandom(4 << 20)
# net_af_packet's ring slots (framesz = blocksz: a page multiple) and an mbuf that holds a slot's
# frame (the PMD refuses a queue whose slots hold more than an mbuf's data room)
FRAME_SLOT = 12288
DATA_ROOM = 128 + FRAME_SLOT
GENEVE = 70

SCRIPT = """echo "FEATURES $(cat /sys/class/net/eth0/device/features)"
echo "MTU $(cat /sys/class/net/eth0/mtu)"
wget -q -O /tmp/blob http://{server}:{down}/blob || echo "DOWN-FAILED"
echo "DOWN $(sha256sum /tmp/blob | cut -d' ' -f1)"
nc {server} {up} < /tmp/blob || echo "UP-FAILED"
echo "VM-DONE"
sleep 600
"""


@needs_root("namespaces and Open vSwitch")
@needs_tools("qemu-system-x86_64", "dpkg-deb", "ovs-vsctl", "ovsdb-server", "ethtool")
@pytest.mark.skipif(kernel_package() is None, reason="no cloud kernel package: run bash ci/install.sh")
@pytest.mark.parametrize("mtu", [1500, 9000])
def test_a_vm_moves_a_file_both_ways_through_open_vswitch_at_its_mtu(eal, tmp_path, mtu):
    kernel, unpacked = unpacked_kernel()
    vhost = str(tmp_path / "vm0.sock")
    vm = servers = None
    try:
        with boundary_lab((TEP, TEP), guests=(Guest(mac=VM_MAC, ipv4=VM_IP, vni=VNI),)) as lab:
            for link in lab.uplinks:
                # the underlay's veths hold the guest's MTU + 70 both ways (the lab's have 9000)
                lab.sled.ip("link", "set", link.ifname, "mtu", str(UNDERLAY_MTU))
                link.switch.ns.ip("link", "set", "ul0", "mtu", str(UNDERLAY_MTU))
                link.switch.enlarge_receive_buffers()
            servers = BlobServers(lab.internet.ns, lab.internet.ipv4, BLOB)
            initrd = tmp_path / "initrd.cpio"
            initramfs(initrd, kernel, SCRIPT.format(server=lab.internet.ipv4, down=DOWN_PORT, up=UP_PORT))
            tep = ipaddress.IPv6Address(TEP)
            state = DesiredState(
                underlay=Underlay(ipaddress.IPv6Address(lab.sled_address)),
                guests=(GuestPort("vm0", VNI, VM_MAC, GATEWAY_MAC, ipaddress.IPv4Address(VM_IP), mtu_bytes=mtu),),
                v2b=(V2B(ipaddress.ip_network("0.0.0.0/0"), (Tep(tep),)),),
                routes=(Route(ipaddress.ip_network(f"{tep}/128"),
                              tuple(Nexthop(link.ifname, ipaddress.IPv6Address(f"fe80::{i + 1}"), link.nexthop_mac)
                                    for i, link in enumerate(lab.uplinks))),),
            )
            dp = Dataplane(DataplaneOptions(underlay_addr=ipaddress.IPv6Address(lab.sled_address),
                                            underlay_mtu=UNDERLAY_MTU, mbuf_data_room=DATA_ROOM,
                                            flow_capacity=4096, n_mbufs=8191))
            try:
                dp.add_port("vm0", f"net_vhost0,iface={vhost},queues=1", "guest")
                # net_af_packet opens its socket, and starts and stops by the interface's name, in
                # the namespace of the thread that calls it: the sled's
                with lab.sled._entered():
                    for i, link in enumerate(lab.uplinks):
                        dp.add_port(link.ifname, f"net_af_packet{i},iface={link.ifname},blocksz={FRAME_SLOT},"
                                    f"framesz={FRAME_SLOT},framecnt=1024", "uplink")
                    dp.commit(state)
                    dp.start([1])
                vm = VM(tmp_path, kernel, initrd, vhost, VM_MAC)
                try:
                    console = vm.wait_for("VM-DONE", timeout_s=300)
                except AssertionError as e:
                    raise AssertionError(f"{e}\n{ {k: v for k, v in dp.counters().items() if v} }\n"
                                         f"{lab.diagnostics()}") from None
                counters, ports = dp.counters(), {p["name"]: p for p in dp.ports()}
                uplink_names = [link.ifname for link in lab.uplinks]
            finally:
                if vm is not None:
                    vm.stop()
                with lab.sled._entered():
                    dp.close()
    finally:
        if servers is not None:
            servers.close()
        shutil.rmtree(unpacked, ignore_errors=True)

    lines = console.splitlines()
    assert "INSMOD-FAILED" not in console and "-FAILED" not in console, console
    assert next(line for line in lines if line.startswith("DHCP4 ")).endswith(f" mtu={mtu}")
    assert f"MTU {mtu}" in lines, console
    want = hashlib.sha256(BLOB).hexdigest()
    assert f"DOWN {want}" in lines, console
    assert servers.uploads == [want], servers.uploads
    # the VM's TSO frames were cut into segments of its MTU, and nothing was dropped as malformed
    assert counters["tso_frames"] > 0 and counters["tso_segments"] > counters["tso_frames"], counters
    assert {k: v for k, v in counters.items() if v and k in MALFORMED} == {}
    # the file each way on the underlay, in frames of at most 14 + 70 + the MTU; at MTU 9000 larger
    # on average (acks, one per one or two segments, included) than a guest of MTU 1500 could send
    uplinks = [ports[name] for name in uplink_names]
    for direction in ("tx", "rx"):
        frames, octets = (sum(u[f"{direction}_{count}"] for u in uplinks) for count in ("packets", "bytes"))
        assert octets > len(BLOB), (direction, uplinks)
        assert octets / frames <= 14 + GENEVE + mtu, (direction, octets / frames, uplinks)
        if mtu == 9000:
            assert octets / frames > 14 + GENEVE + 1500, (direction, octets / frames, uplinks)


# Not tx_full: a VM starved of CPU under TCG leaves its receive ring full now and then, and TCP resends.
MALFORMED = ["guest_over_mtu", "tso_not_tcp", "tso_no_mbuf", "headers_beyond_segment", "parse_truncated",
             "ip_bad_header", "udp_bad_checksum", "inner_truncated", "inner_bad_header", "vni_mac_unknown",
             "inner_over_guest_mtu", "no_headroom", "outer_truncated", "udp_bad_length", "spoof_src_ip",
             "icmp_frag_needed", "over_mtu_no_df"]
