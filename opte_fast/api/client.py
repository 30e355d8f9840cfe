"""The control socket's client side, which `opte-fast ctl` and the tests use."""
from __future__ import annotations

import json
import socket
import struct
from typing import Any

from .protocol import DEFAULT_SOCKET, OPS, VERSION, ControlError, to_json


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
        """Run `op`; its result, or ControlError with the server's message.

        The arguments are checked against OPS first, as the server will check them, so a
        misspelt or bad argument fails here with the server's words and nothing is sent."""
        if op not in OPS:
            raise ControlError(f"unknown op {op!r}")
        wire = to_json(args)
        try:
            OPS[op].check(wire)
        except ValueError as e:
            raise ControlError(str(e)) from None
        reply = self.request({"v": VERSION, "op": op, "args": wire})
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


def _timeval(seconds: float) -> bytes:
    return struct.pack("ll", int(seconds), int(seconds % 1 * 1e6))
