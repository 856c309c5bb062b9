"""The scanner: pipeline, repeat filter, worker thread, recovery, and the simulator.

Threaded tests run the real CameraScanner on a SimCamera (only the frames are simulated) and
wait for events with a generous timeout, which bounds a failure and asserts no timing.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from drivers.camera import CameraScanner, SimScanner, make_scanner, synth
from drivers.camera.decoders import make_decoder
from drivers.camera.scanner import Backoff, CaptureSource, FramePipeline, RepeatFilter
from drivers.camera.sim import ImageFolder, SimCamera, SimFaults, StillFrames, VideoFile
from kiosk.config import ScannerSection
from kiosk.errors import ScannerError
from kiosk.ports import PayloadKind, ScannedCode

WAIT_S = 10.0  # upper bound for a thread to get somewhere; never a measured timing
MEMBER = "LK1.M.M0001.1700000000.1700000060.0123456789abcdef.sig"
STAFF = "LK1.S.staff-01.1700000000.1700000060.0123456789abcdef.sig"
EMPTY = synth.camera_frame(None, seed=9)


def frame_of(payload: str, seed: int = 0) -> np.ndarray:
    return synth.camera_frame(payload, code_px=200, seed=seed)


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Codes:
    """The on_code callback: collects codes and lets a test wait for them."""

    def __init__(self) -> None:
        self.codes: list[ScannedCode] = []
        self.threads: set[str] = set()
        self._cond = threading.Condition()

    def __call__(self, code: ScannedCode) -> None:
        with self._cond:
            self.codes.append(code)
            self.threads.add(threading.current_thread().name)
            self._cond.notify_all()

    def wait_for(self, count: int = 1) -> list[ScannedCode]:
        with self._cond:
            assert self._cond.wait_for(lambda: len(self.codes) >= count, WAIT_S), self.codes
            return list(self.codes)


def wait_until(predicate, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not predicate():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.005)


def sim_scanner(*frames: np.ndarray, repeat_ignore_s: float = 60.0, **camera_kw) -> SimScanner:
    camera = SimCamera(StillFrames(frames or [EMPTY]), fps=200, **camera_kw)
    return SimScanner(
        camera, make_decoder("auto"), repeat_ignore_s=repeat_ignore_s, retry=Backoff(0.01, 0.05)
    )


@pytest.fixture
def scanners():
    """Scanners made by a test, stopped at its end even when it fails."""
    made: list = []
    yield made
    for scanner in made:
        scanner.stop()


# --- pipeline and its parts, without threads -----------------------------------------------------


def test_the_same_payload_is_ignored_within_the_window_then_delivered_again():
    clock = FakeClock()
    pipeline = FramePipeline(make_decoder("auto"), repeat_ignore_s=3.0, clock=clock)
    member, staff = frame_of(MEMBER), frame_of(STAFF)
    first = pipeline.process(member).code
    assert (first.payload, first.kind, first.at) == (MEMBER, PayloadKind.MEMBER, 100.0)
    assert first.decode_ms > 0
    clock.now = 102.9
    assert pipeline.process(member).code is None
    assert pipeline.process(staff).code.kind is PayloadKind.STAFF  # per payload, not global
    clock.now = 103.0
    assert pipeline.process(member).code.payload == MEMBER


def test_a_zero_window_delivers_every_frame():
    pipeline = FramePipeline(make_decoder("auto"), repeat_ignore_s=0, clock=FakeClock())
    frame = frame_of(MEMBER)
    assert all(pipeline.process(frame).code is not None for _ in range(3))


def test_an_empty_frame_reports_its_decode_time_and_no_code():
    result = FramePipeline(make_decoder("auto")).process(EMPTY)
    assert result.code is None and result.decode_ms > 0


def test_typed_payloads_share_the_repeat_filter():
    clock = FakeClock()
    pipeline = FramePipeline(make_decoder("auto"), repeat_ignore_s=3.0, clock=clock)
    code = pipeline.typed(MEMBER)
    assert (code.decoder, code.kind, code.decode_ms) == ("typed", PayloadKind.MEMBER, 0.0)
    assert pipeline.typed(MEMBER) is None
    assert pipeline.process(frame_of(MEMBER)).code is None


def test_repeat_filter_forgets_only_expired_payloads():
    repeats = RepeatFilter(3.0)
    assert repeats.admit("a", 0.0)
    assert all(repeats.admit(f"p{i}", 1.0) for i in range(200))
    assert not repeats.admit("a", 2.0)
    assert repeats.admit("a", 3.5)


def test_backoff_doubles_up_to_its_cap_and_resets():
    backoff = Backoff(0.5, 8.0)
    assert [backoff.next_delay() for _ in range(7)] == [0.5, 1, 2, 4, 8, 8, 8]
    backoff.reset()
    assert backoff.next_delay() == 0.5


# --- the worker thread -----------------------------------------------------------------------------


def test_codes_arrive_once_from_the_worker_thread(scanners):
    scanner = sim_scanner(EMPTY, frame_of(MEMBER))
    scanners.append(scanner)
    codes = Codes()
    scanner.start(codes)
    (code,) = codes.wait_for(1)
    assert (code.payload, code.kind, code.decoder) == (MEMBER, PayloadKind.MEMBER, "zxing")
    assert code.decode_ms > 0 and codes.threads == {"qr-scanner"}
    wait_until(lambda: scanner.health().frames >= 30, "30 frames")  # the code seen ~15 times
    health = scanner.health()
    assert len(codes.codes) == 1
    assert health.ok and health.detail == "ok" and health.last_decode_ms > 0


def test_camera_missing_at_start_is_reported_then_recovered(scanners):
    scanner = sim_scanner(frame_of(MEMBER), plugged=False)
    scanners.append(scanner)
    codes = Codes()
    scanner.start(codes)
    wait_until(lambda: "not found" in scanner.health().detail, "the missing camera reported")
    health = scanner.health()
    assert not health.ok and "check the USB cable" in health.detail and health.frames == 0
    scanner.camera.replug()
    assert codes.wait_for(1)[0].payload == MEMBER
    assert scanner.health().ok


def test_unplugged_mid_run_is_reported_and_recovered(scanners):
    scanner = sim_scanner(frame_of(MEMBER))
    scanners.append(scanner)
    codes = Codes()
    scanner.start(codes)
    codes.wait_for(1)
    scanner.camera.unplug()
    wait_until(lambda: not scanner.health().ok, "the unplug reported")
    assert "check the USB cable" in scanner.health().detail
    scanner.camera.scene.frames = [frame_of(STAFF)]  # what the camera sees once back
    scanner.camera.replug()
    assert codes.wait_for(2)[1].payload == STAFF
    assert scanner.health().ok and scanner.camera.opens >= 2
    assert scanner.retry.next_delay() == 0.01  # the backoff starts over after a recovery


def test_dropped_frames_are_skipped_without_reopening(scanners):
    scanner = sim_scanner(EMPTY, faults=SimFaults(dropout_rate=0.3), seed=4)
    scanners.append(scanner)
    scanner.start(Codes())
    wait_until(lambda: scanner.health().frames >= 40, "40 frames")
    assert scanner.health().ok and scanner.camera.opens == 1
    assert scanner.camera.reads > scanner.health().frames  # some reads really failed


def test_a_camera_that_opens_but_delivers_nothing_is_reported(scanners):
    scanner = sim_scanner(EMPTY, faults=SimFaults(dropout_rate=1.0))
    scanners.append(scanner)
    scanner.start(Codes())
    wait_until(lambda: "stopped delivering frames" in scanner.health().detail, "the report")
    assert not scanner.health().ok


def test_noise_blur_and_perspective_faults_still_decode(scanners):
    faults = SimFaults(noise_sigma=12, blur_sigma=0.8, perspective=0.08)
    scanner = sim_scanner(frame_of(MEMBER), faults=faults)
    scanners.append(scanner)
    codes = Codes()
    scanner.start(codes)
    assert codes.wait_for(1)[0].payload == MEMBER


def test_heavy_blur_fault_decodes_nothing(scanners):
    scanner = sim_scanner(frame_of(MEMBER), faults=SimFaults(blur_sigma=4.0))
    scanners.append(scanner)
    codes = Codes()
    scanner.start(codes)
    wait_until(lambda: scanner.health().frames >= 20, "20 frames")
    assert codes.codes == []


def test_a_failing_callback_does_not_stop_the_scanner(scanners):
    scanner = sim_scanner()
    scanners.append(scanner)
    codes = Codes()

    def on_code(code: ScannedCode) -> None:
        codes(code)
        raise RuntimeError("bug in the screen")

    scanner.start(on_code)
    scanner.present(MEMBER)
    codes.wait_for(1)
    scanner.present(STAFF)
    assert codes.wait_for(2)[1].payload == STAFF
    assert scanner.health().ok and scanner.camera.opens == 1  # the camera was not reopened


def test_a_decoder_error_is_reported_and_the_thread_carries_on(scanners):
    class FlakyDecoder:
        name = "flaky"
        calls = 0

        def decode(self, gray):
            FlakyDecoder.calls += 1
            if FlakyDecoder.calls == 1:
                raise ValueError("boom")
            return []

    camera = SimCamera(StillFrames([EMPTY]), fps=200)
    scanner = CameraScanner(camera, FlakyDecoder(), retry=Backoff(0.2, 0.2))
    scanners.append(scanner)
    scanner.start(Codes())
    wait_until(lambda: "scanner error" in scanner.health().detail, "the error reported")
    assert "boom" in scanner.health().detail and not scanner.health().ok
    wait_until(lambda: scanner.health().ok and scanner.health().frames >= 3, "recovery")


def test_typed_payloads_are_delivered_as_typed_once_per_window(scanners):
    scanner = make_scanner(ScannerSection(kind="sim", fps=60, repeat_ignore_s=60))
    scanners.append(scanner)
    codes = Codes()
    scanner.present(MEMBER)  # before start: queued
    scanner.start(codes)
    scanner.present(MEMBER)  # a second press within the window
    scanner.present("hello")
    got = codes.wait_for(2)
    assert [(c.payload, c.decoder, c.kind) for c in got] == [
        (MEMBER, "typed", PayloadKind.MEMBER),
        ("hello", "typed", PayloadKind.UNKNOWN),
    ]


def test_start_twice_is_refused_and_stop_is_idempotent(scanners):
    scanner = sim_scanner()
    scanners.append(scanner)
    scanner.start(Codes())
    with pytest.raises(ScannerError, match="already started"):
        scanner.start(Codes())
    scanner.stop()
    scanner.stop()
    assert scanner.health().detail == "scanner stopped"


# --- sim sources through config, and release ---------------------------------------------------


def write_video(path: Path, frames: list[np.ndarray]) -> Path:
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 15, (width, height))
    for frame in frames:
        writer.write(frame)
    writer.release()
    return path


def test_a_video_file_is_read_through_videocapture_and_loops(tmp_path):
    video = VideoFile(write_video(tmp_path / "sim.avi", [EMPTY, frame_of(MEMBER)] * 2))
    video.open()
    frames = [video.read() for _ in range(10)]  # more frames than the file holds
    video.close()
    assert all(f is not None and f.shape == (480, 640, 3) for f in frames)
    pipeline = FramePipeline(make_decoder("auto"), repeat_ignore_s=0)
    assert [pipeline.process(f).code is not None for f in frames[:4]] == [False, True] * 2


def test_sim_scanner_from_config_with_a_video_file(tmp_path, scanners):
    video = write_video(tmp_path / "sim.avi", [EMPTY] * 3 + [frame_of(MEMBER)] * 3)
    scanner = make_scanner(ScannerSection(kind="sim", sim_source=video, fps=60))
    scanners.append(scanner)
    assert isinstance(scanner, SimScanner)
    codes = Codes()
    scanner.start(codes)
    assert codes.wait_for(1)[0].payload == MEMBER


def test_sim_scanner_from_config_with_an_image_folder(tmp_path, scanners):
    for i, frame in enumerate([EMPTY, frame_of(STAFF)]):
        cv2.imwrite(str(tmp_path / f"{i:03d}.png"), frame)
    scanner = make_scanner(ScannerSection(kind="sim", sim_source=tmp_path, fps=60))
    scanners.append(scanner)
    codes = Codes()
    scanner.start(codes)
    assert codes.wait_for(1)[0].kind is PayloadKind.STAFF


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (lambda tmp: ImageFolder(tmp), "no readable images"),
        (lambda tmp: VideoFile(tmp / "missing.avi"), "not found: set scanner.sim_source"),
    ],
    ids=["empty folder", "missing video"],
)
def test_a_bad_sim_source_says_how_to_fix_it(tmp_path, source, message):
    with pytest.raises(ScannerError, match=message):
        source(tmp_path).open()


class Spy:
    """A FrameSource wrapper that records open and close calls."""

    def __init__(self, inner) -> None:
        self.inner, self.name, self.is_open, self.closes = inner, inner.name, False, 0

    def open(self) -> None:
        self.inner.open()
        self.is_open = True

    def read(self):
        return self.inner.read()

    def close(self) -> None:
        self.inner.close()
        self.is_open, self.closes = False, self.closes + 1


def test_stop_joins_the_thread_and_releases_the_capture(tmp_path):
    video = write_video(tmp_path / "sim.avi", [EMPTY] * 3)
    spy = Spy(SimCamera(VideoFile(video), fps=200))
    scanner = CameraScanner(spy, make_decoder("auto"))
    scanner.start(Codes())
    wait_until(lambda: scanner.health().frames >= 5, "5 frames")
    scanner.stop()
    assert not spy.is_open and spy.closes >= 1
    assert "qr-scanner" not in {t.name for t in threading.enumerate()}
    scanner.start(Codes())  # a stopped scanner can start again
    wait_until(lambda: spy.is_open and scanner.health().ok, "the restart")
    scanner.stop()
    assert not spy.is_open


# --- the real camera path ----------------------------------------------------------------------


def test_a_missing_camera_device_says_what_to_check():
    with pytest.raises(ScannerError, match="/dev/video-missing not found: check the USB cable"):
        CaptureSource("/dev/video-missing").open()


def test_a_missing_by_id_path_names_the_cameras_that_are_there(tmp_path):
    by_id = tmp_path / "by-id"
    by_id.mkdir()
    for name in ("usb-046d_C920_AAA-video-index0", "usb-046d_C920_AAA-video-index1"):
        (by_id / name).symlink_to("/dev/null")
    source = CaptureSource(str(by_id / "usb-gone-video-index0"), by_id=by_id)
    with pytest.raises(ScannerError) as caught:
        source.open()
    message = str(caught.value)
    assert "usb-gone-video-index0 not found: check the USB cable" in message
    assert f"{by_id} has: usb-046d_C920_AAA-video-index0, usb-046d_C920_AAA-video-index1" in message


def test_no_by_id_folder_says_no_camera_is_plugged_in(tmp_path):
    source = CaptureSource("/dev/v4l/by-id/usb-x-video-index0", by_id=tmp_path / "missing")
    with pytest.raises(ScannerError, match=r"lists no camera \(none plugged in"):
        source.open()


def test_a_by_id_symlink_is_opened_by_v4l2_and_logged_with_its_node(tmp_path, monkeypatch, caplog):
    link = tmp_path / "usb-046d_C920_AAA-video-index0"
    link.symlink_to("/dev/null")  # a character device, as /dev/video0 is
    opened: list[tuple] = []

    class Capture:  # what cv2.VideoCapture is asked; /dev/null delivers no frames
        def __init__(self, *args) -> None:
            opened.append(args)

        def isOpened(self) -> bool:  # OpenCV's name
            return True

        def set(self, prop, value) -> bool:
            return True

        def get(self, prop) -> float:
            return {cv2.CAP_PROP_FRAME_WIDTH: 640, cv2.CAP_PROP_FRAME_HEIGHT: 480}.get(prop, 0)

        def release(self) -> None:
            pass

    monkeypatch.setattr(cv2, "VideoCapture", Capture)
    caplog.set_level("INFO", logger="drivers.camera.scanner")
    CaptureSource(str(link), 640, 480).open()
    assert opened == [(str(link), cv2.CAP_V4L2)]
    assert f"camera {link} opened (/dev/null)" in caplog.text


def test_a_video_file_path_is_not_opened_as_a_v4l2_device(tmp_path):
    path = tmp_path / "scene.avi"
    write_video(path, [frame_of(MEMBER)])
    link = tmp_path / "link.avi"
    link.symlink_to(path)
    source = CaptureSource(str(link))
    source.open()
    try:
        assert source.read() is not None
    finally:
        source.close()


@pytest.mark.skipif(os.path.exists("/dev/video63"), reason="a camera 63 exists here")
def test_a_missing_camera_index_is_reported_in_health(scanners):
    scanner = make_scanner(ScannerSection(kind="camera", device=63))
    scanners.append(scanner)
    assert isinstance(scanner.source, CaptureSource)
    assert (scanner.source.width, scanner.source.height, scanner.source.fps) == (640, 480, 15)
    scanner.start(Codes())
    wait_until(lambda: "camera 63 not found" in scanner.health().detail, "the report")
    assert "group video" in scanner.health().detail and not scanner.health().ok


@pytest.mark.parametrize(
    "kind",
    [
        "sim",
        pytest.param(
            "camera",
            marks=pytest.mark.skipif(not os.path.exists("/dev/video0"), reason="no camera"),
        ),
    ],
)
def test_contract_start_health_stop(kind, scanners):
    scanner = make_scanner(ScannerSection(kind=kind, device="/dev/video0", fps=30))
    scanners.append(scanner)
    assert not scanner.health().ok
    scanner.start(Codes())
    wait_until(lambda: scanner.health().frames >= 3, "3 frames")
    health = scanner.health()
    assert health.ok and health.last_frame_at is not None and health.last_decode_ms >= 0
    scanner.stop()
    assert not scanner.health().ok
