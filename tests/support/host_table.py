"""The host routing table in memory: what route sync answers from the kernel's, for tests."""
from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from opte_fast.controlplane.state import Route

A = ipaddress.IPv6Address
N = ipaddress.IPv6Network


class HostTable:
    """A HostRoutes over a fixed set of routes, with a longest-prefix match."""

    def __init__(self, *routes: Route):
        self.routes = {r.prefix: r for r in routes}

    def routes_for(self, addresses: Iterable[A]) -> tuple[Route, ...]:
        answers = set()
        for address in addresses:
            holding = [p for p in self.routes if address in p]
            if holding:
                answers.add(self.routes[max(holding, key=lambda p: p.prefixlen)])
        return tuple(sorted(answers))

    def route(self, prefix: N) -> Route | None:
        return self.routes.get(prefix)
