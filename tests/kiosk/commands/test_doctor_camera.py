"""The doctor's camera line for each scanner kind: USB nodes and their stable by-id names, a
CSI camera's Picamera2, the simulator."""

from __future__ import annotations

from pathlib import Path

import pytest

from kiosk.commands.doctor_base import Level
from kiosk.commands.doctor_camera import camera_check, importable
from kiosk.config import ScannerSection

C920 = "usb-046d_HD_Pro_Webcam_C920_8A1B2C3D-video-index0"


@pytest.fixture
def dev(tmp_path: Path) -> Path:
    by_id = tmp_path / "dev" / "v4l" / "by-id"
    by_id.mkdir(parents=True)
    (tmp_path / "dev" / "video2").touch()
    (by_id / C920).symlink_to("../../video2")
    return tmp_path / "dev"


def test_a_missing_usb_camera_lists_the_stable_names_to_choose_from(dev):
    check = camera_check(ScannerSection(kind="camera", device=0), dev)
    assert check.level is Level.FAIL and check.detail == f"{dev}/video0 not found"
    assert f"{dev}/v4l/by-id has: {C920}" in check.fix and "scanner.device" in check.fix


def test_a_present_index_camera_suggests_its_stable_name(dev):
    check = camera_check(ScannerSection(kind="camera", device=2), dev)
    assert check.level is Level.OK
    assert (
        check.detail
        == f"{dev}/video2 present (stable names for scanner.device: {dev}/v4l/by-id has: {C920})"
    )


def test_a_by_id_device_is_checked_through_its_link(dev):
    path = dev / "v4l" / "by-id" / C920
    check = camera_check(ScannerSection(kind="camera", device=str(path)), dev)
    assert check.level is Level.OK and check.detail == f"{path} present"
    (dev / "video2").unlink()  # the camera is gone: its name dangles
    assert camera_check(ScannerSection(kind="camera", device=str(path)), dev).level is Level.FAIL


def test_no_by_id_folder_keeps_the_plain_advice(tmp_path):
    check = camera_check(ScannerSection(kind="camera", device=0), tmp_path)
    assert check.level is Level.FAIL and "by-id" not in check.fix and "ls " in check.fix


@pytest.mark.parametrize("installed", [True, False])
def test_a_csi_camera_needs_picamera2_importable(dev, installed):
    cfg = ScannerSection(kind="picamera2", device=0)
    check = camera_check(cfg, dev, has_module=lambda name: installed and name == "picamera2")
    if installed:
        assert check.level is Level.OK and "CSI camera 0 through Picamera2" in check.detail
    else:
        assert check.level is Level.FAIL and "cannot import picamera2" in check.detail
        assert "python3-picamera2" in check.fix and "--system-site-packages" in check.fix


def test_importable_reads_the_real_import_path(monkeypatch):
    assert importable("json") and not importable("no_such_module_here")
    monkeypatch.setitem(__import__("sys").modules, "picamera2", None)
    assert not importable("picamera2")


def test_the_simulator_is_information_not_a_problem(dev, tmp_path):
    assert camera_check(ScannerSection(kind="sim"), dev).level is Level.INFO
    missing = ScannerSection(kind="sim", sim_source=tmp_path / "nope.avi")
    assert camera_check(missing, dev).level is Level.FAIL
