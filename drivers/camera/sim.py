"""The simulated camera: the real scanner pipeline fed from files instead of a USB camera.

``[scanner] kind = "sim"`` gives a ``SimScanner``: a ``CameraScanner`` whose frame source is a
``SimCamera``. Only the frames are simulated; grey conversion, decoding, the repeat filter,
health and recovery are the same code the kiosk runs with a camera. Scenes come from a video
file (read through ``cv2.VideoCapture``, like a camera), a folder of images, or in-memory
frames, and loop. ``SimCamera`` adds what a real camera does wrong: noise, blur, a
perspective view, dropped frames, and being unplugged and plugged back in. ``present()``
delivers a typed payload, the demo's "present member code" button.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from drivers.camera import synth
from drivers.camera.decoders import QrDecoder
from drivers.camera.scanner import CameraScanner, CaptureSource, FrameSource
from kiosk.config import ScannerSection
from kiosk.errors import ScannerError

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")


class StillFrames:
    """In-memory frames, returned in turn and looping; ``frames`` may be replaced at any time."""

    def __init__(self, frames: Sequence[np.ndarray], name: str = "sim frames") -> None:
        self.frames = list(frames)
        self.name = name
        self._index = 0

    def open(self) -> None:
        if not self.frames:
            raise ScannerError(f"{self.name}: no frames to show")
        self._index = 0

    def read(self) -> np.ndarray | None:
        frames = self.frames
        if not frames:
            return None
        frame = frames[self._index % len(frames)]
        self._index += 1
        return frame

    def close(self) -> None:
        pass


class ImageFolder(StillFrames):
    """Every image in a folder (sorted by name), loaded at open, looping."""

    def __init__(self, folder: Path) -> None:
        super().__init__([], f"sim image folder {folder}")
        self.folder = folder

    def open(self) -> None:
        if not self.folder.is_dir():
            raise ScannerError(
                f"{self.name} not found: set scanner.sim_source to a video file or image folder"
            )
        paths = sorted(p for p in self.folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        frames = [f for f in (cv2.imread(str(p)) for p in paths) if f is not None]
        if not frames:
            raise ScannerError(
                f"{self.name} holds no readable images ({', '.join(IMAGE_SUFFIXES)}): "
                "add some or point scanner.sim_source at a video file"
            )
        self.frames = frames
        super().open()


class VideoFile:
    """A video file through the real ``cv2.VideoCapture`` path, rewound at its end."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.name = f"sim video file {path}"
        self._capture = CaptureSource(str(path), name=self.name)

    def open(self) -> None:
        if not self.path.is_file():
            raise ScannerError(
                f"{self.name} not found: set scanner.sim_source to a video file or image folder"
            )
        try:
            self._capture.open()
        except ScannerError:
            raise ScannerError(
                f"{self.name} cannot be read by OpenCV: use an MJPG .avi (cv2.VideoWriter)"
            ) from None

    def read(self) -> np.ndarray | None:
        frame = self._capture.read()
        if frame is None:  # end of the file: start again, as a camera never runs out
            self._capture.open()
            frame = self._capture.read()
        return frame

    def close(self) -> None:
        self._capture.close()


@dataclass(frozen=True)
class SimFaults:
    """Camera faults to inject; the defaults are a perfect camera."""

    noise_sigma: float = 0.0  # sensor noise, grey levels
    blur_sigma: float = 0.0  # defocus, pixels
    perspective: float = 0.0  # corner shift as a fraction of the frame (0.1: a steep angle)
    dropout_rate: float = 0.0  # share of reads that fail (0..1)


class SimCamera:
    """A FrameSource wrapping a scene source with faults, unplugging and frame pacing.

    ``fps`` paces reads like a camera (None: as fast as they are asked for). ``sleep`` and
    ``clock`` are injectable so callers can pace without real waiting.
    """

    def __init__(
        self,
        scene: FrameSource,
        *,
        fps: float | None = None,
        faults: SimFaults | None = None,
        plugged: bool = True,
        seed: int = 0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.scene = scene
        self.name = f"camera (simulated: {scene.name})"
        self.fps = fps
        self.faults = faults or SimFaults()
        self.seed = seed
        self._rng = np.random.default_rng(seed)
        self._plugged = threading.Event()
        if plugged:
            self._plugged.set()
        self._clock, self._sleep = clock, sleep
        self._next_at: float | None = None
        self.reads = 0
        self.opens = 0

    def unplug(self) -> None:
        """Reads fail and open() fails until replug(), like a pulled USB cable."""
        self._plugged.clear()
        log.info("%s unplugged", self.name)

    def replug(self) -> None:
        self._plugged.set()
        log.info("%s plugged back in", self.name)

    @property
    def plugged(self) -> bool:
        return self._plugged.is_set()

    def open(self) -> None:
        if not self._plugged.is_set():
            raise ScannerError(
                f"{self.name} not found: check the USB cable and that the kiosk user is in "
                "group video"
            )
        self.scene.open()
        self.opens += 1
        self._next_at = None

    def read(self) -> np.ndarray | None:
        self._pace()
        self.reads += 1
        if not self._plugged.is_set():
            return None
        faults = self.faults
        if faults.dropout_rate > 0 and self._rng.random() < faults.dropout_rate:
            return None
        frame = self.scene.read()
        if frame is None:
            return None
        if faults.perspective > 0:  # a fixed viewing angle: the same warp every frame
            frame = synth.perspective(frame, faults.perspective, self.seed)
        frame = synth.blur(frame, faults.blur_sigma)
        return synth.noise(frame, faults.noise_sigma, int(self._rng.integers(1 << 31)))

    def close(self) -> None:
        self.scene.close()

    def _pace(self) -> None:
        if not self.fps:
            return
        now = self._clock()
        if self._next_at is not None and self._next_at > now:
            self._sleep(self._next_at - now)
            now = self._next_at
        self._next_at = now + 1 / self.fps


class SimScanner(CameraScanner):
    """The CameraScanner on a SimCamera, plus the demo's typed payloads."""

    def __init__(self, camera: SimCamera, decoder: QrDecoder, **kwargs) -> None:
        super().__init__(camera, decoder, **kwargs)
        self.camera = camera

    def present(self, payload: str) -> None:
        """Deliver ``payload`` as if scanned (decoder "typed"), through the repeat filter."""
        self._submit_typed(payload)


def scene_for(cfg: ScannerSection) -> FrameSource:
    """The scene named by ``scanner.sim_source``: video file, image folder, or an empty counter."""
    source = cfg.sim_source
    if source is None:
        return StillFrames([synth.camera_frame(None, cfg.width, cfg.height)], "sim empty scene")
    if source.is_dir():
        return ImageFolder(source)
    return VideoFile(source)  # a missing path is reported by open(), through the health
