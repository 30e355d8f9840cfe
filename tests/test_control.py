"""The control socket, its protocol and the controller, over an in-memory data plane (tests/test_ctl.py
drives every operation through `opte-fast ctl` against the real one)."""
from __future__ import annotations

import io
import ipaddress
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
import warnings

import click
import pytest
from click.testing import CliRunner

from opte_fast.api.client import ControlClient
from opte_fast.api.ctl import COMPOSED, HUMAN, ctl
from opte_fast.api.protocol import OPS, VERSION, ControlError
from opte_fast.api.server import ControlAPI, ControlServer
from opte_fast.config.loader import PortSpec, load_config
from opte_fast.controlplane.controller import Controller, NotFound
from opte_fast.controlplane.daemon import serve
from opte_fast.controlplane.routesync import NoRoutes
from opte_fast.controlplane.state import V2B, DesiredState, Nexthop, Route, Tep, Underlay
from tests.support.fake_dataplane import FakeDataplane
from tests.support.host_table import HostTable
from tests.support.tools import needs_root

A = ipaddress.ip_address
N = ipaddress.ip_network
PORTS = (PortSpec("guest0", "guest", "net_null0"), PortSpec("uplink0", "uplink", "net_null1"),
         PortSpec("uplink1", "uplink", "net_null2"))
UNDERLAY = Underlay(A("fd00:1::1"))
ROUTE = Route(N("fd00:99::/64"), (Nexthop("uplink0", A("fe80::1"), "a8:40:25:00:00:01"),
                                  Nexthop("uplink1", A("fe80::2"), "a8:40:25:00:00:02")))


@pytest.fixture
def sockdir():
    """A short private directory for sockets (sun_path is 108 bytes), removed afterwards."""
    path = tempfile.mkdtemp(prefix="of-ctl-")
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


class Running:
    """A control server over a controller over a fake data plane."""

    def __init__(self, path: str, route_source: str = "none"):
        self.path = path
        self.dataplane = FakeDataplane(PORTS)
        initial = DesiredState(UNDERLAY, v2b=(V2B(N("0.0.0.0/0"), (Tep(A("fd00:99::1")), Tep(A("fd00:99::2")))),),
                               routes=(ROUTE,))
        self.controller = Controller(self.dataplane, initial, ("uplink0", "uplink1"))
        if route_source == "netlink":  # routes follow a host table, here one in memory
            self.controller.follow_host_routes(HostTable(ROUTE))
        self.server = ControlServer(path, ControlAPI(self.controller, self.dataplane, NoRoutes()))
        self.server.start()

    def ctl(self, *args: str) -> CliRunner.Result:
        return CliRunner().invoke(ctl, ["--socket", self.path, *args], catch_exceptions=False)

    def call(self, op: str, **args):
        with ControlClient(self.path) as c:
            return c.call(op, **args)


@pytest.fixture
def running(sockdir):
    r = Running(os.path.join(sockdir, "run", "opte-fast.sock"))
    try:
        yield r
    finally:
        r.server.stop()


# --- the socket ---------------------------------------------------------------------------


def test_socket_is_created_with_its_directory_mode_0600_and_removed_on_stop(sockdir):
    r = Running(os.path.join(sockdir, "new", "dir", "opte-fast.sock"))
    st = os.stat(r.path)
    assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600 and st.st_uid == os.getuid()
    r.server.stop()
    assert not os.path.exists(r.path)


def test_a_stale_socket_file_is_replaced_but_a_live_one_is_refused(running, sockdir):
    with pytest.raises(ControlError, match="another opte-fast is serving it"):
        ControlServer(running.path, running.server.api).start()
    stale = os.path.join(sockdir, "stale.sock")
    s = socket.socket(socket.AF_UNIX)
    s.bind(stale)
    s.close()  # the file stays, nobody listens
    server = ControlServer(stale, running.server.api)
    server.start()
    try:
        with ControlClient(stale) as c:
            assert c.call("routes")
    finally:
        server.stop()


