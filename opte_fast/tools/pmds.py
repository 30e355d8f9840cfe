"""The poll-mode drivers of the installed DPDK.

Every DPDK driver library embeds, in its `.rodata` section, one C string per
driver of the form ``PMD_INFO_STRING= {"name": ..., "params": ..., ...}`` (see
DPDK's ``dpdk-pmdinfo.py``). This module reads those strings with pyelftools
from the plugin directory the EAL loads drivers from.
"""
from __future__ import annotations

import dataclasses
import json
import re
import shutil
import subprocess
import sysconfig
from dataclasses import dataclass
from pathlib import Path

import click
from elftools.elf.elffile import ELFFile

INSTALL_HINT = "install DPDK with: apt-get install dpdk"

_PMD_INFO = re.compile(rb"PMD_INFO_STRING=([^\0]*)\0")
_PLUGIN_PATH = re.compile(rb"DPDK_PLUGIN_PATH=([^\0]*)\0")
# One "key=value" devargs entry. A value ends at whitespace, or right after a
# "<...>" placeholder that is directly followed by the next key (several
# drivers omit the space there, e.g. net_pcap's "phy_mac=<int>infinite_rx=").
_DEVARG = re.compile(r"([\w.-]+)=((?:\[[^\]]*\]|<[^>]*>|[^\s\[<])+?)(?=\s|$|(?<=>)[\w.-]+=)")


class DpdkMissing(Exception):
    """The DPDK driver plugins are not installed where we looked."""


@dataclass(frozen=True)
class Pmd:
    name: str  # e.g. "net_pcap"
    kind: str  # "net", "crypto", "bus", ... from the file name librte_<kind>_<x>.so
    params: str  # devargs parameters string as embedded, "" if none
    kmods: str  # kernel modules dependency string, "" if none
    pci_ids: int  # number of PCI ids the driver claims
    library: str  # path of the shared object the driver was read from


def find_pmds_dir() -> Path:
    """Return the directory the installed EAL loads driver plugins from."""
    for candidate in (_pkg_config_pmdsdir(), _eal_plugin_path()):
        if candidate is not None and candidate.is_dir():
            return candidate
    raise DpdkMissing(f"DPDK driver plugin directory not found; {INSTALL_HINT}")


def list_pmds(pmds_dir: Path | None = None, kind: str | None = None) -> list[Pmd]:
    """Read the drivers embedded in the plugins of `pmds_dir`, sorted by name."""
    if pmds_dir is None:
        pmds_dir = find_pmds_dir()
    libraries = sorted({path.resolve() for path in pmds_dir.glob("librte_*.so*")})
    if not libraries:
        raise DpdkMissing(f"no DPDK driver plugins in {pmds_dir}; {INSTALL_HINT}")
    drivers: dict[str, Pmd] = {}
    for library in libraries:
        library_kind = _library_kind(library)
        if kind is not None and library_kind != kind:
            continue
        for match in _PMD_INFO.finditer(_rodata(library)):
            info = json.loads(match.group(1))
            drivers.setdefault(info["name"], Pmd(
                name=info["name"],
                kind=library_kind,
                params=info.get("params") or "",
                kmods=info.get("kmod") or "",
                pci_ids=len(info.get("pci_ids") or []),
                library=str(library),
            ))
    return sorted(drivers.values(), key=lambda pmd: pmd.name)


def parse_devargs_params(params: str) -> dict[str, str]:
    """Split an embedded params string into {key: value-description}.

    "rx_pcap=<string> infinite_rx=<0|1>" -> {"rx_pcap": "<string>", "infinite_rx": "<0|1>"}.
    Bracketed values may hold spaces ("mode=[l2 | l23]").
    """
    return {match.group(1): match.group(2) for match in _DEVARG.finditer(params)}


def _library_kind(library: Path) -> str:
    return library.name.removeprefix("librte_").split("_", 1)[0]


def _rodata(library: Path) -> bytes:
    with library.open("rb") as f:
        section = ELFFile(f).get_section_by_name(".rodata")
        return section.data() if section is not None else b""


def _pkg_config_pmdsdir() -> Path | None:
    if shutil.which("pkg-config") is None:
        return None
    result = subprocess.run(["pkg-config", "--variable=pmdsdir", "libdpdk"],
                            capture_output=True, text=True, check=False)
    value = result.stdout.strip()
    return Path(value) if result.returncode == 0 and value else None


def _eal_plugin_path() -> Path | None:
    """The plugin directory compiled into librte_eal (its DPDK_PLUGIN_PATH string)."""
    multiarch = sysconfig.get_config_var("MULTIARCH") or ""
    for libdir in (Path("/usr/lib") / multiarch, Path("/usr/local/lib") / multiarch,
                   Path("/usr/lib64"), Path("/usr/local/lib")):
        for eal in sorted(libdir.glob("librte_eal.so.*")):
            match = _PLUGIN_PATH.search(_rodata(eal.resolve()))
            if match:
                return Path(match.group(1).decode())
    return None


@click.command("pmds")
@click.option("--kind", help="Only drivers of this kind: net, crypto, event, baseband, ...")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of a table.")
@click.option("--dir", "pmds_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Plugin directory to read (default: the installed DPDK's).")
def pmds(kind: str | None, as_json: bool, pmds_dir: Path | None) -> None:
    """List the poll-mode drivers of the installed DPDK."""
    try:
        drivers = list_pmds(pmds_dir, kind)
    except DpdkMissing as e:
        click.echo(str(e), err=True)
        raise click.exceptions.Exit(2) from None
    if as_json:
        click.echo(json.dumps([dataclasses.asdict(d) for d in drivers], indent=2))
        return
    rows = [("NAME", "KMODS", "PARAMS")]
    rows += [(d.name, d.kmods or "-", " ".join(d.params.split()) or "-") for d in drivers]
    name_width = max(len(row[0]) for row in rows)
    kmods_width = max(len(row[1]) for row in rows)
    for name, kmods, params in rows:
        click.echo(f"{name:<{name_width}}  {kmods:<{kmods_width}}  {params}".rstrip())
