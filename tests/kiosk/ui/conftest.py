"""A wired core for UI tests: the real store server on loopback, simulated devices."""

from __future__ import annotations

import pytest

from drivers.printer import make_printer
from drivers.printer.sim_printer import VirtualPrinter
from kiosk.sync.client import StoreServerClient
from kiosk.sync.records import SyncSettings
from kiosk.wiring import build_core
from tests.kiosk.services.rig import KIOSK
from tests.kiosk.test_wiring import config


@pytest.fixture
def ui_server(server):
    """The store server of tests/kiosk/conftest.py, under the name the UI tests use."""
    return server


@pytest.fixture
def ui_core(tmp_path, ui_server):
    cfg = config(tmp_path, ui_server.url)
    enroller = StoreServerClient.from_config(cfg.server)
    enroller.enroll(ui_server.enrollment_code(), KIOSK)
    enroller.close()
    paper = VirtualPrinter(tmp_path / "paper")
    core = build_core(
        cfg,
        printer=make_printer(cfg.printer, sim=paper),
        sync_settings=SyncSettings(heartbeat_s=0.5, refresh_s=0.5, wheel_ids=("LUCKY",)),
    )
    core.paper = paper
    core.start()
    yield core
    core.stop()
    paper.stop()
