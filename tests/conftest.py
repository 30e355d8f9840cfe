"""One DPDK EAL per pytest process (rte_eal_init runs once per process); tests that
need their own EAL run opte-fast in a subprocess with its own --file-prefix."""
import os
import shutil

import pytest

from opte_fast.dataplane import eal_args, eal_cleanup, eal_init

EAL_PREFIX = f"oft-pytest-{os.getpid()}"


@pytest.fixture(scope="session")
def eal():
    eal_init(eal_args([1], file_prefix=EAL_PREFIX, memory_mb=768))
    yield
    eal_cleanup()
    shutil.rmtree(f"/var/run/dpdk/{EAL_PREFIX}", ignore_errors=True)
