"""The far end of a VM's TCP transfers, in a namespace: a download of a blob (HTTP/1.0, which busybox wget
speaks) and an upload whose sha256 it records, so a test compares both with the blob's own; each timed,
for bench/vm_tcp.py."""
from __future__ import annotations

import hashlib
import socket
import threading
import time
from dataclasses import dataclass, field

DOWN_PORT, UP_PORT = 8000, 8001


@dataclass
class Transfers:
    """Seconds each download and upload took (from the connection's accept), and each upload's sha256."""
    down_s: list[float] = field(default_factory=list)
    up_s: list[float] = field(default_factory=list)
    uploads: list[str] = field(default_factory=list)


class BlobServers:
    """On `address` in namespace `ns`: `blob` to whoever asks on DOWN_PORT, the sha256 of each upload of
    `len(blob)` bytes to UP_PORT in `uploads`."""

    def __init__(self, ns, address: str, blob: bytes) -> None:
        self.blob = blob
        self.transfers = Transfers()
        self.socks = []
        for port, serve in ((DOWN_PORT, self._download), (UP_PORT, self._upload)):
            s = ns.open_socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((address, port))
            s.listen(4)
            self.socks.append(s)
            threading.Thread(target=self._accept, args=(s, serve), daemon=True).start()

    @staticmethod
    def _accept(s: socket.socket, serve) -> None:
        while True:
            try:
                conn, _ = s.accept()
            except OSError:
                return
            with conn:
                serve(conn, time.monotonic())

    @property
    def uploads(self) -> list[str]:
        return self.transfers.uploads

    def take(self) -> Transfers:
        """What was transferred since the last take."""
        taken, self.transfers = self.transfers, Transfers()
        return taken

    def _download(self, conn: socket.socket, start: float) -> None:
        request = b""
        while b"\r\n\r\n" not in request:
            chunk = conn.recv(4096)
            if not chunk:
                return
            request += chunk
        conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n" % len(self.blob) + self.blob)
        conn.recv(1)    # the VM closes once it has every byte
        self.transfers.down_s.append(time.monotonic() - start)

    def _upload(self, conn: socket.socket, start: float) -> None:
        digest, left = hashlib.sha256(), len(self.blob)
        while left:
            chunk = conn.recv(min(left, 1 << 16))
            if not chunk:
                break
            digest.update(chunk)
            left -= len(chunk)
        self.transfers.up_s.append(time.monotonic() - start)
        self.transfers.uploads.append(digest.hexdigest() if left == 0 else f"short by {left} bytes")

    def close(self) -> None:
        for s in self.socks:
            s.close()