def test_a_file_that_is_not_a_socket_is_refused_and_left_alone(running, sockdir):
    path = os.path.join(sockdir, "notes.txt")
    with open(path, "w") as f:
        f.write("keep me")
    with pytest.raises(ControlError) as refused:
        ControlServer(path, running.server.api).start()
    assert str(refused.value) == (f"cannot create control socket {path}: a file that is not a socket is in the "
                                  "way (remove it, or choose another --control-socket)")
    with open(path) as f:
        assert f.read() == "keep me"


def test_every_op_is_served():
    assert set(OPS) == {"stats", "flows", "routes", "nexthops", "teps", "buckets", "v2b.set", "v2b.clear", "v2b.dump",
                        "v2p.set", "v2p.clear", "v2p.dump", "tep.up", "tep.down", "port.list", "route.set",
                        "route.clear", "trace", "instance", "bfd"}


def test_ctl_has_a_command_for_every_op_and_no_other():
    commands = {f"{name}.{sub}" if isinstance(cmd, click.Group) else name
                for name, cmd in ctl.commands.items() for sub in getattr(cmd, "commands", {None: None})}
    assert commands == set(OPS) | set(COMPOSED)  # and the commands made of several ops
    assert set(HUMAN) <= set(OPS)  # a renamed op would lose its human form silently
    assert {op for ops in COMPOSED.values() for op in ops} <= set(OPS)


# --- bad requests get an error reply and the connection keeps working -------------------------


@pytest.mark.parametrize("line,error", [
    (b"{nope", "malformed JSON: "),
    (b"[1, 2]", 'expected a JSON object like {"v": 1, "op": "stats", "args": {}}'),
    (b'{"v": 2, "op": "stats"}', "unsupported protocol version 2 (this server speaks 1)"),
    (b'{"op": "stats"}', "unsupported protocol version None (this server speaks 1)"),
    (b'{"v": 1, "op": "v2b.add", "args": {}}', "unknown op 'v2b.add' (did you mean 'v2b.dump'?)"),
    (b'{"v": 1, "op": "stats", "args": [], "x": 1}', "unknown request field 'x' (expected v, op, args)"),
    (b'{"v": 1, "op": "stats", "args": []}', 'stats: expected "args" to be an object'),
    (b'{"v": 1, "op": "stats", "args": {"all": true}}', "stats: unknown argument 'all' (expected no arguments)"),
    (b'{"v": 1, "op": "v2b.clear", "args": {}}', "v2b.clear: missing argument 'prefix'"),
    (b'{"v": 1, "op": "v2b.set", "args": {"prefix": "10.0.0.0/33", "teps": ["fd00:99::1"]}}',
     "v2b.set: bad argument 'prefix': expected an IP prefix like 0.0.0.0/0 or fd00::/16, got string '10.0.0.0/33'"),
    (b'{"v": 1, "op": "v2b.set", "args": {"prefix": "10.0.0.0/8", "teps": ["fd00:99::1"], "vni": -1}}',
     "v2b.set: bad argument 'vni': expected an integer from 0 to 16777215, got -1"),
    (b'{"v": 1, "op": "flows", "args": {"limit": 0}}',
     "flows: bad argument 'limit': expected an integer from 1 to 65536, got 0"),
    (b'{"v": 1, "op": "flows", "args": {"limit": 65537}}',
     "flows: bad argument 'limit': expected an integer from 1 to 65536, got 65537"),
    (b'{"v": 1, "op": "tep.down", "args": {"addr": "10.0.0.1"}}',
     "tep.down: bad argument 'addr': expected a unicast IPv6 address like fd00:1::1, got string '10.0.0.1'"),
    (b'{"v": 1, "op": "v2p.clear", "args": {"vni": 7, "ip": "10.0.0.9"}}', "no V2P entry for 10.0.0.9 in VNI 7"),
    (b'{"v": 1, "op": "route.set", "args": {"prefix": "fd00:98::/64", "nexthops": '
     b'[{"uplink": "uplink7", "gateway": "fe80::1", "mac": "a8:40:25:00:00:01"}]}}',
     "route fd00:98::/64: no uplink 'uplink7' (expected one of uplink0, uplink1)"),
    (b'{"v": 1, "op": "route.set", "args": {"prefix": "fd00:98::/64", "nexthops": ['
     b'{"uplink": "uplink0", "gateway": "fe80::1", "mac": "a8:40:25:00:00:01"}, '
     b'{"uplink": "uplink0", "gateway": "fe80::1", "mac": "a8:40:25:00:00:01"}]}}',
     "route fd00:98::/64: duplicate nexthop via fe80::1 dev uplink0"),
    (b'{"v": true, "op": "stats"}', "unsupported protocol version True (this server speaks 1)"),
])
def test_a_bad_request_gets_an_error_and_the_next_request_is_answered(running, line, error):
    with ControlClient(running.path) as c:
        reply = c.request(line)
        assert reply["v"] == VERSION and reply["ok"] is False
        assert reply["error"].startswith(error), reply["error"]
        assert c.request({"v": 1, "op": "routes"})["ok"] is True  # same connection


