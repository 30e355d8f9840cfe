"""The control socket: protocol, server and client.

One request per line, one reply per line, UTF-8 JSON:

    {"v": 1, "op": "v2b.set", "args": {"prefix": "0.0.0.0/0", "teps": ["fd00:99::1"]}}
    {"v": 1, "ok": true, "result": {"changed": true}}
    {"v": 1, "ok": false, "error": "unknown op 'v2b.add' (did you mean 'v2b.set'?)"}

`OPS` is the one definition of every operation and its arguments, shared by
the server (which checks and converts arguments before dispatch) and by the
client and `opte-fast ctl` (which name them). A bad request gets an error
reply and the connection stays open. The socket file is mode 0600 and each
connection's peer credentials (SO_PEERCRED) must be root or the daemon's own
uid; anyone else gets "not authorised".
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
from collections.abc import Callable
from dataclasses import dataclass, fields, is_dataclass
from typing import Any

from .config import values as cfg
from .config.loader import NEXTHOP_KEYS
from .controlplane.controller import Controller
from .controlplane.pollthread import PollThread
from .controlplane.state import BOUNDARY_SERVICES_VNI, DataplaneAPI, Nexthop

VERSION = 1
MAX_REQUEST_BYTES = 1 << 20
DEFAULT_SOCKET = "/run/opte-fast/opte-fast.sock"


class ControlError(RuntimeError):
    """A request failed: the server's error text, or why the server could not be reached."""


# --- the operations ------------------------------------------------------------------------

REQUIRED = object()


def _count(value: Any) -> int:
    return cfg.Int(1, 1 << 24).parse(value, False)


def _tep_list(value: Any) -> tuple[ipaddress.IPv6Address, ...]:
    if not isinstance(value, list) or not value:
        raise cfg.BadValue("expected a non-empty list of TEP IPv6 addresses")
    return tuple(cfg.unicast_v6_value(v) for v in value)


def _match(value: Any) -> dict[str, str]:
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, (str, int)) and
                                              not isinstance(v, bool) for k, v in value.items()):
        raise cfg.BadValue("expected an object of flow field -> value, like {\"dst\": \"10.0.0.1\"}")
    return {k: str(v) for k, v in value.items()}


def _nexthop_list(value: Any) -> tuple[Nexthop, ...]:
    if not isinstance(value, list) or not value:
        raise cfg.BadValue("expected a non-empty list of {uplink, gateway, mac} objects")
    out = []
    for h in value:
        if not isinstance(h, dict) or set(h) != NEXTHOP_KEYS or not isinstance(h["uplink"], str):
            raise cfg.BadValue(f"expected a nexthop object with exactly uplink, gateway, mac, got {h!r}")
        out.append(Nexthop(h["uplink"], cfg.gateway_value(h["gateway"]), cfg.mac_value(h["mac"])))
    return tuple(out)


@dataclass(frozen=True)
class Arg:
    name: str
    parse: Callable[[Any], Any]
    default: Any = REQUIRED


@dataclass(frozen=True)
class Op:
    """An operation: its name on the wire, what it does, its arguments."""
    name: str
    help: str
    args: tuple[Arg, ...] = ()

    @property
    def method(self) -> str:
        return self.name.replace(".", "_")

    def check(self, args: Any) -> dict[str, Any]:
        """The arguments converted to Python values; ValueError naming the bad one."""
        if not isinstance(args, dict):
            raise ValueError(f"{self.name}: expected \"args\" to be an object")
        known = {a.name for a in self.args}
        for name in args:
            if name not in known:
                raise ValueError(f"{self.name}: unknown argument {name!r} "
                                 f"(expected {', '.join(sorted(known)) or 'no arguments'})")
        out = {}
        for a in self.args:
            if a.name not in args:
                if a.default is REQUIRED:
                    raise ValueError(f"{self.name}: missing argument {a.name!r}")
                out[a.name] = a.default
                continue
            try:
                out[a.name] = a.parse(args[a.name])
            except ValueError as e:
                raise ValueError(f"{self.name}: bad argument {a.name!r}: {e}") from None
        return out


