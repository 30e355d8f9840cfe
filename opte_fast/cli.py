"""`opte-fast`: a command per job."""
from __future__ import annotations

import os
import sys
import threading

import click

from .api.ctl import ctl
from .config.flags import run_options
from .config.loader import Config
from .controlplane import events
from .tools.bench import bench
from .tools.demo import demo
from .tools.pmds import pmds


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(package_name="opte-fast")
def cli() -> None:
    """opte-fast: a DPDK fast path carrying a VPC's guest traffic over Geneve/IPv6 to
    boundary services, one path per flow, exact failover when a switch goes away."""


@cli.command()
@run_options
def run(config: Config) -> None:
    """Start the data plane and serve until --duration-s ends or SIGINT/SIGTERM. A stop takes at
    most 10 s; past that, or on a second signal, it is forced (runtime files still removed)."""
    from .controlplane.daemon import STOP_TIMEOUT_S, handle_signals
    from .controlplane.instance import PrefixInUse, claim_file_prefix, release_file_prefix
    from .controlplane.startup import StartFailed
    from .controlplane.startup import run as run_instance

    events.configure(config.options.log_level, config.options.log_format)
    prefix = config.options.file_prefix or f"opte-fast-{os.getpid()}"

    def force() -> None:
        click.echo(f"opte-fast: stop did not finish within {STOP_TIMEOUT_S:g} s or was asked twice; forced", err=True)
        release_file_prefix(prefix)
        os._exit(1)
    # Before the EAL starts: a SIGTERM during start-up stops the instance cleanly, not by default action.
    stop = threading.Event()
    restore = handle_signals(stop, force)
    try:
        with claim_file_prefix(prefix):
            rc = run_instance(config, prefix, stop)
    except (PrefixInUse, StartFailed) as e:
        rc = _fail(str(e))
    finally:
        restore()
    sys.exit(rc)


def _fail(message: str) -> int:
    click.echo(f"opte-fast: {message}", err=True)
    return 2


cli.add_command(bench)
cli.add_command(pmds)
cli.add_command(ctl)
cli.add_command(demo)


def main() -> None:
    """The console script: the data plane is imported only by the commands that run it, so a
    machine without DPDK's libraries still lists PMDs and talks to a socket, and says what to
    install when a command needs the data plane."""
    try:
        cli()
    except ImportError as e:
        if "librte_" not in str(e) and "_dataplane" not in str(e):
            raise
        click.echo(f"opte-fast: the data plane cannot load ({e}); install DPDK's libraries with "
                   "`apt-get install dpdk` and rebuild with `bash ci/install.sh`", err=True)
        sys.exit(2)
