"""The `opte-fast` command as a user runs it: life cycle, bad input, a pcap run byte for byte."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from scapy.all import IP, UDP, Ether, Raw, raw, rdpcap, wrpcap
from scapy.contrib.geneve import GENEVE

from opte_fast.controlplane.dataplane import DataplaneError, eal_args, eal_init
from opte_fast.controlplane.instance import lock_path
from tests.support.cli import OPTE_FAST, sled_toml


def run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([*OPTE_FAST, *args], capture_output=True, text=True, timeout=timeout)


def runtime_dir(prefix: str) -> Path:
    return Path("/var/run/dpdk") / prefix


def test_a_second_eal_start_in_one_process_raises(eal):
    with pytest.raises(DataplaneError, match="already initialised"):
        eal_init(eal_args([1], file_prefix="oft-second"))
    assert not runtime_dir("oft-second").exists()


def test_run_help_lists_the_tuning_flags():
    out = run("run", "--help").stdout
    for flag in ("--lcores", "--burst", "--rx-desc", "--tx-desc", "--mbufs", "--hugepages / --no-hugepages",
                 "--file-prefix", "--duration-s", "--flow-capacity", "--rebalance-idle-ms", "--route-source"):
        assert flag in out


@pytest.mark.parametrize("args, says", [
    (["--burst", "0"], "--burst"),
    (["--buckets", "1000"], "--buckets"),
    (["--rebalance", "sometimes"], "--rebalance"),
    (["--underlay-addr", "10.0.0.1"], "--underlay-addr"),
])
def test_bad_flag_values_give_one_line_and_exit_2(tmp_path, args, says):
    cfg = tmp_path / "c.toml"
    cfg.write_text(sled_toml("net_null0", {"uplink0": "net_null1,no-rx=1"}, static_routes=True))
    prefix = f"oft-badflag-{os.getpid()}"
    p = run("run", "--config", str(cfg), "--file-prefix", prefix, *args)
    assert p.returncode == 2
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and says in lines[0], p.stderr
    assert not runtime_dir(prefix).exists()


def test_bad_devargs_give_a_clear_error_exit_2_and_leave_nothing(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text(sled_toml("net_nosuchdriver0", {"uplink0": "net_null1,no-rx=1"}, static_routes=True))
    prefix = f"oft-baddev-{os.getpid()}"
    p = run("run", "--config", str(cfg), "--file-prefix", prefix, "--duration-s", "1")
    assert p.returncode == 2
    last = p.stderr.strip().splitlines()[-1]
    assert last.startswith("opte-fast: port guest0: DPDK cannot probe 'net_nosuchdriver0'"), p.stderr
    assert not runtime_dir(prefix).exists()
    assert subprocess.run(["pgrep", "-f", prefix], capture_output=True).returncode == 1


@pytest.mark.parametrize("args, says", [
    (["--lcores", str(os.cpu_count() + 5)],
     ["DPDK EAL initialisation failed: ", f"core {os.cpu_count() + 5} unavailable",
      "; EAL arguments come from --lcores, --memory-mb and --eal-arg"]),
    (["--uplink", "uplink0=net_bogus0"],
     ["port uplink0: DPDK cannot probe 'net_bogus0'", '(failed to parse device "net_bogus0")']),
    (["--flow-capacity", str(1 << 24)],
     ["cannot allocate a flow table of 16777216 entries: out of EAL memory "
      "(raise --memory-mb or lower --flow-capacity)"]),
], ids=["lcore-absent", "driver-absent", "flow-table-too-big"])
def test_what_dpdk_refuses_at_start_is_one_line_and_exit_2(tmp_path, args, says):
    """DPDK prints its own reasons over many lines (EAL's usage is 100): one line says the cause."""
    cfg = tmp_path / "c.toml"
    cfg.write_text(sled_toml("net_null0", {"uplink0": "net_null1,no-rx=1"}, static_routes=True))
    prefix = f"oft-refused-{os.getpid()}"
    p = run("run", "--config", str(cfg), "--file-prefix", prefix, "--duration-s", "1", *args)
    assert (p.returncode, p.stdout) == (2, "")
    assert p.stderr.startswith("opte-fast: ") and p.stderr.count("\n") == 1, p.stderr
    assert all(fragment in p.stderr for fragment in says), p.stderr
    assert not runtime_dir(prefix).exists()


def test_pcap_in_geneve_out_frame_for_frame(tmp_path):
    n = 200
    frames = [Ether(src="02:00:00:00:00:01", dst="a8:40:25:ff:00:01") / IP(src="10.0.0.2", dst=f"198.51.100.{i % 250}")
              / UDP(sport=1000 + i, dport=53) / Raw(i.to_bytes(4, "big")) for i in range(n)]
    rx, tx = tmp_path / "guest.pcap", tmp_path / "uplink.pcap"
    wrpcap(str(rx), frames)
    cfg = tmp_path / "c.toml"
    cfg.write_text(sled_toml(f"net_pcap0,rx_pcap={rx}", {"uplink0": f"net_pcap1,tx_pcap={tx}"}, static_routes=True))
    prefix = f"oft-pcap-{os.getpid()}"
    p = run("run", "--config", str(cfg), "--file-prefix", prefix, "--duration-s", "2",
            "--control-socket", str(tmp_path / "ctl.sock"))
    assert p.returncode == 0, p.stderr
    out = rdpcap(str(tx))
    assert len(out) == n
    for sent, got in zip(frames, out):
        inner = got[GENEVE].payload
        assert got[GENEVE].vni == 99
        assert raw(inner)[6:] == raw(sent)[6:] and inner.dst == "a8:40:25:77:77:77"
    assert not runtime_dir(prefix).exists()


def test_without_the_data_plane_a_command_that_needs_it_says_what_to_install():
    # The extension cannot be imported (as when DPDK's libraries are missing): one line, exit 2.
    code = "import sys; sys.modules['opte_fast._dataplane'] = None; from opte_fast.cli import main; main()"
    p = subprocess.run([sys.executable, "-c", code, "run", "--underlay-addr", "fd00::1", "--no-exception-path"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 2
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "apt-get install dpdk" in lines[0], p.stderr
    listed = subprocess.run([sys.executable, "-c", code, "pmds", "--kind", "net"], capture_output=True, text=True,
                            timeout=60)
    assert listed.returncode == 0 and "net_null" in listed.stdout


# --- one instance per file prefix, and a stop that always ends -----------------------------------


def start(tmp_path: Path, prefix: str, *args: str) -> subprocess.Popen:
    cfg = tmp_path / f"{prefix}.toml"
    cfg.write_text(sled_toml("net_null0,no-rx=1", {"uplink0": "net_null1,no-rx=1"}, static_routes=True))
    return subprocess.Popen([*OPTE_FAST, "run", "--config", str(cfg), "--file-prefix", prefix, *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(condition, timeout: float = 30, interval: float = 0.001) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return False


def test_a_second_instance_with_the_same_file_prefix_is_refused_and_harms_nothing(tmp_path):
    prefix = f"oft-twice-{os.getpid()}"
    sock = tmp_path / "first.sock"
    first = start(tmp_path, prefix, "--control-socket", str(sock))
    try:
        assert wait_for(sock.exists), first.stderr
        second = run("run", "--config", str(tmp_path / f"{prefix}.toml"), "--file-prefix", prefix,
                     "--control-socket", str(tmp_path / "second.sock"), "--duration-s", "1")
        assert second.returncode == 2
        assert second.stderr.splitlines() == [
            f"opte-fast: another opte-fast (pid {first.pid}) runs with --file-prefix {prefix}; "
            "stop it, or give this one another --file-prefix"]
        assert runtime_dir(prefix).exists() and first.poll() is None
        assert subprocess.run([*OPTE_FAST, "ctl", "--socket", str(sock), "stats"], capture_output=True).returncode == 0
    finally:
        first.send_signal(signal.SIGTERM)
        assert first.wait(30) == 0
    assert not runtime_dir(prefix).exists() and not lock_path(prefix).exists()


def test_sigterm_while_starting_stops_cleanly_and_leaves_nothing(tmp_path):
    prefix = f"oft-early-{os.getpid()}"
    # a large flow table keeps the start-up busy after the EAL has made its runtime directory
    proc = start(tmp_path, prefix, "--flow-capacity", "4194304", "--memory-mb", "1536",
                 "--control-socket", str(tmp_path / "early.sock"))
    try:
        assert wait_for(runtime_dir(prefix).exists)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0, proc.stderr.read()
    finally:
        proc.kill()
    assert not (tmp_path / "early.sock").exists(), "it served although stopped while starting"
    assert not runtime_dir(prefix).exists() and not lock_path(prefix).exists()


@pytest.mark.parametrize("second_signal", [False, True], ids=["stop-timeout", "second-signal"])
def test_a_stop_that_hangs_is_forced(second_signal):
    # A process whose stop never finishes: the watchdog (or the second signal) must end it.
    timeout_s = 20.0 if second_signal else 1.0
    program = ("import os, signal, threading, time; from opte_fast.controlplane.daemon import handle_signals; "
               f"stop = threading.Event(); handle_signals(stop, lambda: os._exit(7), stop_timeout_s={timeout_s}); "
               "os.kill(os.getpid(), signal.SIGTERM); stop.wait(); "
               f"{'os.kill(os.getpid(), signal.SIGINT); ' if second_signal else ''}"
               "[time.sleep(0.01) for _ in range(3000)]")
    t0 = time.monotonic()
    p = subprocess.run([sys.executable, "-c", program], timeout=30)
    assert p.returncode == 7
    assert time.monotonic() - t0 < (timeout_s if second_signal else 10)


def test_what_a_killed_instance_left_is_swept_by_the_next_start(tmp_path):
    prefix = f"oft-killed-{os.getpid()}"
    sock = tmp_path / "killed.sock"
    killed = start(tmp_path, prefix, "--control-socket", str(sock))
    assert wait_for(sock.exists)
    killed.kill()
    killed.wait(30)
    assert lock_path(prefix).exists() and runtime_dir(prefix).exists()  # nobody could remove them
    p = run("run", "--config", str(tmp_path / f"{prefix}.toml"), "--file-prefix", f"{prefix}-next",
            "--control-socket", str(tmp_path / "next.sock"), "--duration-s", "0.5")
    assert p.returncode == 0, p.stderr
    assert not lock_path(prefix).exists() and not runtime_dir(prefix).exists()
