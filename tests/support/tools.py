"""Tests that drive outside tools name them, and tests that need root say so; a missing tool or a user
other than root skips the test with the reason (and, under CI=true, fails it: see tests/conftest.py).
ci/install.sh installs every tool named here."""
import os
import shutil

import pytest


def needs_tools(*tools: str) -> pytest.MarkDecorator:
    missing = [t for t in tools if shutil.which(t) is None]
    return pytest.mark.skipif(bool(missing), reason=f"missing {', '.join(missing)}: run bash ci/install.sh")


def needs_root(what: str) -> pytest.MarkDecorator:
    """For a test in which `what` ("taps and namespaces") needs root."""
    return pytest.mark.skipif(os.geteuid() != 0, reason=f"{what}: needs root")
