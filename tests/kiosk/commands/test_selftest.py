"""``kiosk selftest`` against the simulators, with faults injected, and its command line."""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

import pytest

from drivers.locker import make_locker
from drivers.printer import make_printer
from drivers.printer.sim_printer import VirtualPrinter
from kiosk.__main__ import main
from kiosk.commands.selftest import format_table, run_selftest
from kiosk.config import load_config
from kiosk.ports import PaperState

EXAMPLE = Path(__file__).parents[3] / "kiosk" / "kiosk.example.toml"


@pytest.fixture
def cfg():
    return load_config(EXAMPLE)


def by_name(checks):
    return {c.name: c for c in checks}


def test_all_simulated_devices_pass_and_the_page_is_printed(cfg, tmp_path):
    printer = VirtualPrinter(tmp_path)
    checks = run_selftest(
        cfg, sim=True, pulse_doors=True, make_printer=functools.partial(make_printer, sim=printer)
    )
    try:
        assert all(c.ok for c in checks), format_table(checks)
        assert "test QR decoded" in by_name(checks)["camera"].detail
        assert {"door 1", "door 2", "door 3"} <= by_name(checks).keys()
        page = printer.wait_for_receipts(1)[0]
        assert "door 3" in page.text and "test QR decoded" in page.text
    finally:
        printer.stop()


def test_paper_out_and_a_jammed_door_fail_with_what_to_do(cfg, tmp_path):
    printer = VirtualPrinter(tmp_path)
    printer.set_paper(PaperState.OUT)

    def jammed_locker(section):
        locker = make_locker(section)
        locker.sim.jam(2)
        return locker

    cfg = dataclasses.replace(cfg, locker=dataclasses.replace(cfg.locker, door_open_timeout_s=1.0))
    checks = by_name(
        run_selftest(
            cfg,
            sim=True,
            pulse_doors=True,
            make_printer=functools.partial(make_printer, sim=printer),
            make_locker=jammed_locker,
        )
    )
    try:
        assert checks["door 1"].ok and checks["door 3"].ok
        assert not checks["door 2"].ok and "check the latch" in checks["door 2"].detail
        assert not checks["printer"].ok and "paper" in checks["printer"].detail
        assert printer.receipts == []
    finally:
        printer.stop()


def test_without_pulsing_only_the_sensors_are_read(cfg):
    checks = by_name(run_selftest(cfg, sim=True, pulse_doors=False))
    assert checks["door 1"].detail == "sensor reads closed"


def test_command_line_exit_codes(tmp_path, capsys):
    assert main(["--config", str(tmp_path / "none.toml"), "selftest", "--sim"]) == 0
    assert "camera" in capsys.readouterr().out
    real = tmp_path / "real.toml"
    real.write_text(
        EXAMPLE.read_text()
        .replace('kind = "sim"                          # real: "serial"', 'kind = "serial"')
        .replace('port = "/dev/ttyUSB0"', f'port = "{tmp_path}/ttyNOPE"')
    )
    assert main(["--config", str(real), "selftest"]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and "ttyNOPE not found" in out


def test_doors_need_confirmation_off_a_terminal(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    assert main(["--config", str(tmp_path / "none.toml"), "selftest", "--sim", "--doors"]) == 2
    assert "--yes" in capsys.readouterr().err
