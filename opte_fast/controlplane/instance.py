"""What one running `opte-fast run` owns on the host besides its ports: its EAL file prefix.

DPDK keeps a process's runtime files in /var/run/dpdk/<prefix>, and nothing stops a second
process from using the same prefix, then deleting the first one's directory (and its telemetry
socket) when it exits. So an instance claims its prefix with a lock file held for its whole life,
before the EAL starts, and a second claim is refused with the holder's pid. On hugepages the EAL
also leaves its page files (<hugetlbfs>/<prefix>map_N), which hold the pages until removed.
"""
from __future__ import annotations

import contextlib
import fcntl
import glob
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

LOCK_DIR = Path("/run/opte-fast")
DPDK_RUN_DIR = Path("/var/run/dpdk")


class PrefixInUse(RuntimeError):
    """Another opte-fast holds this file prefix."""


def lock_path(prefix: str) -> Path:
    return LOCK_DIR / f"{prefix}.lock"


@contextlib.contextmanager
def claim_file_prefix(prefix: str) -> Iterator[None]:
    """Hold `prefix` for the block; PrefixInUse if another instance holds it. On leaving, the
    lock file and the EAL's runtime directory (left behind even with --no-shconf) are removed."""
    LOCK_DIR.mkdir(mode=0o755, parents=True, exist_ok=True)
    sweep_dead_instances()
    path = lock_path(prefix)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise PrefixInUse(f"another opte-fast (pid {holder}) runs with --file-prefix {prefix}; "
                              "stop it, or give this one another --file-prefix") from None
        try:  # the holder we waited on may have unlinked the file we now lock: lock the new one
            if os.stat(path).st_ino == os.fstat(fd).st_ino:
                break
        except FileNotFoundError:
            pass
        os.close(fd)
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    try:
        yield
    finally:
        release_file_prefix(prefix)
        os.close(fd)


def sweep_dead_instances() -> None:
    """Remove what instances killed with SIGKILL left: a lock file nobody holds, and its prefix's
    runtime directory. A lock is taken before the files go, so a live instance is never touched."""
    for path in LOCK_DIR.glob("*.lock"):
        try:
            fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        except FileNotFoundError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            release_file_prefix(path.name[:-len(".lock")])
        except BlockingIOError:
            pass  # alive
        finally:
            os.close(fd)


def hugetlbfs_mounts() -> list[Path]:
    with open("/proc/mounts") as f:
        return [Path(fields[1]) for fields in (line.split() for line in f) if fields[2] == "hugetlbfs"]


def release_file_prefix(prefix: str) -> None:
    """Remove what the instance of `prefix` leaves on the host (also for a forced stop)."""
    shutil.rmtree(DPDK_RUN_DIR / prefix, ignore_errors=True)
    for mount in hugetlbfs_mounts():
        for page in mount.glob(f"{glob.escape(prefix)}map_*"):
            with contextlib.suppress(FileNotFoundError):
                page.unlink()
    with contextlib.suppress(FileNotFoundError):
        os.unlink(lock_path(prefix))
