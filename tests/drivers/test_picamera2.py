"""The CSI camera source (Picamera2) against a stand-in with Picamera2's interface, and against a
real camera module when there is one (skipped otherwise, like the real printer test).

The stand-in follows picamera2/picamera2.py and request.py (raspberrypi/picamera2, main of
2026-05): ``Picamera2(camera_num)`` indexes ``global_camera_info()`` (IndexError with no such
camera), a camera another process holds fails ``__init__`` with RuntimeError, ``configure``
refuses odd sizes with RuntimeError, ``capture_array(name, wait=S)`` returns YUV420 as a
(height * 3 / 2, stride) array (the Y plane first) and RGB888 as (height, width, 3), and a
``wait`` that runs out raises TimeoutError (``concurrent.futures`` future.result).
"""

from __future__ import annotations

import dataclasses
import inspect
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from drivers.camera import CameraScanner, make_scanner, synth
from drivers.camera.decoders import make_decoder
from drivers.camera.picamera2_source import Picamera2Source
from drivers.camera.scanner import Backoff
from kiosk import config
from kiosk.commands.selftest import check_camera
from kiosk.config import ScannerSection, load_config
from kiosk.errors import Picamera2Unavailable, ScannerError

WAIT_S = 10.0  # upper bound for a thread to get somewhere; never a measured timing
MEMBER = "LK1.M.M0042.1700000000.1700000060.0123456789abcdef.sig"
EXAMPLE = Path(config.__file__).parent / "kiosk.example.toml"  # the installed package's
STRIDE_PAD = 64  # libcamera pads YUV420 rows; the source must cut the padding off


class Rig:
    """What the stand-in cameras share: attached modules, a holder, frames, failures."""

    def __init__(self) -> None:
        self.attached = [{"Model": "imx708", "Id": "/base/axi/pcie@120000/rp1/i2c@88000/imx708@1a"}]
        self.busy = False  # another process holds the camera
        self.frames: list[np.ndarray] = [synth.camera_frame(None, seed=3)]
        self.stalled = False  # the ribbon came loose: no frames arrive
        self.opened: list[FakePicamera2] = []


