"""A real virtual machine on a vhost-user socket, as ../shared/notes/vm-guest.md describes: QEMU
under TCG (KVM guests hang at boot on these machines), Debian's cloud kernel with its virtio
modules, and an initramfs made here of the static busybox and an /init script. QEMU is the
vhost-user client; the `net_vhost` port of a running opte-fast is the server and must exist first.
"""
from __future__ import annotations

import glob
import lzma
import shutil
import stat
import subprocess
import tarfile
import tempfile
import time
from pathlib import Path, PurePosixPath

# ci/install.sh downloads the kernel package here (apt-get download: nothing is installed).
KERNEL_CACHE = "/var/cache/opte-fast/vm"
KERNEL_GLOBS = [f"{KERNEL_CACHE}/linux-image-*-cloud-amd64_*.deb",
                "/var/cache/apt/archives/linux-image-*-cloud-amd64_*.deb"]
# virtio-net's modules in load order (modinfo -F depends): the cloud kernel builds them as modules.
MODULES = ["virtio_ring", "virtio", "virtio_pci_legacy_dev", "virtio_pci_modern_dev", "virtio_pci",
           "failover", "net_failover", "virtio_net"]
BUSYBOX = "/bin/busybox"  # busybox-static's


def kernel_package() -> str | None:
    found = sorted(p for g in KERNEL_GLOBS for p in glob.glob(g) if "-unsigned" not in p and "-dbg" not in p)
    return found[-1] if found else None


class GuestKernel:
    """vmlinuz and the virtio modules, unpacked from the cloud kernel package into a directory.
    `modules` maps each module built as one to its bytes, uncompressed, in load order; a module
    the kernel has built in is left out."""

    def __init__(self, deb: str, into: Path):
        # Only what the VM needs out of the package's 100 MB of modules, read as the tar streams by.
        # Debian 12 has them in lib/modules, uncompressed, and virtio_pci modular; Debian 13 in
        # usr/lib/modules (merged /usr), xz-compressed, with everything but virtio_net and its failover
        # modules built in: a path to ask tar for would not be found in one or the other.
        dpkg = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", deb], stdout=subprocess.PIPE)
        vmlinuz: list[Path] = []
        found: dict[str, list[tuple[str, bytes]]] = {name: [] for name in MODULES}
        builtin: set[str] = set()
        with tarfile.open(fileobj=dpkg.stdout, mode="r|") as tar:
            for member in tar:
                path = PurePosixPath(member.name)
                if not member.isfile():
                    continue
                if path.parent.name == "boot" and path.name.startswith("vmlinuz-"):
                    vmlinuz.append(into / path.name)
                    vmlinuz[-1].write_bytes(tar.extractfile(member).read())
                elif "modules" not in path.parts:
                    continue
                elif path.name == "modules.builtin":
                    builtin |= {PurePosixPath(line).name.split(".ko")[0]
                                for line in tar.extractfile(member).read().decode().split()}
                elif ".ko" in path.name and path.name.split(".ko")[0] in found:
                    found[path.name.split(".ko")[0]].append((path.name, tar.extractfile(member).read()))
        dpkg.stdout.read()  # the archive's end padding, which tarfile leaves unread
        dpkg.stdout.close()
        assert dpkg.wait() == 0, f"dpkg-deb could not read {deb}"
        assert len(vmlinuz) == 1, f"{deb}: not one boot/vmlinuz-*: {vmlinuz}"
        self.vmlinuz = vmlinuz[0]
        self.modules: dict[str, bytes] = {}
        for name, hits in found.items():
            if not hits and name in builtin:
                continue
            assert len(hits) == 1, f"module {name} in {deb}: {[file for file, _ in hits]} (and not built in)"
            self.modules[name] = _uncompressed(*hits[0])


def _uncompressed(file: str, data: bytes) -> bytes:
    """A module's bytes as insmod takes them: Debian 13 ships them xz-compressed, Debian 12 not."""
    if file.endswith(".ko"):
        return data
    if file.endswith(".ko.xz"):
        return lzma.decompress(data)
    raise AssertionError(f"module {file}: a compression this test does not unpack (.ko and .ko.xz only)")


def _cpio_newc(entries: list[tuple[str, int, bytes]]) -> bytes:
    """An initramfs archive (cpio "newc", uncompressed, which the kernel takes as is)."""
    out = bytearray()
    for ino, (name, mode, data) in enumerate([*entries, ("TRAILER!!!", 0, b"")], start=1):
        raw_name = name.encode() + b"\0"
        fields = [ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(raw_name), 0]
        out += b"070701" + b"".join(f"{f:08x}".encode() for f in fields) + raw_name
        out += b"\0" * (-len(out) % 4) + data
        out += b"\0" * (-len(out) % 4)
    return bytes(out)