@pytest.mark.parametrize("op,args,error", [
    ("stats", {"all": True}, "stats: unknown argument 'all' (expected no arguments)"),
    ("v2b.clear", {}, "v2b.clear: missing argument 'prefix'"),
    ("tep.down", {"addr": "10.0.0.1"},
     "tep.down: bad argument 'addr': expected a unicast IPv6 address like fd00:1::1, got string '10.0.0.1'"),
])
def test_the_client_refuses_a_bad_argument_in_the_servers_words_without_sending_it(sockdir, op, args, error):
    # Nothing listens at this path: had the client sent the request, it would say so instead.
    with ControlClient(os.path.join(sockdir, "nobody.sock")) as c, pytest.raises(ControlError) as e:
        c.call(op, **args)
    assert str(e.value) == error



def test_a_failed_commit_is_an_error_and_leaves_the_state(running):
    running.dataplane.refuse_commits = "tables full"
    with pytest.raises(ControlError, match="tables full"):
        running.call("v2b.set", prefix="10.0.0.0/8", teps=["fd00:99::3"])
    running.dataplane.refuse_commits = ""
    assert [e["prefix"] for e in running.call("v2b.dump")] == ["0.0.0.0/0"]


def test_one_client_does_not_block_others(running):
    idle = socket.socket(socket.AF_UNIX)
    idle.connect(running.path)
    idle.sendall(b'{"v": 1, "op": "sta')  # half a request, then silence
    try:
        t0 = time.monotonic()
        assert running.call("routes")
        assert time.monotonic() - t0 < 1
    finally:
        idle.close()


