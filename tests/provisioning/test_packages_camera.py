"""A kiosk with a CSI camera (scanner.kind = "picamera2") gets apt's python3-picamera2 from the
packages step; any other kiosk does not."""

from __future__ import annotations

import pytest

from kiosk.config import parse_config
from provisioning import cli
from provisioning.packages import KIOSK_PACKAGES, PICAMERA2_PACKAGE, packages_for

ANSWERS = """
[kiosk]
id = "store1-k1"
[server]
url = "http://127.0.0.1:9"
[scanner]
kind = "{kind}"
[printer]
kind = "sim"
[locker]
kind = "sim"
[[locker.compartments]]
number = 1
relay_pin = 5
sensor_pin = 6
"""


def config(kind: str):
    data = {
        "kiosk": {"id": "k1"},
        "server": {"url": "https://store.example.com"},
        "scanner": {"kind": kind},
        "locker": {"compartments": [{"number": 1, "relay_pin": 5, "sensor_pin": 6}]},
    }
    return parse_config(data, "test")


@pytest.mark.parametrize("kind", ["camera", "sim"])
def test_usb_and_simulated_cameras_need_only_the_kiosk_packages(kind):
    assert packages_for(config(kind)) == KIOSK_PACKAGES


def test_a_csi_camera_adds_picamera2():
    assert packages_for(config("picamera2")) == (*KIOSK_PACKAGES, PICAMERA2_PACKAGE)


@pytest.mark.parametrize("kind", ["picamera2", "camera"])
def test_the_packages_step_of_a_run_names_picamera2_only_for_a_csi_camera(tmp_path, capsys, kind):
    answers = tmp_path / "answers.toml"
    answers.write_text(ANSWERS.format(kind=kind))
    root = tmp_path / "image"
    cli.main(["--root", str(root), "--answers", str(answers), "--dry-run", "--skip", "selftest"])
    line = next(row for row in capsys.readouterr().out.splitlines() if row.startswith("packages"))
    assert ("python3-picamera2" in line) == (kind == "picamera2"), line
