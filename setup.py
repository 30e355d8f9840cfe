"""Build the data plane: csrc/ as a static library with warnings as errors,
linked into one Cython extension, against the system DPDK from pkg-config."""
import glob
import os
import shlex
import subprocess
import sys

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


def pkg_config(*args: str) -> list[str]:
    try:
        out = subprocess.run(["pkg-config", *args, "libdpdk"], check=True, capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError):
        sys.exit("opte-fast: DPDK development files not found; "
                 "install them with: apt-get install dpdk-dev libdpdk-dev pkg-config")
    return shlex.split(out)


dpdk_cflags = pkg_config("--cflags")



def ring_pmd_link_args() -> list[str]:
    """Ring ports (tests, demo) call the ring PMD's own API, so it is linked, not only loaded
    as a plugin; it lives in the plugin directory, the same file the EAL loads (loaded once)."""
    libdir = pkg_config("--variable=libdir")[0]
    found = sorted(glob.glob(f"{libdir}/dpdk/pmds-*/librte_net_ring.so"))
    if not found:
        sys.exit(f"opte-fast: librte_net_ring.so not found under {libdir}/dpdk; install it with: apt-get install dpdk")
    pmds_dir = os.path.dirname(found[-1])
    return [f"-L{pmds_dir}", f"-Wl,-rpath,{pmds_dir}", "-lrte_net_ring"]


# BFD authentication's SHA1 is OpenSSL's (csrc/bfd.c): libcrypto, from libssl-dev.
dpdk_libs = pkg_config("--libs") + ring_pmd_link_args() + ["-lcrypto"]
# OPTE_FAST_SANITIZE=1 builds the whole extension with ASan and UBSan (ci/c-tests.sh documents how to run it).
sanitize = ["-fsanitize=address,undefined", "-fno-omit-frame-pointer"] if os.environ.get("OPTE_FAST_SANITIZE") else []
csrc = sorted(glob.glob("csrc/*.c"))

# -fno-strict-aliasing: DPDK's inline helpers (rte_hash_crc among them) read structs through
# uint64_t pointers; with strict aliasing GCC may move a field store past such a read.
C_FLAGS = ["-std=gnu11", "-O3", "-g", "-Wall", "-Wextra", "-Werror", "-fno-strict-aliasing", "-fPIC"]
dataplane_lib = ("optefastdp", {"sources": csrc, "cflags": [*C_FLAGS, *sanitize, *dpdk_cflags]})

extension = Extension(
    "opte_fast._dataplane",
    sources=["python/_dataplane.pyx"],
    include_dirs=["csrc", "python", numpy.get_include()],
    extra_compile_args=["-O2", *sanitize, *dpdk_cflags],
    extra_link_args=[*sanitize, *dpdk_libs],
    depends=csrc + glob.glob("csrc/*.h") + glob.glob("csrc/*.def") + glob.glob("python/*.pxd"),
)

# The bench's traffic source: a DPDK plugin (EAL -d) for testpmd, ovs-vswitchd and opte-fast alike,
# not a Python module (csrc/bench/trafficgen.c says why); the failover benches load it with ctypes
# for its transmit watch (csrc/bench/txwatch.c).
bench_traffic = Extension(
    "opte_fast._bench_traffic",
    sources=["csrc/bench/trafficgen.c", "csrc/bench/txwatch.c"],
    extra_compile_args=[*C_FLAGS, *dpdk_cflags],
    extra_link_args=pkg_config("--libs"),
)


class build_ext_with_clib(build_ext):
    """Every way of building the extension (wheel, editable, --inplace) builds csrc/ first."""

    def run(self) -> None:
        self.run_command("build_clib")
        super().run()


setup(
    cmdclass={"build_ext": build_ext_with_clib},
    libraries=[dataplane_lib],
    ext_modules=[*cythonize([extension], language_level=3, include_path=["python"]), bench_traffic],
)
