"""The control socket's server side: ControlAPI does each operation of OPS on a controller and
a data plane; ControlServer serves it on a unix socket.

The socket file is mode 0600 and each connection's peer credentials (SO_PEERCRED) must be
root or the daemon's own uid; anyone else gets "not authorised". A bad request gets an error
reply and the connection stays open.
"""
from __future__ import annotations

import difflib
import errno
import ipaddress
import json
import os
import socket
import stat
import struct
import sys
import threading
import time
import traceback
from typing import Any

from ..controlplane.controller import Controller
from ..controlplane.pollthread import PollThread
from ..controlplane.state import DataplaneAPI, GuestPort
from .protocol import MAX_REQUEST_BYTES, OPS, VERSION, ControlError, flatten, to_json


def _same(actual: Any, wanted: str) -> bool:
    try:
        return ipaddress.ip_address(str(actual)) == ipaddress.ip_address(wanted)
    except ValueError:
        return str(to_json(actual)).lower() == wanted.lower()


class ControlAPI:
    """The operations of OPS, on a controller, a data plane and a route source."""

    TRACE_POLL_S = 0.02

    def __init__(self, controller: Controller, dataplane: DataplaneAPI, route_source: Any,
                 file_prefix: str | None = None, hugepages: bool = False):
        self.controller = controller
        self.dataplane = dataplane
        self.route_source = route_source
        self.file_prefix = file_prefix
        self.hugepages = hugepages
        self.started = time.monotonic()

    def stats(self) -> dict:
        s = self.controller.state
        return {"uptime_s": round(time.monotonic() - self.started, 3),
                "counters": self.dataplane.counters(), "drops": sorted(self.dataplane.drop_counters),
                "ports": self.dataplane.ports(),
                "workers": self.dataplane.workers(), "route_sync": self.route_source.stats(),
                "tables": {"guests": len(s.guests), "v2p": len(s.v2p), "v2b": len(s.v2b), "routes": len(s.routes)},
                "memory": self.dataplane.memory()}

    def flows(self, limit: int, match: dict[str, str]) -> list[dict]:
        if not match:
            return self.dataplane.flows(limit)

        def matches(flow: dict) -> bool:
            flat = flatten(flow)
            by_name = {**{k.rsplit(".", 1)[-1]: v for k, v in flat.items()}, **flat}
            unknown = [k for k in match if k not in by_name]
            if unknown:
                raise ValueError(f"flows: no flow field {unknown[0]!r} (expected one of {', '.join(sorted(by_name))})")
            return all(_same(by_name[k], v) for k, v in match.items())
        return self.dataplane.flows(limit, matches)

    def routes(self) -> Any:
        return self.controller.state.routes

    def nexthops(self) -> list:
        return self.dataplane.paths().get("nexthops", [])

    def teps(self) -> list:
        return self.dataplane.paths().get("teps", [])

    def buckets(self) -> list:
        return self.dataplane.buckets()

    def v2b_set(self, prefix, teps, vni) -> dict:
        return {"changed": self.controller.v2b_set(prefix, teps, vni)}

    def v2b_clear(self, prefix) -> dict:
        return {"changed": self.controller.v2b_clear(prefix)}

    def v2b_dump(self) -> Any:
        return self.controller.state.v2b

    def v2p_set(self, vni, ip, underlay, mac) -> dict:
        return {"changed": self.controller.v2p_set(vni, ip, underlay, mac)}

    def v2p_clear(self, vni, ip) -> dict:
        return {"changed": self.controller.v2p_clear(vni, ip)}

    def v2p_dump(self) -> Any:
        return self.controller.state.v2p

    def tep_up(self, addr) -> dict:
        return _tep_result(addr, True, self.controller.tep_set_state(addr, True))

    def tep_down(self, addr) -> dict:
        return _tep_result(addr, False, self.controller.tep_set_state(addr, False))

    def port_list(self) -> list:
        guests = {g.port: g for g in self.controller.state.guests}
        ports = self.dataplane.ports()
        for p in ports:
            if p["name"] in guests:
                p["hands_out"] = hands_out(guests[p["name"]])
        return ports

    def bfd(self) -> dict:
        report = getattr(self.dataplane, "bfd", None)  # controlplane/bfd.py's Bfd, when it is in the stack
        return report() if callable(report) else {"sessions": [], "thread": None}

    def route_set(self, prefix, nexthops) -> dict:
        return {"changed": self.controller.route_set(prefix, nexthops)}

    def route_clear(self, prefix) -> dict:
        return {"changed": self.controller.route_clear(prefix)}

    def trace(self, match: dict, count: int, timeout_s: float) -> dict:
        """Arm a trace, gather its records until `count` came or `timeout_s` passed, disarm."""
        self.dataplane.trace_start(match["dst"], match["proto"], match["port"], count)
        records: list[dict] = []
        deadline = time.monotonic() + timeout_s
        try:
            while True:
                got, armed = self.dataplane.trace_records()
                records += got
                if not armed or len(records) >= count or time.monotonic() >= deadline:
                    break
                time.sleep(self.TRACE_POLL_S)
        finally:
            self.dataplane.trace_stop()
        return {"records": records, "complete": len(records) >= count}

    def instance(self) -> dict:
        return {"pid": os.getpid(), "file_prefix": self.file_prefix, "hugepages": self.hugepages,
                "capturable": self.file_prefix is not None and self.hugepages}


