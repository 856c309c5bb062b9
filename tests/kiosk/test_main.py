"""The ``kiosk`` command: config check and the demo's arguments (the tour itself runs in
tests/kiosk/demo/test_tour.py)."""

from __future__ import annotations

import logging
import os
import sys
import types
from pathlib import Path

import pytest

from kiosk.__main__ import build_parser, main

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


def test_demo_takes_port_state_dir_and_tour_and_no_longer_once(tmp_path, capsys):
    args = build_parser().parse_args(["demo", "--port", "0", "--tour", str(tmp_path)])
    assert (args.port, args.tour, args.state_dir) == (0, tmp_path, None)
    assert build_parser().parse_args(["demo"]).port is None  # 8080, or any port for the tour
    with pytest.raises(SystemExit):
        build_parser().parse_args(["demo", "--once"])
    capsys.readouterr()


@pytest.fixture
def fake_rig(monkeypatch):
    """``kiosk demo`` with the rig and the tour replaced: which one runs, and where."""
    import kiosk.demo.main

    class Calls(dict):  # compares as the dict; the rig's timing and the tour's factor aside
        timing = factor = None

    calls = Calls()

    class Rig:
        def __init__(self, folder, port, timing=None) -> None:
            calls["rig"] = (folder, port)
            calls.timing = timing

        def banner(self) -> str:
            return "demo members..."

        def stop(self) -> None:
            calls["stopped"] = True

    def run_tour(rig, out, slow_factor=1.0) -> int:
        calls["tour"] = out
        calls.factor = slow_factor
        return 0

    tour = types.ModuleType("kiosk.demo.tour")
    tour.run_tour = run_tour
    monkeypatch.setattr(kiosk.demo.main, "DemoRig", Rig)
    monkeypatch.setattr(kiosk.demo.main, "run_window", lambda rig: calls.setdefault("window", True))
    monkeypatch.setitem(sys.modules, "kiosk.demo.tour", tour)
    # run_demo prepares the environment for Kivy and escpos: undo it after the test
    for name in ("SDL_VIDEODRIVER", "KIVY_LOG_MODE", "ESCPOS_CAPABILITIES_PICKLE_DIR"):
        monkeypatch.setenv(name, "restored-after-the-test")
    kivy_log = logging.getLogger("kivy")
    monkeypatch.setattr(kivy_log, "filters", list(kivy_log.filters))
    return calls


def test_demo_without_a_display_runs_the_tour_into_the_state_dir(fake_rig, tmp_path, monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    assert main(["demo", "--state-dir", str(tmp_path)]) == 0
    assert fake_rig == {"rig": (tmp_path, 0), "tour": tmp_path / "tour", "stopped": True}
    assert os.environ["SDL_VIDEODRIVER"] == "offscreen"


def test_the_slow_factor_option_overrides_the_environment_for_the_tour_and_the_rig(
    fake_rig, tmp_path, monkeypatch
):
    from kiosk.demo.rig import TOUR_TIMING

    monkeypatch.setenv("KIOSK_SLOW_FACTOR", "2")
    assert main(["demo", "--state-dir", str(tmp_path), "--tour", str(tmp_path / "t")]) == 0
    assert fake_rig.factor == 2 and fake_rig.timing == TOUR_TIMING.scaled(2)
    args = ["demo", "--state-dir", str(tmp_path), "--tour", str(tmp_path / "t")]
    assert main([*args, "--slow-factor", "3"]) == 0
    assert fake_rig.factor == 3 and fake_rig.timing == TOUR_TIMING.scaled(3)


def test_a_bad_slow_factor_stops_the_demo_before_it_starts(fake_rig, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("KIOSK_SLOW_FACTOR", "slow")
    assert main(["demo", "--state-dir", str(tmp_path), "--tour", str(tmp_path / "t")]) == 2
    assert "KIOSK_SLOW_FACTOR='slow'" in capsys.readouterr().err and not fake_rig
    assert main(["demo", "--state-dir", str(tmp_path), "--slow-factor", "0.5"]) == 2
    assert "--slow-factor='0.5'" in capsys.readouterr().err and not fake_rig


def test_demo_with_a_display_opens_the_window_on_port_8080(fake_rig, tmp_path, monkeypatch):
    monkeypatch.setenv("DISPLAY", ":0")
    assert main(["demo", "--state-dir", str(tmp_path)]) == 0
    assert fake_rig == {"rig": (tmp_path, 8080), "window": True, "stopped": True}
    assert os.environ["SDL_VIDEODRIVER"] != "offscreen"


def test_the_demo_keys_act_on_the_rig_and_a_failing_key_keeps_the_demo_running():
    from types import SimpleNamespace

    from kiosk.demo.keys import KeyPanel

    toggles = []
    relay = SimpleNamespace(up=True)
    relay.toggle = lambda: toggles.append(1) or setattr(relay, "up", not relay.up) or relay.up

    def broken_code():
        raise RuntimeError("the server is gone")

    server = SimpleNamespace(staff_badge=lambda: ("badge", "246810"), relay=relay,
                             technician_code=broken_code)  # fmt: skip
    rig = SimpleNamespace(server=server, check_jam=lambda: None, paper_loaded=True,
                          cover_open=False, present=lambda code: None)  # fmt: skip
    panel = KeyPanel(rig, app=None)
    shown: list[str] = []
    panel.set_text = shown.append  # what the strip would show
    assert panel.on_char("N") and panel.last == "N: network cut" and not relay.up
    assert "network CUT" in shown[-1] and "PIN 246810" in shown[-1]
    assert not panel.on_char("Q")  # not a simulator key: the app may use it
    assert panel.on_char("T") and panel.last == "T failed: the server is gone"
    assert toggles == [1]


def test_the_cover_key_opens_the_cover_and_asks_the_maintenance_monitor_at_once():
    from types import SimpleNamespace

    from kiosk.demo.keys import KeyPanel

    asked: list[int] = []
    rig = SimpleNamespace(server=SimpleNamespace(staff_badge=lambda: ("badge", "246810")),
                          cover_open=False)  # fmt: skip
    rig.set_cover = lambda open_: setattr(rig, "cover_open", open_)
    monitor = SimpleNamespace(check_now=lambda: asked.append(1))
    panel = KeyPanel(rig, app=SimpleNamespace(ui=SimpleNamespace(maintenance=monitor)))
    assert panel.action("M")() == "printer cover open" and rig.cover_open and asked == [1]
    assert panel.action("M")() == "printer cover shut" and not rig.cover_open and asked == [1, 1]


def test_demo_without_the_store_servers_extra_says_what_to_install(
    fake_rig, tmp_path, capsys, monkeypatch
):
    import kiosk.demo.main

    class NoServer:
        def __init__(self, *args) -> None:
            raise ModuleNotFoundError("No module named 'uvicorn'", name="uvicorn")

    monkeypatch.setattr(kiosk.demo.main, "DemoRig", NoServer)
    assert main(["demo", "--state-dir", str(tmp_path), "--tour", str(tmp_path / "t")]) == 2
    assert "uvicorn missing): pip install -e '.[server]'" in capsys.readouterr().err
