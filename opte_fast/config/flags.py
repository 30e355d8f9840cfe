"""The run options as click flags: `run_options` adds a flag for every entry of OPTIONS (and
--config, --guest, --uplink) to a command, which receives the loaded `config: Config`."""
from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import click

from .loader import ConfigError, load_config
from .options import OPTIONS, Option
from .values import Bool, Choice, Int, ListenAddress, Number, PortRange, Text, TextList, UnicastV6


def _flag_help(o: Option) -> str:
    shown = o.default
    if isinstance(o.kind, Bool):
        shown = o.flag_name if shown else "--no-" + o.flag_name[2:]
    elif isinstance(o.kind, PortRange):
        shown = f"{shown[0]}-{shown[1]}"
    elif isinstance(shown, float):
        shown = f"{shown:g}"
    default = "" if shown in (None, ()) or "[default" in o.help else f" [default: {shown}]"
    return f"{o.help}; file: [{o.table}] {o.toml_key}{default}"


def run_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Add every run flag to a click command; the command receives `config: Config`.

    A bad file or flag prints one line on stderr and exits 2 before `fn` runs.
    """
    @functools.wraps(fn)
    def wrapper(*args: Any, config_path: str | None, guest: tuple[str, ...], uplink: tuple[str, ...],
                **kwargs: Any) -> Any:
        flags = {o.name: kwargs.pop(o.name) for o in OPTIONS}
        try:
            config = load_config(config_path, {**flags, "guest": guest, "uplink": uplink})
        except ConfigError as e:
            click.echo(f"opte-fast: {e}", err=True)
            raise click.exceptions.Exit(2) from None
        return fn(*args, config=config, **kwargs)

    for o in reversed(OPTIONS):
        if isinstance(o.kind, Bool):
            decl = f"{o.flag_name}/--no-{o.flag_name[2:]}"
            wrapper = click.option(decl, o.name, default=None, help=_flag_help(o))(wrapper)
        else:
            metavar = {Int: "N", Number: "N", UnicastV6: "ADDR", PortRange: "LOW-HIGH", TextList: "ARG",
                       ListenAddress: ListenAddress.metavar, Choice: "|".join(getattr(o.kind, "choices", ())),
                       Text: getattr(o.kind, "metavar", "")}[type(o.kind)]
            multiple = isinstance(o.kind, TextList)
            wrapper = click.option(o.flag_name, o.name, default=None, multiple=multiple, metavar=metavar,
                                   help=_flag_help(o))(wrapper)
    wrapper = click.option("--uplink", "uplink", multiple=True, metavar="[NAME=]DEVARGS",
                           help="an uplink port (repeatable); NAME defaults to iface= or the device name "
                                "and must be the kernel interface routes refer to")(wrapper)
    wrapper = click.option("--guest", "guest", multiple=True, metavar="[NAME=]DEVARGS",
                           help="a guest port (repeatable); NAME defaults to iface= or the device name")(wrapper)
    wrapper = click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None,
                           metavar="FILE", help="TOML config file (see docs/config-example.toml)")(wrapper)
    return wrapper
