"""Suite-wide: long runs marked ``slow`` stay out of plain runs (CI); ``-m slow`` runs them."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if "slow" in (config.getoption("markexpr") or ""):
        return
    skip = pytest.mark.skip(reason="a long run (campaign or soak): run it with -m slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