def hands_out(g: GuestPort) -> dict:
    """What a guest port's gateway hands out by DHCPv4, DHCPv6 and router advertisements."""
    return {
        "ipv4": f"{g.ipv4}/{g.ipv4_prefix_len}" if g.ipv4 is not None else None,
        "router": g.gateway_ipv4,
        "ipv6": g.ipv6,
        "ra_prefix": g.ra_prefix,
        "dns": list(g.dns_servers),
        "domain": g.domain or None,
        "lease_s": g.lease_time_s,
        "mtu": g.mtu_bytes,
    }


def _tep_result(addr: ipaddress.IPv6Address, up: bool, entries: int) -> dict:
    result = {"addr": addr, "up": up, "entries": entries}
    if not entries:  # most likely a typo: say that nothing moved
        result["warning"] = (f"no V2B entry names {addr}, so no flow moved; it is kept {'up' if up else 'down'} "
                             "for V2B entries set later")
    return result


def peer_uid(conn: socket.socket) -> int:
    _pid, uid, _gid = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                                                          struct.calcsize("3i")))
    return uid


class ControlServer:
    """Serves OPS on a unix socket at `path`, a thread per connection."""

    def __init__(self, path: str, api: Any):
        missing = [op.name for op in OPS.values() if not callable(getattr(api, op.method, None))]
        if missing:
            raise TypeError(f"control API lacks {', '.join(missing)}")
        self.path = path
        self.api = api
        self.allowed_uids = {0, os.getuid()}
        self._listener: socket.socket | None = None
        self._inode: tuple[int, int] | None = None
        self._conns: dict[socket.socket, threading.Thread] = {}
        self._lock = threading.Lock()
        self._acceptor = PollThread("control-accept", self._accept_loop)

    def start(self) -> None:
        """Create the socket (mode 0600, directory made if missing) and start serving."""
        directory = os.path.dirname(self.path) or "."
        try:
            os.makedirs(directory, mode=0o755, exist_ok=True)
            self._remove_stale()
            # bound and listening under a temporary name, then renamed into place:
            # a client never finds the path without a listener or with a looser mode
            staging = self.path + ".new"
            if os.path.exists(staging):
                os.unlink(staging)
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            os.fchmod(sock.fileno(), 0o600)  # the bound file takes this mode
            sock.bind(staging)
            os.chmod(staging, 0o600)
            sock.listen(socket.SOMAXCONN)
            os.rename(staging, self.path)
        except OSError as e:
            raise ControlError(f"cannot create control socket {self.path}: {e.strerror or e}") from None
        st = os.stat(self.path)
        self._inode = (st.st_dev, st.st_ino)
        self._listener = sock
        self._acceptor.start()

    def stop(self) -> None:
        """Stop serving, close every connection, remove the socket file."""
        if self._listener is None:
            return
        self._acceptor.stop()
        with self._lock:
            conns = dict(self._conns)
        for conn, thread in conns.items():
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already closed by its thread
            thread.join(timeout=5)
        self._listener.close()
        self._listener = None
        try:
            st = os.stat(self.path)
            if (st.st_dev, st.st_ino) == self._inode:
                os.unlink(self.path)
        except FileNotFoundError:
            pass

    def _remove_stale(self) -> None:
        try:
            mode = os.stat(self.path).st_mode
        except FileNotFoundError:
            return
        if not stat.S_ISSOCK(mode):  # never remove what is not ours to remove
            raise OSError(errno.EEXIST, "a file that is not a socket is in the way "
                                        "(remove it, or choose another --control-socket)")
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(self.path)
        except OSError:
            os.unlink(self.path)  # nobody listens: left over from a crash
            return
        finally:
            probe.close()
        raise OSError(errno.EADDRINUSE, "another opte-fast is serving it")

    def _accept_loop(self) -> None:
        poller = self._acceptor.poller(self._listener)
        while True:
            poller.poll()
            if self._acceptor.stopping.is_set():
                return
            try:
                conn, _ = self._listener.accept()
            except OSError:
                continue
            thread = threading.Thread(target=self._serve, args=(conn,), name="control-conn", daemon=True)
            with self._lock:
                self._conns[conn] = thread
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            uid = peer_uid(conn)
            pending = b""
            while True:
                data = conn.recv(65536)
                if not data:
                    return
                pending += data
                while b"\n" in pending:
                    line, pending = pending.split(b"\n", 1)
                    if line.strip():
                        conn.sendall(self.reply(line, uid))
                if len(pending) > MAX_REQUEST_BYTES:
                    conn.sendall(_encode({"v": VERSION, "ok": False,
                                          "error": f"request longer than {MAX_REQUEST_BYTES} bytes"}))
                    return
        except OSError:
            return
        finally:
            with self._lock:
                self._conns.pop(conn, None)
            conn.close()

    def reply(self, line: bytes, uid: int) -> bytes:
        """The reply line for one request line from a peer with `uid`."""
        try:
            result = self._handle(line, uid)
            return _encode({"v": VERSION, "ok": True, "result": to_json(result)})
        except (ValueError, LookupError, RuntimeError) as e:  # bad requests; the data plane refusing a commit
            return _encode({"v": VERSION, "ok": False, "error": str(e)})
        except Exception as e:
            traceback.print_exc(file=sys.stderr)
            return _encode({"v": VERSION, "ok": False, "error": f"internal error: {type(e).__name__}: {e}"})

    def _handle(self, line: bytes, uid: int) -> Any:
        if uid not in self.allowed_uids:
            raise ValueError(f"not authorised: uid {uid} may not use this socket (only root or uid {os.getuid()})")
        try:
            request = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ValueError(f"malformed JSON: {e}") from None
        if not isinstance(request, dict) or "op" not in request:
            raise ValueError('expected a JSON object like {"v": 1, "op": "stats", "args": {}}')
        if request.get("v") != VERSION or isinstance(request.get("v"), bool):  # True == 1 in Python
            raise ValueError(f"unsupported protocol version {request.get('v')!r} (this server speaks {VERSION})")
        unknown = set(request) - {"v", "op", "args"}
        if unknown:
            raise ValueError(f"unknown request field {sorted(unknown)[0]!r} (expected v, op, args)")
        name = request["op"]
        op = OPS.get(name) if isinstance(name, str) else None
        if op is None:
            near = difflib.get_close_matches(str(name), list(OPS), n=1)
            hint = f"did you mean {near[0]!r}?" if near else "expected one of " + ", ".join(OPS)
            raise ValueError(f"unknown op {name!r} ({hint})")
        return getattr(self.api, op.method)(**op.check(request.get("args", {})))



def _encode(message: dict) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode() + b"\n"