def test_many_clients_at_once(running):
    errors: list[Exception] = []

    def client(i: int) -> None:
        try:
            with ControlClient(running.path) as c:
                for j in range(20):
                    c.call("v2p.set", vni=7, ip=f"10.1.{i}.{j}", underlay="fd00:2::1", mac="a8:40:25:00:00:09")
        except Exception as e:  # reported below
            errors.append(e)
    threads = [threading.Thread(target=client, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(running.call("v2p.dump")) == 160


def test_sixty_four_clients_connecting_at_once_are_all_served(running):
    """Monitoring scripts connect in bursts: none may fail with EAGAIN."""
    barrier = threading.Barrier(64)
    errors: list[Exception] = []

    def client() -> None:
        barrier.wait()
        try:
            with ControlClient(running.path, timeout_s=20) as c:
                c.call("routes")
        except Exception as e:  # reported below
            errors.append(e)
    threads = [threading.Thread(target=client) for _ in range(64)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_a_client_waits_for_room_in_a_full_listen_backlog(sockdir):
    path = os.path.join(sockdir, "busy.sock")
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(path)
    listener.listen(1)
    queued = []
    while True:  # fill the backlog: a non-blocking connect fails with EAGAIN once it is full
        q = socket.socket(socket.AF_UNIX)
        q.setblocking(False)
        try:
            q.connect(path)
        except BlockingIOError:
            q.close()
            break
        queued.append(q)

    def accept_late() -> None:
        time.sleep(0.3)
        listener.settimeout(2)
        for _ in range(len(queued) + 1):
            try:
                conn, _ = listener.accept()
            except TimeoutError:  # the client gave up
                return
            conn.settimeout(0.2)
            try:
                if conn.recv(1 << 16):
                    conn.sendall(b'{"v": 1, "ok": true, "result": "served"}\n')
            except TimeoutError:
                pass
            conn.close()
    server = threading.Thread(target=accept_late)
    server.start()
    try:
        with ControlClient(path, timeout_s=5) as c:
            assert c.call("routes") == "served"
    finally:
        server.join()
        for q in queued:
            q.close()
        listener.close()


# --- credentials -------------------------------------------------------------------------------


def as_nobody(path: str) -> str:
    """Send a stats request as uid/gid 65534 from a forked child; its reply error or exception text."""
    r, w = os.pipe()
    with warnings.catch_warnings():
        # Python 3.12 on warns of any fork in a threaded process: this child takes no lock another
        # thread may hold (it switches user, talks on one socket and exits), and a fork, unlike a
        # new interpreter, needs no executable that uid 65534 may run.
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # child: drop privileges, ask, report, exit without running pytest's cleanup
        try:
            os.close(r)
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            try:
                with ControlClient(path, timeout_s=5) as c:
                    c.call("stats")
                text = "ok"
            except ControlError as e:
                text = str(e)
            os.write(w, text.encode())
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        text = f.read().decode()
    os.waitpid(pid, 0)
    return text


@needs_root("switch uid")
def test_other_users_are_kept_out_by_mode_and_by_credentials(running, sockdir):
    for d in (sockdir, os.path.dirname(running.path)):
        os.chmod(d, 0o755)
    assert as_nobody(running.path) == f"permission denied on {running.path} " \
                                      "(run as root or as the user running opte-fast)"
    os.chmod(running.path, 0o666)  # even if the mode is loosened, SO_PEERCRED decides
    assert as_nobody(running.path) == f"not authorised: uid 65534 may not use this socket (only root or uid {os.getuid()})"
    assert running.call("routes")  # root still served


# --- ctl's own errors (every op's output, from the real data plane: tests/test_ctl.py) --------------


@pytest.mark.parametrize("args, line", [
    (["flows", "--limit", "-1"],
     "opte-fast ctl: Invalid value for '--limit': -1 is not in the range 1<=x<=65536. (see ctl flows --help)"),
    (["flows", "--limit", str(1 << 24)],
     "opte-fast ctl: Invalid value for '--limit': 16777216 is not in the range 1<=x<=65536. (see ctl flows --help)"),
    (["route", "set", "fd00:98::/64"], "opte-fast ctl: Missing option '--nexthop'. (see ctl route set --help)"),
    (["tep", "sideways", "fd00:99::1"], "opte-fast ctl: No such command 'sideways'. (see ctl tep --help)"),
])
def test_a_mistyped_command_is_one_line_and_exit_2(running, args, line):
    result = running.ctl(*args)
    assert (result.exit_code, result.output) == (2, line + "\n")


def test_routes_from_netlink_are_not_set_by_hand(sockdir):
    r = Running(os.path.join(sockdir, "s.sock"), route_source="netlink")
    try:
        out = r.ctl("route", "clear", "fd00:99::/64")
        assert out.exit_code == 2 and out.output == (
            "opte-fast ctl: routes follow the host routing table (route source netlink): change them there, "
            "or run with --route-source static or none\n")
    finally:
        r.server.stop()


def test_no_daemon_is_one_line_and_exit_2(sockdir):
    path = os.path.join(sockdir, "absent.sock")
    result = CliRunner().invoke(ctl, ["--socket", path, "routes"])
    assert result.exit_code == 2 and result.output == f"opte-fast ctl: is opte-fast running? no socket at {path}\n"


# --- the controller on its own ---------------------------------------------------------------------


def test_controller_commits_only_changes():
    dp = FakeDataplane(PORTS)
    c = Controller(dp, DesiredState(UNDERLAY), ("uplink0", "uplink1"))
    assert len(dp.commits) == 1
    assert c.set_routes((ROUTE,)) is True and c.set_routes((ROUTE,)) is False
    assert c.v2p_set(7, A("10.0.0.6"), A("fd00:2::1"), "a8:40:25:f0:00:02") is True
    assert c.v2p_set(7, A("10.0.0.6"), A("fd00:2::1"), "a8:40:25:f0:00:02") is False
    assert len(dp.commits) == 3 and dp.state == c.state
    with pytest.raises(NotFound, match="no route for fd00:1::/64"):
        c.route_clear(N("fd00:1::/64"))
    with pytest.raises(ValueError, match="names a TEP twice"):
        c.v2b_set(N("::/0"), [A("fd00:99::1"), A("fd00:99::1")])


# --- the daemon's life ---------------------------------------------------------------------------------


def test_serve_commits_the_config_serves_the_socket_and_cleans_up(sockdir, tmp_path):
    path = os.path.join(sockdir, "d.sock")
    cfg = tmp_path / "c.toml"
    cfg.write_text('[underlay]\naddr = "fd00:1::1"\n[[uplink]]\nname = "uplink0"\ndevargs = "net_null0"\n'
                   '[[route]]\nprefix = "fd00:99::/64"\n'
                   'nexthops = [{ uplink = "uplink0", gateway = "fe80::1", mac = "a8:40:25:00:00:01" }]\n')
    config = load_config(str(cfg), {"route_source": "static", "control_socket": path, "duration_s": "30"})
    dp = FakeDataplane(config.ports)
    stop = threading.Event()
    code: list[int] = []
    t = threading.Thread(target=lambda: code.append(serve(config, dp, stop)))
    t.start()
    try:
        deadline = time.monotonic() + 5
        while not os.path.exists(path) and time.monotonic() < deadline:
            time.sleep(0.01)
        with ControlClient(path) as c:
            assert c.call("routes") == [{"prefix": "fd00:99::/64", "nexthops": [
                {"uplink": "uplink0", "gateway": "fe80::1", "mac": "a8:40:25:00:00:01", "up": True}]}]
            assert c.call("stats")["route_sync"] == {"source": "static", "routes": 1}
    finally:
        stop.set()
        t.join(10)
    assert code == [0] and not os.path.exists(path)
    assert dp.commits[0] == config.initial_state()


def test_serve_stops_after_its_duration_and_prints_stats(sockdir):
    config = load_config(None, {"underlay_addr": "fd00:1::1", "route_source": "none", "duration_s": 0.35,
                                "stats_interval_s": 0.1, "control_socket": os.path.join(sockdir, "e.sock")})
    dp = FakeDataplane()
    out = io.StringIO()
    t0 = time.monotonic()
    assert serve(config, dp, out=out) == 0
    assert 0.3 < time.monotonic() - t0 < 2
    lines = out.getvalue().splitlines()
    assert len(lines) == 3 and all(line.endswith("idle") for line in lines)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_serve_stops_on_a_signal_and_removes_its_socket(sockdir, sig):
    path = os.path.join(sockdir, "sig.sock")
    program = ("import sys; from opte_fast.config.loader import load_config; from opte_fast.controlplane.daemon import serve; "
               "from support.fake_dataplane import FakeDataplane; "
               f"c = load_config(None, {{'underlay_addr': 'fd00:1::1', 'route_source': 'none', "
               f"'control_socket': {path!r}}}); sys.exit(serve(c, FakeDataplane()))")
    tests = os.path.dirname(os.path.abspath(__file__))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([os.path.dirname(tests), tests])}
    proc = subprocess.Popen([sys.executable, "-c", program], env=env)
    try:
        deadline = time.monotonic() + 10
        while not os.path.exists(path) and time.monotonic() < deadline:
            time.sleep(0.02)
        with ControlClient(path) as c:
            assert c.call("routes") == []
        proc.send_signal(sig)
        assert proc.wait(10) == 0
        assert not os.path.exists(path)
    finally:
        proc.kill()
        proc.wait()


def test_serve_fails_cleanly_when_the_data_plane_refuses_the_config(sockdir, capsys):
    config = load_config(None, {"underlay_addr": "fd00:1::1", "route_source": "none",
                                "control_socket": os.path.join(sockdir, "f.sock")})
    dp = FakeDataplane()
    dp.refuse_commits = "too many V2B entries"
    assert serve(config, dp) == 1
    assert capsys.readouterr().err == "opte-fast: too many V2B entries\n"
    assert os.listdir(sockdir) == []
