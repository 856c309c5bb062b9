"""Fixtures shared by the kiosk tests that run the engine against the real store server."""

from __future__ import annotations

import pytest

from .services.rig import KioskSide, ServerSide


@pytest.fixture
def server(tmp_path):
    """The reference store server with demo data on 127.0.0.1, port 0."""
    s = ServerSide(tmp_path / "server")
    yield s
    s.stop()


@pytest.fixture
def kiosk(tmp_path, server):
    """An enrolled kiosk's engine, journal and simulated devices (no UI, no sync worker)."""
    k = KioskSide(tmp_path / "kiosk", server.url, server.enrollment_code(), codes=server.code)
    yield k
    k.close()
