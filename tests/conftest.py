"""Suite-wide: long runs marked ``slow`` stay out of plain runs (CI); ``-m slow`` runs them.

``@pytest.mark.needs_tool("sshd", install="apt-get install openssh-server")``: a test that
needs a system tool is skipped, saying how to install it, when the tool is missing; but with
``CI`` set (``CI=true``, as CI services set it) it fails instead, so a CI image that lacks the
tool cannot pass without running the test. Hardware (a real printer or camera) is not a
tool: those tests keep their own skips and skip in CI too.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

# sshd and friends live in sbin, which a non-root PATH lacks; the venv's bin holds
# ansible-playbook when the venv is not activated
_EXTRA_PATH = (str(Path(sys.executable).parent), "/usr/local/sbin", "/usr/sbin", "/sbin")


def in_ci(env: dict[str, str] | None = None) -> bool:
    value = (os.environ if env is None else env).get("CI", "")
    return value.strip().lower() in {"1", "true", "yes"}


def find_tool(name: str) -> str | None:
    """Where the tool is: PATH, the venv's bin, then the sbin folders."""
    path = os.pathsep.join([os.environ.get("PATH", ""), *_EXTRA_PATH])
    return shutil.which(name, path=path)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "needs_tool(name, install=HOW): needs a system tool; skipped without it, "
        "a failure when CI is set",
    )


def pytest_runtest_setup(item: pytest.Item) -> None:
    for mark in item.iter_markers("needs_tool"):
        name = mark.args[0]
        install = mark.kwargs.get("install", "")
        if find_tool(name) is not None:
            continue
        missing = f"{name} not installed" + (f" ({install})" if install else "")
        if in_ci():
            pytest.fail(
                f"{missing}, and CI={os.environ['CI']}: the CI image must have it, "
                "or this test would pass without running",
                pytrace=False,
            )
        pytest.skip(missing)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if "slow" in (config.getoption("markexpr") or ""):
        return
    skip = pytest.mark.skip(reason="a long run (campaign or soak): run it with -m slow")
    for item in items:  # the marker, not a keyword: a test, file or folder named *slow* runs
        if item.get_closest_marker("slow") is not None:
            item.add_marker(skip)
