"""The uplinks' kernel taps (`--exception-path`) as the kernel sees them.

The data plane creates each tap (DPDK net_tap) in opte-fast's own network
namespace, named after its uplink. With `--netns NS` the routing daemon runs in
NS, so every tap is moved there once the data plane has started (net_tap sets
its interface up by name in the namespace it was probed in, so not before),
and brought up again (moving a link takes it down). Each tap's carrier then
follows its uplink's link (opte_fast/links.py), so the routing daemon and
route sync see a pulled cable as they would on a kernel NIC.

One RTM_NEWLINK request per change, addressed by interface name, over raw
rtnetlink as in routesync.py; nothing here is on a hot path.
"""
from __future__ import annotations

import os
import socket
import struct

from .routesync import in_netns

RTM_NEWLINK, NLMSG_ERROR = 16, 2
NLM_F_REQUEST, NLM_F_ACK = 0x1, 0x4
IFLA_IFNAME, IFLA_NET_NS_FD, IFLA_CARRIER = 3, 28, 33
IFF_UP = 0x1


class TapError(RuntimeError):
    """The kernel refused a change to a tap; the message names the tap and why."""


def _attr(kind: int, data: bytes) -> bytes:
    length = 4 + len(data)
    return struct.pack("HH", length, kind) + data + b"\0" * (-length % 4)


def newlink_request(ifname: str, *, flags: int = 0, change: int = 0, attrs: bytes = b"") -> bytes:
    """An RTM_NEWLINK message (acknowledged) changing interface `ifname` by name."""
    body = struct.pack("BxHiII", socket.AF_UNSPEC, 0, 0, flags, change) + _attr(IFLA_IFNAME, ifname.encode() + b"\0")
    body += attrs
    return struct.pack("IHHII", 16 + len(body), RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK, 1, 0) + body


def _setlink(ifname: str, *, flags: int = 0, change: int = 0, attrs: bytes = b"") -> None:
    """RTM_NEWLINK for `ifname` in the calling thread's namespace; TapError with the kernel's reason."""
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE) as sock:
        sock.bind((0, 0))
        sock.send(newlink_request(ifname, flags=flags, change=change, attrs=attrs))
        reply = sock.recv(65536)
    _length, kind = struct.unpack_from("IH", reply)
    code = -struct.unpack_from("i", reply, 16)[0] if kind == NLMSG_ERROR else 0
    if code:
        raise TapError(f"{ifname}: {os.strerror(code)}")


def move_into(ifname: str, netns: str) -> None:
    """Move interface `ifname` from this namespace into network namespace `netns`, and bring it up there."""
    try:
        fd = os.open(f"/run/netns/{netns}", os.O_RDONLY | os.O_CLOEXEC)
    except OSError as e:
        raise TapError(f"{ifname}: no network namespace {netns!r} ({e.strerror})") from None
    try:
        _setlink(ifname, attrs=_attr(IFLA_NET_NS_FD, struct.pack("I", fd)))
    except TapError as e:
        raise TapError(f"cannot move {e} into network namespace {netns!r}") from None
    finally:
        os.close(fd)
    set_up(ifname, netns, True)


def set_up(ifname: str, netns: str | None, up: bool) -> None:
    """Interface `ifname` (in `netns`, None: here) administratively up or down."""
    in_netns(netns, lambda: _setlink(ifname, flags=IFF_UP if up else 0, change=IFF_UP))


def set_carrier(ifname: str, netns: str | None, on: bool) -> None:
    """Carrier of tap `ifname` (in `netns`, None: here) on or off, as a NIC's link up or down."""
    in_netns(netns, lambda: _setlink(ifname, attrs=_attr(IFLA_CARRIER, bytes([on]))))