PREFIX = Arg("prefix", cfg.prefix_value)
ROUTE_PREFIX = Arg("prefix", lambda v: cfg.prefix_value(v, v6_only=True))
VNI = Arg("vni", cfg.vni_value)
ADDR = Arg("addr", cfg.unicast_v6_value)
OPS: dict[str, Op] = {op.name: op for op in (
    Op("stats", "counters, per-port statistics and route sync state"),
    Op("flows", "active flows, optionally only those whose fields match",
       (Arg("limit", _count, 100), Arg("match", _match, {}))),
    Op("routes", "underlay routes and their nexthops"),
    Op("nexthops", "nexthops in the data plane: id, up, flows pinned, traffic"),
    Op("teps", "TEPs in the data plane: id, up, flows pinned, traffic"),
    Op("buckets", "bucket counts per member of every TEP set and nexthop group"),
    Op("v2b.set", "destinations under a prefix leave through these TEPs",
       (PREFIX, Arg("teps", _tep_list), Arg("vni", cfg.vni_value, BOUNDARY_SERVICES_VNI))),
    Op("v2b.clear", "remove the V2B entry of a prefix", (PREFIX,)),
    Op("v2b.dump", "every V2B entry"),
    Op("v2p.set", "a guest on another sled", (VNI, Arg("ip", cfg.ip_value), Arg("underlay", cfg.unicast_v6_value),
                                              Arg("mac", cfg.mac_value))),
    Op("v2p.clear", "remove a V2P entry", (VNI, Arg("ip", cfg.ip_value))),
    Op("v2p.dump", "every V2P entry"),
    Op("tep.up", "mark a TEP address up in every V2B entry", (ADDR,)),
    Op("tep.down", "mark a TEP address down in every V2B entry; its flows move", (ADDR,)),
    Op("port.list", "ports with their role, devargs and counters"),
    Op("route.set", "add or replace an underlay route (route source static or none)",
       (ROUTE_PREFIX, Arg("nexthops", _nexthop_list))),
    Op("route.clear", "remove an underlay route (route source static or none)", (ROUTE_PREFIX,)),
)}


