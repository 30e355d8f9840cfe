"""Network namespaces, veth pairs and raw-frame I/O for tests that run as root.

Everything created here lives inside namespaces named `oft-<role>-<random>`; deleting a namespace
deletes its interfaces, so teardown is: kill the processes in it, then `ip netns del`.

    with namespace("sled") as sled, namespace("switch") as sw:
        veth(sled, "sl0", sw, "ul0", mtu=9000)
        with sled.capture("sl0") as cap:
            sled.send("sl0", frame)
            reply = cap.wait_for(lambda f: f.incoming and decode(f.data) is not None, timeout=5)

Raw sockets are opened inside a namespace by switching only the calling thread into it (setns),
creating the socket and switching back: the socket stays in the namespace it was created in, and
no helper process is needed, so a capture is listening before `capture()` returns.
"""
from __future__ import annotations

import contextlib
import ctypes
import os
import secrets
import signal
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

PREFIX = "oft-"
ETH_P_ALL = 0x0003
SO_RCVBUFFORCE = 33
PACKET_OUTGOING = 4
CAPTURE_BUFFER = 32 << 20

_CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


class CommandError(RuntimeError):
    """A command failed; the message holds the command line, exit code and both outputs."""


def run(argv: list[str], *, check: bool = True, timeout: float = 20.0,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env)
    if check and done.returncode != 0:
        raise CommandError(f"{' '.join(argv)} exited {done.returncode}\n"
                           f"stdout: {done.stdout.strip()}\nstderr: {done.stderr.strip()}")
    return done


@dataclass(frozen=True)
class Frame:
    """A captured frame; `time` is when the capture read it (time.time())."""
    data: bytes
    outgoing: bool
    time: float

    @property
    def incoming(self) -> bool:
        return not self.outgoing


class Capture:
    """Every frame seen on one interface (both directions) from creation until `close()`.

    Frames are kept in the socket's large kernel buffer and read on demand, so nothing is lost
    between `capture()` and the first `wait_for()`.
    """

    def __init__(self, sock: socket.socket, ifname: str) -> None:
        self._sock = sock
        self.ifname = ifname
        self._frames: list[Frame] = []

    @property
    def frames(self) -> list[Frame]:
        self._read(deadline=0.0)
        return list(self._frames)

    def wait_for(self, match: Callable[[Frame], bool], timeout: float) -> Frame:
        """The first frame captured so far or within `timeout` seconds for which `match` is true."""
        deadline = time.monotonic() + timeout
        seen = 0
        while True:
            for frame in self._frames[seen:]:
                if match(frame):
                    return frame
            seen = len(self._frames)
            if time.monotonic() >= deadline:
                raise TimeoutError(f"no matching frame on {self.ifname} within {timeout} s; "
                                   f"{len(self._frames)} frames seen:\n{self.summary()}")
            self._read(deadline)

    def summary(self, limit: int = 20) -> str:
        lines = [f"  {'out' if f.outgoing else 'in '} {len(f.data):5d} B {f.data[:64].hex()}"
                 for f in self._frames[-limit:]]
        return "\n".join(lines) or "  (none)"

    def write_pcap(self, path: Path) -> None:
        """Write the frames (Ethernet link type, microsecond timestamps) for tshark or scapy."""
        with open(path, "wb") as out:
            out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
            for f in self.frames:
                seconds = int(f.time)
                out.write(struct.pack("<IIII", seconds, int((f.time - seconds) * 1e6),
                                      len(f.data), len(f.data)))
                out.write(f.data)

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> Capture:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _read(self, deadline: float) -> None:
        """Read what is queued; wait for more until `deadline` only if nothing was queued."""
        wait = deadline - time.monotonic()
        while True:
            self._sock.settimeout(max(wait, 0.0))
            try:
                data, address = self._sock.recvfrom(65535)
            except (BlockingIOError, TimeoutError):
                return
            self._frames.append(Frame(data, address[2] == PACKET_OUTGOING, time.time()))
            wait = 0.0


class Responder:
    """Answers frames arriving on an interface, from a thread: `answer(frame)` returns the reply
    or None; `answered` lists the frames that got one."""

    def __init__(self, sock: socket.socket, answer: Callable[[bytes], bytes | None]) -> None:
        self._sock = sock
        self._answer = answer
        self._stop = threading.Event()
        self.answered: list[bytes] = []
        self._sock.settimeout(0.05)
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, address = self._sock.recvfrom(65535)
            except TimeoutError:
                continue
            if address[2] == PACKET_OUTGOING:
                continue
            reply = self._answer(data)
            if reply is not None:
                self._sock.send(reply)
                self.answered.append(data)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self._sock.close()

    def __enter__(self) -> Responder:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