class FakePicamera2:
    """Picamera2's interface, as much of it as the kiosk uses, with its errors and shapes."""

    rig = Rig()

    @staticmethod
    def global_camera_info() -> list[dict]:
        return [dict(info, Num=n) for n, info in enumerate(FakePicamera2.rig.attached)]

    def __init__(self, camera_num=0, verbose_console=None, tuning=None, allocator=None):
        camera_num = self.global_camera_info()[camera_num]["Num"]  # IndexError: no such camera
        if self.rig.busy:
            raise RuntimeError("Camera __init__ sequence did not complete.")
        self.camera_idx = camera_num
        self.is_open, self.started = True, False
        self.camera_config: dict | None = None
        self.controls: dict = {}
        self._next = 0
        self.rig.opened.append(self)

    def create_video_configuration(  # Picamera2's own signature, mutable defaults and all
        self, main={}, lores=None, raw={}, transform=None, colour_space=None, buffer_count=6,  # noqa: B006
        controls={}, display="main", encode="main", queue=True, sensor={}, use_case="video",  # noqa: B006
    ) -> dict:  # fmt: skip
        stream = {"format": "XBGR8888", "size": (1280, 720), "preserve_ar": True} | main
        return {"use_case": use_case, "main": stream, "controls": dict(controls)}

    def configure(self, camera_config=None) -> None:
        if self.started:
            raise RuntimeError("Camera must be stopped before configuring")
        main = dict(camera_config["main"])
        width, height = main["size"]
        if width % 2 or height % 2:
            raise RuntimeError("width and height should be even")
        if main["format"] not in ("YUV420", "RGB888", "BGR888", "XBGR8888", "XRGB8888"):
            raise RuntimeError("Bad format " + main["format"] + " in stream main")
        main["stride"] = width + STRIDE_PAD if main["format"] == "YUV420" else width * 3
        self.camera_config = dict(camera_config, main=main)
        self.controls = dict(camera_config["controls"])

    def stream_configuration(self, name="main") -> dict:
        return self.camera_config[name]

    def start(self, config=None, show_preview=False) -> None:
        if self.camera_config is None:
            raise RuntimeError("Camera has not been configured")
        self.started = True

    def capture_array(self, name="main", wait=None, signal_function=None) -> np.ndarray:
        if not self.started or self.rig.stalled:
            if wait is None or wait is True:
                pytest.fail("capture_array would block for ever without a wait")
            raise TimeoutError()
        frame = self.rig.frames[self._next % len(self.rig.frames)]
        self._next += 1
        stream = self.camera_config[name]
        if stream["format"] == "RGB888":
            return frame.copy()  # BGR order in memory, as OpenCV has it
        grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        height, width = grey.shape
        array = np.full((height * 3 // 2, stream["stride"]), 77, np.uint8)  # U, V and padding
        array[:height, :width] = grey
        return array

    def stop(self) -> None:
        self.started = False

    def close(self) -> None:
        if self.is_open:
            self.stop()
            self.is_open = False


@pytest.fixture
def rig() -> Rig:
    FakePicamera2.rig = Rig()
    return FakePicamera2.rig


def source(**kw) -> Picamera2Source:
    return Picamera2Source(camera_class=FakePicamera2, **kw)


def test_open_asks_for_the_size_format_and_a_fixed_frame_rate(rig):
    cam = source(camera_num=0, width=640, height=480, fps=20)
    cam.open()
    (camera,) = rig.opened
    assert camera.started and camera.camera_idx == 0
    assert camera.camera_config["main"]["size"] == (640, 480)
    assert camera.camera_config["main"]["format"] == "YUV420"
    assert camera.controls == {"FrameDurationLimits": (50_000, 50_000)}
    cam.close()
    assert not camera.is_open and not camera.started


@pytest.mark.parametrize("frame_format", ["YUV420", "RGB888"])
def test_frames_decode_through_the_pipeline(rig, frame_format):
    rig.frames = [synth.camera_frame(MEMBER, code_px=200, seed=4)]
    cam = source(frame_format=frame_format)
    cam.open()
    frame = cam.read()
    if frame_format == "YUV420":  # the Y plane, padding cut off
        assert frame.shape == (480, 640) and not (frame == 77).all(axis=0).any()
    else:
        assert frame.shape == (480, 640, 3)
    scanner = CameraScanner(cam, make_decoder("auto"), repeat_ignore_s=0)
    assert scanner.pipeline.process(frame).code.payload == MEMBER
    cam.close()


def test_a_missing_camera_says_what_libcamera_sees(rig):
    with pytest.raises(ScannerError, match=r"CSI camera 1 not found \(libcamera sees: 0: imx708"):
        source(camera_num=1).open()
    rig.attached = []
    with pytest.raises(ScannerError, match=r"libcamera sees no camera.*ribbon cable"):
        source().open()


def test_a_camera_another_process_holds_is_a_clear_error(rig):
    rig.busy = True
    with pytest.raises(ScannerError, match="another program may be using it"):
        source().open()


def test_a_size_the_camera_refuses_is_reported_and_the_camera_released(rig):
    with pytest.raises(ScannerError, match=r"refused 641x480 .*even numbers"):
        source(width=641).open()
    (camera,) = rig.opened
    assert not camera.is_open


def test_a_stalled_camera_reads_none_within_its_wait(rig):
    cam = source(fps=30)
    cam.open()
    rig.stalled = True
    assert cam.read() is None
    rig.stalled = False
    assert cam.read() is not None
    cam.close()
    assert cam.read() is None  # closed: nothing, no exception


def test_the_scanner_reopens_the_camera_after_it_stalls(rig):
    rig.frames = [synth.camera_frame(MEMBER, code_px=200, seed=5)]
    scanner = CameraScanner(
        source(fps=60), make_decoder("auto"), repeat_ignore_s=0.0, retry=Backoff(0.01, 0.05)
    )
    codes: list[str] = []
    got = threading.Event()
    scanner.start(lambda code: (codes.append(code.payload), got.set()))
    try:
        assert got.wait(WAIT_S) and codes[0] == MEMBER
        rig.stalled = True
        wait_until(lambda: "stopped delivering frames" in scanner.health().detail)
        assert "ribbon cable" in scanner.health().detail and not scanner.health().ok
        assert not rig.opened[0].is_open  # released before the reopen
        got.clear()
        rig.stalled = False
        assert got.wait(WAIT_S) and scanner.health().ok
        assert len(rig.opened) >= 2 and rig.opened[-1].started
    finally:
        scanner.stop()
    assert not any(camera.is_open for camera in rig.opened)


def wait_until(predicate) -> None:
    deadline = time.monotonic() + WAIT_S
    while not predicate():
        assert time.monotonic() < deadline, "gave up waiting"
        time.sleep(0.005)


def test_make_scanner_builds_the_picamera2_kind(rig, monkeypatch):
    monkeypatch.setattr("drivers.camera.picamera2_source.load_picamera2", lambda: FakePicamera2)
    scanner = make_scanner(ScannerSection(kind="picamera2", device=0, width=1280, height=720))
    assert isinstance(scanner.source, Picamera2Source)
    assert (scanner.source.width, scanner.source.height) == (1280, 720)
    with pytest.raises(ScannerError, match="a picamera2 camera is a number"):
        make_scanner(ScannerSection(kind="picamera2", device="/dev/video0"))


def test_without_picamera2_the_error_names_the_apt_package_and_the_flag(monkeypatch):
    monkeypatch.setitem(sys.modules, "picamera2", None)  # makes `import picamera2` fail
    with pytest.raises(Picamera2Unavailable, match=r"python3-picamera2.*--system-site-packages"):
        make_scanner(ScannerSection(kind="picamera2", device=0))


def test_selftest_reads_frames_from_the_csi_camera(rig, monkeypatch):
    cfg = load_config(EXAMPLE)
    cfg = dataclasses.replace(cfg, scanner=ScannerSection(kind="picamera2", device=0, fps=60))
    monkeypatch.setattr("drivers.camera.picamera2_source.load_picamera2", lambda: FakePicamera2)
    check = check_camera(cfg, sim=False)
    assert check.ok and "frames from CSI camera 0" in check.detail
    rig.attached = []
    check = check_camera(cfg, sim=False)
    assert not check.ok and "CSI camera 0 not found" in check.detail


def test_selftest_without_picamera2_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "picamera2", None)
    cfg = load_config(EXAMPLE)
    cfg = dataclasses.replace(cfg, scanner=ScannerSection(kind="picamera2", device=0))
    check = check_camera(cfg, sim=False)
    assert not check.ok and "python3-picamera2" in check.detail


# --- the stand-in against the real Picamera2, and the real camera -----------------------------


def real_picamera2():
    try:
        from picamera2 import Picamera2
    except ImportError:
        pytest.skip("picamera2 not importable (Raspberry Pi OS: apt-get install python3-picamera2)")
    return Picamera2


@pytest.mark.parametrize(
    "method",
    ["__init__", "create_video_configuration", "configure", "start", "capture_array", "stop"],
)
def test_the_stand_in_has_picamera2s_signatures(method):
    real = real_picamera2()
    ours = inspect.signature(getattr(FakePicamera2, method)).parameters
    theirs = inspect.signature(getattr(real, method)).parameters
    assert list(ours)[: len(theirs)] == list(theirs)


def test_a_real_csi_camera_delivers_frames():
    real = real_picamera2()
    if not real.global_camera_info():
        pytest.skip("no camera module attached (libcamera sees none)")
    cam = Picamera2Source(0, 640, 480, 15, camera_class=real)
    cam.open()
    try:
        frames = [cam.read() for _ in range(5)]
    finally:
        cam.close()
    assert all(f is not None and f.shape == (480, 640) and f.dtype == np.uint8 for f in frames)