def to_json(obj: Any) -> Any:
    """Plain JSON values from state dataclasses, addresses and numpy numbers."""
    if is_dataclass(obj):
        return {f.name: to_json(getattr(obj, f.name)) for f in fields(obj)}
    if isinstance(obj, dict):
        return {str(k): to_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [to_json(v) for v in obj]
    if isinstance(obj, (ipaddress.IPv4Address, ipaddress.IPv6Address,
                        ipaddress.IPv4Network, ipaddress.IPv6Network)):
        return str(obj)
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if hasattr(obj, "tolist"):  # numpy arrays and scalars
        return obj.tolist()
    if hasattr(obj, "__index__"):
        return int(obj)
    return str(obj)


# --- what each operation does ----------------------------------------------------------------


def flatten(record: dict, prefix: str = "") -> dict[str, Any]:
    """Nested dicts as dotted keys: {"key": {"dst": x}} -> {"key.dst": x}."""
    out: dict[str, Any] = {}
    for k, v in record.items():
        if isinstance(v, dict):
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _same(actual: Any, wanted: str) -> bool:
    try:
        return ipaddress.ip_address(str(actual)) == ipaddress.ip_address(wanted)
    except ValueError:
        return str(to_json(actual)).lower() == wanted.lower()


class ControlAPI:
    """The operations of OPS, on a controller, a data plane and a route source."""

    def __init__(self, controller: Controller, dataplane: DataplaneAPI, route_source: Any, flow_scan_limit: int):
        self.controller = controller
        self.dataplane = dataplane
        self.route_source = route_source
        self.flow_scan_limit = flow_scan_limit
        self.started = time.monotonic()

    def stats(self) -> dict:
        s = self.controller.state
        return {"uptime_s": round(time.monotonic() - self.started, 3),
                "counters": self.dataplane.counters(), "ports": self.dataplane.ports(),
                "route_sync": self.route_source.stats(),
                "tables": {"guests": len(s.guests), "v2p": len(s.v2p), "v2b": len(s.v2b), "routes": len(s.routes)}}

    def flows(self, limit: int, match: dict[str, str]) -> list[dict]:
        if not match:
            return self.dataplane.flows(limit)
        out = []
        for flow in self.dataplane.flows(self.flow_scan_limit):
            flat = flatten(flow)
            by_name = {**{k.rsplit(".", 1)[-1]: v for k, v in flat.items()}, **flat}
            unknown = [k for k in match if k not in by_name]
            if unknown:
                raise ValueError(f"flows: no flow field {unknown[0]!r} (expected one of {', '.join(sorted(by_name))})")
            if all(_same(by_name[k], v) for k, v in match.items()):
                out.append(flow)
                if len(out) == limit:
                    break
        return out

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
        return self.dataplane.ports()

    def route_set(self, prefix, nexthops) -> dict:
        return {"changed": self.controller.route_set(prefix, nexthops)}

    def route_clear(self, prefix) -> dict:
        return {"changed": self.controller.route_clear(prefix)}



def _tep_result(addr: ipaddress.IPv6Address, up: bool, entries: int) -> dict:
    result = {"addr": addr, "up": up, "entries": entries}
    if not entries:  # most likely a typo: say that nothing moved
        result["warning"] = (f"no V2B entry names {addr}, so no flow moved; it is kept {'up' if up else 'down'} "
                             "for V2B entries set later")
    return result


# --- server ----------------------------------------------------------------------------------


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


def _timeval(seconds: float) -> bytes:
    return struct.pack("ll", int(seconds), int(seconds % 1 * 1e6))


def _encode(message: dict) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode() + b"\n"


# --- client ----------------------------------------------------------------------------------


class ControlClient:
    """Sends requests to a running opte-fast; use as a context manager or call close()."""

    def __init__(self, path: str = DEFAULT_SOCKET, timeout_s: float = 30.0):
        self.path = path
        self.timeout_s = timeout_s
        self._sock: socket.socket | None = None
        self._pending = b""

    def __enter__(self) -> ControlClient:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def call(self, op: str, **args: Any) -> Any:
        """Run `op`; its result, or ControlError with the server's message."""
        if op not in OPS:
            raise ControlError(f"unknown op {op!r}")
        reply = self.request({"v": VERSION, "op": op, "args": to_json(args)})
        if not reply.get("ok"):
            raise ControlError(reply.get("error", "error reply without a message"))
        return reply.get("result")

    def request(self, message: dict | bytes) -> dict:
        """Send one request (a dict, or raw bytes for a line as is) and read its reply."""
        sock = self._connect()
        line = message if isinstance(message, bytes) else json.dumps(message).encode()
        try:
            sock.sendall(line.rstrip(b"\n") + b"\n")
            while b"\n" not in self._pending:
                data = sock.recv(1 << 16)
                if not data:
                    raise ControlError(f"opte-fast closed the connection on {self.path}")
                self._pending += data
        except TimeoutError:
            raise ControlError(f"no reply from opte-fast on {self.path} within {self.timeout_s:g} s") from None
        except OSError as e:
            raise ControlError(f"lost the connection to {self.path}: {e.strerror or e}") from None
        line, self._pending = self._pending.split(b"\n", 1)
        return json.loads(line)

    def _connect(self) -> socket.socket:
        if self._sock is not None:
            return self._sock
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        # A blocking connect waits (up to SO_SNDTIMEO) for room in a full listen backlog; with a
        # Python timeout the socket would be non-blocking and connect() fail at once with EAGAIN.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, _timeval(self.timeout_s))
        try:
            sock.connect(self.path)
        except FileNotFoundError:
            sock.close()
            raise ControlError(f"is opte-fast running? no socket at {self.path}") from None
        except ConnectionRefusedError:
            sock.close()
            raise ControlError(f"is opte-fast running? nothing listens on {self.path}") from None
        except PermissionError:
            sock.close()
            raise ControlError(f"permission denied on {self.path} (run as root or as the user running opte-fast)") \
                from None
        except BlockingIOError:
            sock.close()
            raise ControlError(f"opte-fast on {self.path} accepted no connection within {self.timeout_s:g} s") \
                from None
        except OSError as e:
            sock.close()
            raise ControlError(f"cannot connect to {self.path}: {e.strerror or e}") from None
        sock.settimeout(self.timeout_s)
        self._sock = sock
        return sock
