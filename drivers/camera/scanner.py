"""The QR scanner: frames from a source, decoded on a worker thread, codes to a callback.

``CameraScanner`` implements ``kiosk.ports.QrScanner``. It owns a ``FrameSource`` (the USB
camera through OpenCV here, a simulator in ``sim.py``) and a ``FramePipeline`` (grey
conversion, decode, largest code, payload text, repeat filter). A camera that is missing or
stops delivering frames makes the health not ok with a detail a technician can act on, and is
reopened with capped exponential backoff; the worker thread never dies of an exception.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from drivers.camera import v4l
from drivers.camera.decoders import QrDecoder, largest
from kiosk.domain.payloads import classify_payload, payload_text
from kiosk.errors import ScannerError
from kiosk.ports import ScannedCode, ScannerHealth

log = logging.getLogger(__name__)

TYPED = "typed"  # ScannedCode.decoder of payloads that did not come from a frame
USB_HINT = "check the USB cable, that scanner.device is the capture node"


class FrameSource(Protocol):
    """Where frames come from: a camera, a video file, a folder of images."""

    name: str  # in messages: "camera 0", "camera /dev/video0", "video file /srv/sim.avi"
    # Optional (USB_HINT when absent): what to check when it stops delivering frames.
    # stalled_hint: str

    def open(self) -> None:
        """Get ready to read; raises ScannerError saying what to check."""
        ...

    def read(self) -> np.ndarray | None:
        """The next frame (BGR or grey uint8), blocking up to a frame period; None if it failed."""
        ...

    def close(self) -> None:
        """Release the device (idempotent)."""
        ...


class CaptureSource:
    """A camera (index or device path) or a video file, read through ``cv2.VideoCapture``.

    A device path may be a stable /dev/v4l/by-id name (drivers/camera/v4l.py); a device node is
    opened through V4L2, a file through whatever backend reads it.
    """

    stalled_hint = USB_HINT

    def __init__(
        self,
        device: int | str,
        width: int | None = None,
        height: int | None = None,
        fps: int | None = None,
        name: str | None = None,
        by_id: Path = v4l.BY_ID,
    ) -> None:
        self.device, self.by_id = device, by_id
        self.width, self.height, self.fps = width, height, fps
        self.name = name or f"camera {device}"
        self._capture: cv2.VideoCapture | None = None

    def open(self) -> None:
        self.close()
        where = "check the USB cable and that the kiosk user is in group video"
        capture = self._capture_for(where)
        if not capture.isOpened():
            capture.release()
            raise ScannerError(f"{self.name} not found: {where}")
        # One buffered frame: a decode slower than the frame rate then sees a fresh frame,
        # not one from seconds ago (V4L2 honours this; files ignore it).
        capture.set(cv2.CAP_PROP_BUFFERSIZE, 1)
        for prop, value in (
            (cv2.CAP_PROP_FRAME_WIDTH, self.width),
            (cv2.CAP_PROP_FRAME_HEIGHT, self.height),
            (cv2.CAP_PROP_FPS, self.fps),
        ):
            if value is not None:
                capture.set(prop, value)
        if self.width and self.height:
            got = (
                int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)),
                int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)),
            )
            if got != (self.width, self.height):
                log.warning(
                    "%s delivers %dx%d, not the configured %dx%d: set scanner.width/height "
                    "to a mode the camera supports (v4l2-ctl --list-formats-ext)",
                    self.name,
                    *got,
                    self.width,
                    self.height,
                )
        self._capture = capture
        if isinstance(self.device, str) and v4l.resolved(self.device) != self.device:
            log.info("%s opened (%s)", self.name, v4l.resolved(self.device))
        else:
            log.info("%s opened", self.name)

    def _capture_for(self, where: str) -> cv2.VideoCapture:
        """The capture for an index, a device path (by V4L2) or a file; a missing path says what
        /dev/v4l/by-id has."""
        if isinstance(self.device, int):
            return cv2.VideoCapture(self.device)
        if not os.path.exists(self.device):
            raise ScannerError(
                f"{self.name} not found: {where}, and scanner.device in the config "
                f"({v4l.what_exists(self.by_id)})"
            )
        if not os.access(self.device, os.R_OK):
            raise ScannerError(
                f"{self.name}: permission denied: add the kiosk user to group video (usermod -aG video)"
            )
        if v4l.is_capture_device(self.device):  # a camera node or its by-id symlink
            return cv2.VideoCapture(self.device, cv2.CAP_V4L2)
        return cv2.VideoCapture(self.device)  # a video file (the simulator's, the bench's)

    def read(self) -> np.ndarray | None:
        if self._capture is None:
            return None
        try:
            ok, frame = self._capture.read()
        except cv2.error as exc:
            log.debug("%s read failed: %s", self.name, exc)
            return None
        return frame if ok and frame is not None else None

    def close(self) -> None:
        if self._capture is not None:
            self._capture.release()
            self._capture = None


@dataclass
class Backoff:
    """Capped exponential delays between reopen attempts: initial, 2x, 4x ... max."""

    initial_s: float = 0.5
    max_s: float = 8.0
    _next_s: float = field(init=False, default=0.0)

    def __post_init__(self) -> None:
        self.reset()

    def next_delay(self) -> float:
        delay = self._next_s
        self._next_s = min(self._next_s * 2, self.max_s)
        return delay

    def reset(self) -> None:
        self._next_s = min(self.initial_s, self.max_s)


class RepeatFilter:
    """Lets a payload through at most once per ``window_s`` (per payload, from its delivery)."""

    def __init__(self, window_s: float) -> None:
        self.window_s = window_s
        self._delivered: dict[str, float] = {}

    def admit(self, payload: str, now: float) -> bool:
        last = self._delivered.get(payload)
        if last is not None and now - last < self.window_s:
            return False
        if len(self._delivered) >= 64:  # forget expired payloads so the dict stays small
            self._delivered = {p: t for p, t in self._delivered.items() if now - t < self.window_s}
        self._delivered[payload] = now
        return True


def to_gray(frame: np.ndarray) -> np.ndarray:
    """The frame as 2-D uint8 grey; a grey frame is returned as it is (no copy)."""
    if frame.ndim == 2:
        return frame
    channels = frame.shape[2]
    if channels == 1:
        return frame[:, :, 0]
    return cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY if channels == 3 else cv2.COLOR_BGRA2GRAY)


@dataclass(frozen=True, slots=True)
class FrameResult:
    """What one frame gave: the decode time, and the code to deliver (None: none, or repeat)."""

    decode_ms: float
    code: ScannedCode | None


class FramePipeline:
    """Frame to ScannedCode: grey, decode, largest code, text, kind, repeat filter."""

    def __init__(
        self,
        decoder: QrDecoder,
        repeat_ignore_s: float = 3.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.decoder = decoder
        self.clock = clock
        self.repeats = RepeatFilter(repeat_ignore_s)

    def process(self, frame: np.ndarray) -> FrameResult:
        """Decode one frame (BGR, BGRA or grey); the code is None when absent or a repeat."""
        started = time.perf_counter()
        best = largest(self.decoder.decode(to_gray(frame)))
        decode_ms = (time.perf_counter() - started) * 1000
        if best is None:  # the common case: nothing more to do
            return FrameResult(decode_ms, None)
        text = payload_text(best.payload)
        return FrameResult(decode_ms, self._accept(text, self.decoder.name, decode_ms))

    def typed(self, payload: str) -> ScannedCode | None:
        """A payload that came without a frame (the simulator's button), through the same filter."""
        return self._accept(payload, TYPED, 0.0)

    def _accept(self, text: str, decoder: str, decode_ms: float) -> ScannedCode | None:
        now = self.clock()
        if not self.repeats.admit(text, now):
            return None
        return ScannedCode(text, classify_payload(text), decoder, decode_ms, now)


class CameraScanner:
    """A QrScanner reading ``source`` on a worker thread and decoding with ``decoder``.

    ``max_failed_reads`` consecutive failed reads count as an unplugged camera: the source is
    closed and reopened with ``retry`` backoff. Single failed reads (dropouts) are skipped.
    """

    def __init__(
        self,
        source: FrameSource,
        decoder: QrDecoder,
        *,
        repeat_ignore_s: float = 3.0,
        clock: Callable[[], float] = time.monotonic,
        retry: Backoff | None = None,
        max_failed_reads: int = 5,
    ) -> None:
        self.source = source
        self.pipeline = FramePipeline(decoder, repeat_ignore_s, clock)
        self.clock = clock
        self.retry = retry or Backoff()
        self.max_failed_reads = max_failed_reads
        self._typed: queue.SimpleQueue[str] = queue.SimpleQueue()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._on_code: Callable[[ScannedCode], None] = lambda code: None
        self._lock = threading.Lock()
        self._ok, self._detail = False, "scanner not started"
        self._frames = 0
        self._last_decode_ms: float | None = None
        self._last_frame_at: float | None = None
        self._latest: np.ndarray | None = None  # for the on-screen preview
        self._problem = ""  # the last problem logged, so a lasting one is logged once

    # --- QrScanner ---------------------------------------------------------------------------

    def start(self, on_code: Callable[[ScannedCode], None]) -> None:
        if self._thread is not None:
            raise ScannerError("scanner already started: call stop() before starting it again")
        self._on_code = on_code
        self._stopping.clear()
        self._set_health(False, f"opening {self.source.name}")
        self._thread = threading.Thread(target=self._run, name="qr-scanner", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._stopping.set()
        self._wake.set()
        thread.join(timeout_s)
        if thread.is_alive():  # stuck in a driver call; it releases the source when it returns
            log.error("%s: scanner thread did not stop within %.0f s", self.source.name, timeout_s)
        self._set_health(False, "scanner stopped")
        self._latest = None

    def latest_frame(self) -> np.ndarray | None:
        """The last frame read (the camera's own array, never written to), for a preview."""
        return self._latest

    def health(self) -> ScannerHealth:
        with self._lock:
            return ScannerHealth(
                self._ok, self._detail, self._frames, self._last_decode_ms, self._last_frame_at
            )

    # --- worker ------------------------------------------------------------------------------

    def _submit_typed(self, payload: str) -> None:
        """Queue a payload that did not come from a frame; the worker delivers it."""
        self._typed.put(payload)
        self._wake.set()

    def _set_health(self, ok: bool, detail: str) -> None:
        with self._lock:
            self._ok, self._detail = ok, detail

    def _deliver(self, code: ScannedCode | None) -> None:
        if code is None:
            return
        log.info("scanned %s code (%s, %.1f ms)", code.kind.value, code.decoder, code.decode_ms)
        try:
            self._on_code(code)
        except Exception:  # the caller's bug must not stop the camera
            log.exception("on_code callback failed for a %s code", code.kind.value)

    def _wait(self, seconds: float) -> None:
        """Sleep up to ``seconds``; woken early by stop() or a typed payload."""
        self._wake.wait(seconds)
        self._wake.clear()

    def _back_off(self, detail: str) -> None:
        self.source.close()
        self._latest = None  # a preview goes blank rather than show a stale picture
        delay = self.retry.next_delay()
        self._set_health(False, f"{detail}; retrying in {delay:.3g} s")
        # A camera missing for hours would log every few seconds: warn once per problem.
        level = logging.DEBUG if detail == self._problem else logging.WARNING
        log.log(level, "%s; retrying in %.3g s", detail, delay)
        self._problem = detail
        self._wait(delay)

    def _run(self) -> None:
        opened = False
        failed_reads = 0
        try:
            while not self._stopping.is_set():
                try:
                    while not self._typed.empty():
                        self._deliver(self.pipeline.typed(self._typed.get_nowait()))
                    if not opened:
                        try:
                            self.source.open()
                        except ScannerError as exc:
                            self._back_off(str(exc))
                            continue
                        opened, failed_reads = True, 0
                        self.retry.reset()
                        self._set_health(True, "ok")
                        if self._problem:
                            log.warning("%s is back: scanning again", self.source.name)
                            self._problem = ""
                    frame = self.source.read()
                    if frame is None:
                        failed_reads += 1
                        if failed_reads >= self.max_failed_reads:
                            opened = False
                            hint = getattr(self.source, "stalled_hint", USB_HINT)
                            self._back_off(
                                f"{self.source.name} stopped delivering frames (unplugged?): "
                                f"{hint} and that no other program uses the camera"
                            )
                        continue
                    failed_reads = 0
                    self._latest = frame
                    result = self.pipeline.process(frame)
                    with self._lock:
                        self._frames += 1
                        self._last_decode_ms = result.decode_ms
                        self._last_frame_at = self.clock()
                    self._deliver(result.code)
                except Exception as exc:  # never let the thread die: report, reopen, go on
                    log.exception("%s: scanner error", self.source.name)
                    opened = False
                    self._back_off(
                        f"{self.source.name}: scanner error ({exc!r}): see the kiosk log"
                    )
        finally:
            self.source.close()
