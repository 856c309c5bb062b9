"""The ``kiosk`` command: config check and the interim demo."""

from __future__ import annotations

from pathlib import Path

from kiosk.__main__ import main

EXAMPLE = Path(__file__).parents[2] / "kiosk" / "kiosk.example.toml"


def test_check_config_accepts_the_example(capsys):
    assert main(["--config", str(EXAMPLE), "check-config"]) == 0
    assert "OK" in capsys.readouterr().out


def test_check_config_names_the_bad_key(tmp_path, capsys):
    bad = tmp_path / "kiosk.toml"
    bad.write_text(EXAMPLE.read_text().replace("baudrate = 19200", "baudrate = 1234"))
    assert main(["--config", str(bad), "check-config"]) == 2
    err = capsys.readouterr().err
    assert "printer.baudrate" in err and "1234" in err


def test_demo_walks_through_a_redemption(tmp_path, capsys):
    assert main(["demo", "--port", "0", "--once", "--state-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "M0004" in out and "capture: captured" in out and "balance now 1900" in out
    assert (tmp_path / "store.db").exists()
