"""opte_fast.tools.pmds against the DPDK installed on this machine."""
from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from opte_fast.tools import pmds as pmds_module
from opte_fast.tools.pmds import DpdkMissing, Pmd, find_pmds_dir, list_pmds, parse_devargs_params, pmds

FIELDS = {"name", "kind", "params", "kmods", "pci_ids", "library"}


@pytest.fixture(scope="module")
def drivers() -> dict[str, Pmd]:
    found = list_pmds()
    assert [d.name for d in found] == sorted({d.name for d in found}), "sorted, each driver once"
    return {d.name: d for d in found}


def test_find_pmds_dir() -> None:
    pmds_dir = find_pmds_dir()
    assert pmds_dir.is_dir()
    assert pmds_dir.name.startswith("pmds-")


def test_virtual_net_drivers_and_their_params(drivers: dict[str, Pmd]) -> None:
    for name in ("net_null", "net_pcap", "net_tap", "net_tun", "net_ring", "net_vhost"):
        assert drivers[name].kind == "net"
    params = {name: parse_devargs_params(drivers[name].params)
              for name in ("net_null", "net_pcap", "net_tap", "net_ring", "net_vhost")}
    assert {"size", "copy", "no-rx"} <= params["net_null"].keys()
    # DPDK 22.11 embeds "phy_mac=<int>infinite_rx=<0|1>" with no space between them.
    assert params["net_pcap"]["rx_pcap"] == "<string>"
    assert params["net_pcap"]["tx_pcap"] == "<string>"
    assert params["net_pcap"]["infinite_rx"] == "<0|1>"
    assert params["net_tap"]["iface"] == "<string>"
    assert "nodeaction" in params["net_ring"]
    assert {"iface", "queues", "client"} <= params["net_vhost"].keys()


def test_pci_driver_fields(drivers: dict[str, Pmd]) -> None:
    ixgbe = drivers["net_ixgbe"]
    assert ixgbe.pci_ids > 0
    assert "vfio-pci" in ixgbe.kmods
    assert Path(ixgbe.library).name.startswith("librte_net_ixgbe.so.")
    assert not Path(ixgbe.library).is_symlink()
    assert drivers["net_null"].pci_ids == 0
    assert drivers["net_null"].kmods == ""


def test_kind_filter(drivers: dict[str, Pmd]) -> None:
    net = list_pmds(kind="net")
    assert net and all(d.kind == "net" for d in net)
    assert {d.name for d in net} == {d.name for d in drivers.values() if d.kind == "net"}


def test_cli_table() -> None:
    result = CliRunner().invoke(pmds, ["--kind", "net"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["NAME", "KMODS", "PARAMS"]
    pcap = next(line for line in lines if line.startswith("net_pcap "))
    assert "rx_pcap=<string>" in pcap
    params_column = lines[0].index("PARAMS")
    assert pcap.index("rx_pcap=") == params_column


def test_cli_json_kind_net() -> None:
    result = CliRunner().invoke(pmds, ["--json", "--kind", "net"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert rows and all(set(row) == FIELDS for row in rows)
    assert all(row["kind"] == "net" for row in rows)
    assert {"net_null", "net_pcap", "net_tap", "net_ring", "net_vhost"} <= {row["name"] for row in rows}


def test_cli_json_all_kinds() -> None:
    result = CliRunner().invoke(pmds, ["--json"])
    assert result.exit_code == 0, result.output
    kinds = {row["kind"] for row in json.loads(result.output)}
    assert {"net", "crypto"} <= kinds


@pytest.mark.parametrize("make_dir", [lambda tmp: tmp, lambda tmp: tmp / "absent"])
def test_cli_dir_without_plugins(tmp_path: Path, make_dir: Callable[[Path], Path]) -> None:
    result = CliRunner().invoke(pmds, ["--dir", str(make_dir(tmp_path))])
    assert result.exit_code == 2
    assert len(result.stderr.splitlines()) == 1
    assert "apt-get install dpdk" in result.stderr
    assert result.stdout == ""


def test_find_pmds_dir_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pmds_module, "_pkg_config_pmdsdir", lambda: None)
    monkeypatch.setattr(pmds_module, "_eal_plugin_path", lambda: None)
    with pytest.raises(DpdkMissing, match="apt-get install dpdk"):
        find_pmds_dir()


@pytest.mark.parametrize("params, expected", [
    ("", {}),
    ("rx_pcap=<string> infinite_rx=<0|1>", {"rx_pcap": "<string>", "infinite_rx": "<0|1>"}),
    ("size=<int> copy=<int> no-rx=0|1", {"size": "<int>", "copy": "<int>", "no-rx": "0|1"}),
    ("iface=<string> ", {"iface": "<string>"}),
    ("phy_mac=<int>infinite_rx=<0|1>", {"phy_mac": "<int>", "infinite_rx": "<0|1>"}),
    ("mode=[0-6] xmit_policy=[l2 | l23 | l34] mac=fixed|xx:xx:xx:xx:xx:xx",
     {"mode": "[0-6]", "xmit_policy": "[l2 | l23 | l34]", "mac": "fixed|xx:xx:xx:xx:xx:xx"}),
])
def test_parse_devargs_params(params: str, expected: dict[str, str]) -> None:
    assert parse_devargs_params(params) == expected