# The start of every VM's /init: busybox's applets, the kernel's file systems, virtio-net's modules
# from /lib in their load order, eth0 up (START); then, in BOOT, its IPv4 address, router and MTU
# by DHCP (busybox udhcpc, whose script applies them and says them on the console in one line,
# DHCP4 ...).
START = """#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
for m in $(cat /lib/load-order); do
    insmod /lib/$m.ko || echo "INSMOD-FAILED $m"
done
echo "UP $(cut -d' ' -f1 /proc/uptime)"
ip link set lo up
ip link set eth0 up
"""
BOOT = START + """udhcpc -i eth0 -n -q -t 5 -T 2 -O mtu -s /bin/dhcp.sh || echo "DHCP-FAILED"
"""

DHCP_SCRIPT = """#!/bin/sh
[ "$1" = bound ] || exit 0
ip link set "$interface" mtu "$mtu"
ip addr add "$ip/$mask" dev "$interface"
ip route add default via "$router" dev "$interface"
echo "DHCP4 ip=$ip mask=$mask router=$router serverid=$serverid dns=[$dns] domain=$domain lease=$lease mtu=$mtu"
"""


def initramfs(path: Path, kernel: GuestKernel, script: str, boot: str = BOOT) -> None:
    """/init (`boot`, then `script`: what the VM does once it has its address), /bin/dhcp.sh,
    /bin/busybox, and the modules in /lib with their load order in /lib/load-order. `boot` is BOOT,
    or START for a VM that sets its address itself."""
    directory, executable = stat.S_IFDIR | 0o755, stat.S_IFREG | 0o755
    entries = [(d, directory, b"") for d in ("bin", "dev", "etc", "lib", "proc", "sys", "tmp")]
    entries.append(("bin/busybox", executable, Path(BUSYBOX).read_bytes()))
    entries += [(f"lib/{name}.ko", stat.S_IFREG | 0o644, data) for name, data in kernel.modules.items()]
    entries.append(("lib/load-order", stat.S_IFREG | 0o644, " ".join(kernel.modules).encode()))
    entries.append(("init", executable, (boot + script).encode()))
    entries.append(("bin/dhcp.sh", executable, DHCP_SCRIPT.encode()))
    path.write_bytes(_cpio_newc(entries))


class VM:
    """One QEMU process whose virtio-net NIC (with `mac`) is on vhost-user socket `sock`. QEMU is
    the vhost-user client, or with `vhost_server` the server (for a backend that connects, as Open
    vSwitch's dpdkvhostuserclient ports do); `cpus` (taskset's list) pins it."""

    def __init__(self, workdir: Path, kernel: GuestKernel, initrd: Path, sock: str, mac: str, *,
                 vhost_server: bool = False, cpus: str | None = None):
        self.console = workdir / "console.log"
        chardev = f"socket,id=c0,path={sock}" + (",server=on,wait=off" if vhost_server else "")
        self.proc = subprocess.Popen(
            [*(["taskset", "-c", cpus] if cpus else []), "qemu-system-x86_64", "-accel", "tcg", "-m", "256M", "-nodefaults", "-display", "none",
             "-object", "memory-backend-memfd,id=mem,size=256M,share=on", "-machine", "memory-backend=mem",
             "-kernel", str(kernel.vmlinuz), "-initrd", str(initrd),
             "-append", "console=ttyS0 quiet panic=-1", "-serial", f"file:{self.console}", "-no-reboot",
             "-chardev", chardev, "-netdev", "vhost-user,id=n0,chardev=c0",
             # no MSI-X: QEMU 7.2 crashes in msix_set_vector_notifiers when vhost-user starts under TCG
             "-device", f"virtio-net-pci,netdev=n0,mac={mac},vectors=0"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def wait_for(self, marker: str, timeout_s: float) -> str:
        """The console up to the line holding `marker` (the VM is then still running)."""
        deadline = time.monotonic() + timeout_s
        while True:
            text = self.console.read_text(errors="replace") if self.console.exists() else ""
            if marker in text:
                return text
            if self.proc.poll() is not None:
                raise AssertionError(f"the VM stopped before {marker!r}: {self.proc.stderr.read().decode()}\n{text}")
            if time.monotonic() > deadline:
                raise AssertionError(f"no {marker!r} on the VM's console after {timeout_s} s:\n{text}")
            time.sleep(0.2)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stderr.close()


def unpacked_kernel() -> tuple[GuestKernel, Path]:
    """The cloud kernel unpacked in a new temporary directory (the caller removes it)."""
    deb = kernel_package()
    assert deb, f"no linux-image-*-cloud-amd64 package in {KERNEL_CACHE}: run bash ci/install.sh"
    into = Path(tempfile.mkdtemp(prefix="oft-vm-kernel-"))
    try:
        return GuestKernel(deb, into), into
    except BaseException:
        shutil.rmtree(into, ignore_errors=True)
        raise


__all__ = ["BOOT", "START", "DHCP_SCRIPT", "GuestKernel", "VM", "initramfs", "kernel_package", "unpacked_kernel"]
