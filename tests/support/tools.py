"""Tests that drive outside tools name them; a missing one skips the test with its name (and,
under CI=true, fails it: see tests/conftest.py). ci/install.sh installs every tool named here."""
import shutil

import pytest


def needs_tools(*tools: str) -> pytest.MarkDecorator:
    missing = [t for t in tools if shutil.which(t) is None]
    return pytest.mark.skipif(bool(missing), reason=f"missing {', '.join(missing)}: run bash ci/install.sh")
