"""Hugepages for a test that runs an instance other processes attach to (dpdk-dumpcap,
dpdk-proc-info): on DPDK 22.11 and 24.11 a secondary process cannot attach to a --no-huge
primary, nor to one started with --in-memory, so the instance runs on hugepages in a mounted
hugetlbfs. The test reserves its pages on top of the machine's, mounts its own hugetlbfs, and
gives both back afterwards."""
from __future__ import annotations

import contextlib
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

NR_HUGEPAGES = Path("/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages")


class HugepagesUnavailable(RuntimeError):
    """The kernel could not give the pages asked for."""


@contextlib.contextmanager
def reserved_hugepages(n_pages: int, owner: str) -> Iterator[Path]:
    """`n_pages` 2 MB pages more than the machine had, and a hugetlbfs mounted for them; yields
    the mount. Afterwards the mount and its page files go and the count is lowered by what was
    added, which restores the previous count (and leaves alone pages another user added since)."""
    before = int(NR_HUGEPAGES.read_text())
    NR_HUGEPAGES.write_text(str(before + n_pages))
    added = int(NR_HUGEPAGES.read_text()) - before
    mount = Path(tempfile.mkdtemp(prefix=f"{owner}-huge-"))
    try:
        if added < n_pages:
            raise HugepagesUnavailable(f"the kernel gave {added} of {n_pages} 2 MB hugepages "
                                       "(memory too fragmented or too little free)")
        subprocess.run(["mount", "-t", "hugetlbfs", "-o", "pagesize=2M", "nodev", str(mount)], check=True)
        try:
            yield mount
        finally:
            for page in mount.iterdir():
                page.unlink()
            subprocess.run(["umount", str(mount)], check=True)
    finally:
        mount.rmdir()
        NR_HUGEPAGES.write_text(str(max(0, int(NR_HUGEPAGES.read_text()) - added)))