class Netns:
    """A network namespace created by `namespace()`; commands and sockets run inside it."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._processes: list[subprocess.Popen[bytes]] = []

    def __repr__(self) -> str:
        return f"Netns({self.name!r})"

    # -- commands ---------------------------------------------------------------------------
    def run(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run(["ip", "netns", "exec", self.name, *argv], check=check)

    def ip(self, *args: str) -> str:
        """`ip -n NAME ARGS`; an argument may hold several words: `ns.ip("-6 route del", prefix)`."""
        return run(["ip", "-n", self.name, *(word for arg in args for word in arg.split())]).stdout

    def popen(self, *argv: str, **kwargs: object) -> subprocess.Popen[bytes]:
        """Start a process in the namespace; it is killed when the namespace is torn down."""
        process: subprocess.Popen[bytes] = subprocess.Popen(  # type: ignore[call-overload]
            ["ip", "netns", "exec", self.name, *argv], **kwargs)
        self._processes.append(process)
        return process

    def sysctl(self, **settings: str | int) -> None:
        """`sysctl(net__ipv6__conf__all__forwarding=1)`: dots are written as double underscores."""
        self.run("sysctl", "-qw", *(f"{k.replace('__', '.')}={v}" for k, v in settings.items()))

    # -- interfaces -------------------------------------------------------------------------
    def link_up(self, ifname: str) -> None:
        self.ip("link", "set", ifname, "up")

    def add_address(self, ifname: str, cidr: str) -> None:
        """Add an address; IPv6 ones with `nodad`, so they are usable at once."""
        self.ip("addr", "add", cidr, "dev", ifname, *(["nodad"] if ":" in cidr else []))

    def neighbour(self, ifname: str, address: str, mac: str, state: str = "permanent") -> None:
        """Add or replace the neighbour entry of `address` on `ifname`, in NUD state `state`."""
        self.ip("neigh", "replace", address, "lladdr", mac, "dev", ifname, "nud", state)

    def disable_tx_checksum_offload(self, ifname: str) -> None:
        """Needed where a kernel sends into a veth that Open vSwitch reads through AF_PACKET: the
        frame would otherwise reach OVS with only a partial checksum, which it never completes."""
        self.run("ethtool", "-K", ifname, "tx", "off")

    # -- sockets ----------------------------------------------------------------------------
    def open_socket(self, family: int, kind: int, proto: int = 0) -> socket.socket:
        """A socket of the namespace (e.g. a UDP listener of a host there)."""
        with self._entered():
            return socket.socket(family, kind, proto)

    def packet_socket(self, ifname: str) -> socket.socket:
        """An AF_PACKET socket bound to `ifname` seeing every frame, with a large receive buffer."""
        sock = self.open_socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, CAPTURE_BUFFER)
        with self._entered():
            sock.bind((ifname, ETH_P_ALL))
        return sock

    def send(self, ifname: str, *frames: bytes) -> None:
        with self.packet_socket(ifname) as sock:
            for frame in frames:
                sock.send(frame)

    def capture(self, ifname: str) -> Capture:
        return Capture(self.packet_socket(ifname), ifname)

    def responder(self, ifname: str, answer: Callable[[bytes], bytes | None]) -> Responder:
        return Responder(self.packet_socket(ifname), answer)

    @contextlib.contextmanager
    def _entered(self) -> Iterator[None]:
        """Move only the calling thread into the namespace for the duration of the block."""
        with open(f"/run/netns/{self.name}") as target, open("/proc/thread-self/ns/net") as home:
            _setns(target.fileno())
            try:
                yield
            finally:
                _setns(home.fileno())

    # -- teardown ---------------------------------------------------------------------------
    def pids(self) -> list[int]:
        return [int(p) for p in run(["ip", "netns", "pids", self.name]).stdout.split()]

    def close(self) -> None:
        """Kill every process in the namespace (ours or started through us), then delete it."""
        for process in self._processes:
            if process.poll() is None:
                process.terminate()
        for process in self._processes:
            try:
                process.wait(timeout=2)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        deadline = time.monotonic() + 5
        while (pids := self.pids()) and time.monotonic() < deadline:
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.02)
        run(["ip", "netns", "del", self.name])


def _setns(fd: int) -> None:
    if _libc.setns(fd, _CLONE_NEWNET) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"setns: {os.strerror(errno)}")


@contextlib.contextmanager
def namespace(role: str) -> Iterator[Netns]:
    """A fresh namespace `oft-<role>-<random>` with loopback up and DAD off; always deleted."""
    name = f"{PREFIX}{role}-{secrets.token_hex(3)}"
    run(["ip", "netns", "add", name])
    ns = Netns(name)
    try:
        ns.link_up("lo")
        ns.sysctl(net__ipv6__conf__all__accept_dad=0, net__ipv6__conf__default__accept_dad=0,
                  net__ipv6__conf__default__router_solicitations=0)
        yield ns
    finally:
        ns.close()


def veth(a: Netns, a_ifname: str, b: Netns, b_ifname: str, *, mtu: int = 9000,
         a_mac: str | None = None, b_mac: str | None = None) -> None:
    """A veth pair from `a_ifname` in `a` to `b_ifname` in `b`, both ends up; gone with `a`/`b`."""
    a.ip("link", "add", a_ifname, "mtu", str(mtu), *(["address", a_mac] if a_mac else []),
         "type", "veth", "peer", "name", b_ifname, "netns", b.name, "mtu", str(mtu),
         *(["address", b_mac] if b_mac else []))
    a.link_up(a_ifname)
    b.link_up(b_ifname)
