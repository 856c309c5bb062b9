"""A Raspberry Pi camera module (CSI ribbon) as a FrameSource, through Picamera2 (libcamera).

On Raspberry Pi OS bookworm CSI cameras are libcamera devices that OpenCV's capture does not
open; USB cameras stay on ``CaptureSource``. Picamera2 is apt's ``python3-picamera2`` (it needs
the system's libcamera bindings, so it is not on PyPI for a venv): the kiosk's venv sees it
only when made with ``--system-site-packages`` (``kiosk-provision --system-site-packages``).

Frames are asked for as YUV420: the Y plane is the grey frame the decoder wants, handed over
as a view with no conversion (bench/scan_bench.py measures it against RGB888 + cvtColor).
The calls are Picamera2's own (its manual, "The Picamera2 Library"): ``Picamera2(camera_num)``,
``create_video_configuration(main=..., controls=...)``, ``configure``, ``start``,
``capture_array("main", wait=S)``, ``stop``, ``close``, ``Picamera2.global_camera_info()``.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from kiosk.errors import Picamera2Unavailable, ScannerError

log = logging.getLogger(__name__)

APT_PACKAGE = "python3-picamera2"
FORMATS = ("YUV420", "RGB888")  # RGB888 arrives as BGR pixels (Picamera2's naming)
CHECK = (
    "check the camera's ribbon cable (contacts the right way round, both latches closed), "
    "camera_auto_detect=1 in /boot/firmware/config.txt, and `rpicam-hello --list-cameras`"
)


def load_picamera2() -> Any:
    """The ``Picamera2`` class; missing, a Picamera2Unavailable saying how to get it."""
    try:
        from picamera2 import Picamera2
    except ImportError as exc:
        raise Picamera2Unavailable(
            f'scanner.kind = "picamera2" but Picamera2 cannot be imported ({exc}): install '
            f"it with 'sudo apt-get install {APT_PACKAGE}' (Raspberry Pi OS) and make the "
            "kiosk's venv see it: kiosk-provision --system-site-packages (a venv made with "
            'python3 -m venv --system-site-packages); a USB camera is scanner.kind = "camera"'
        ) from None
    return Picamera2


class Picamera2Source:
    """CSI camera ``camera_num`` (an index into ``Picamera2.global_camera_info()``)."""

    stalled_hint = CHECK

    def __init__(
        self,
        camera_num: int = 0,
        width: int = 640,
        height: int = 480,
        fps: int = 15,
        *,
        frame_format: str = "YUV420",
        camera_class: Any = None,
    ) -> None:
        if frame_format not in FORMATS:
            raise ScannerError(f"frame format {frame_format!r}: must be one of {FORMATS}")
        self.camera_num = camera_num
        self.width, self.height, self.fps = width, height, fps
        self.frame_format = frame_format
        self.name = f"CSI camera {camera_num}"
        self.read_timeout_s = max(1.0, 4 / fps)  # the first frames after start take longest
        self._class = camera_class if camera_class is not None else load_picamera2()
        self._camera: Any = None
        self._size = (width, height)

    def _cameras(self) -> str:
        try:
            found = self._class.global_camera_info()
        except Exception as exc:  # libcamera itself failing says more than "not found"
            return f"libcamera cannot list cameras ({exc!r})"
        if not found:
            return "libcamera sees no camera"
        return "libcamera sees: " + ", ".join(
            f"{n}: {info.get('Model', '?')} ({info.get('Id', '?')})" for n, info in enumerate(found)
        )

    def open(self) -> None:
        self.close()
        try:
            camera = self._class(self.camera_num)
        except IndexError:
            raise ScannerError(f"{self.name} not found ({self._cameras()}): {CHECK}") from None
        except RuntimeError as exc:
            raise ScannerError(
                f"{self.name} cannot be opened ({exc}; {self._cameras()}): another program may "
                "be using it (stop it: only one process can hold a libcamera camera)"
            ) from None
        try:
            self._configure(camera)
        except Exception as exc:
            self._release(camera)
            raise ScannerError(
                f"{self.name} refused {self.width}x{self.height} {self.frame_format} at "
                f"{self.fps} fps ({exc}): set scanner.width/height to a mode the camera offers "
                "(`rpicam-hello --list-cameras`; even numbers)"
            ) from None
        self._camera = camera
        log.info(
            "%s opened: %dx%d %s at %d fps", self.name, *self._size, self.frame_format, self.fps
        )

    def _configure(self, camera: Any) -> None:
        period_us = int(1_000_000 / self.fps)  # min = max: a fixed frame rate
        config = camera.create_video_configuration(
            main={"size": (self.width, self.height), "format": self.frame_format},
            controls={"FrameDurationLimits": (period_us, period_us)},
        )
        camera.configure(config)
        width, height = camera.stream_configuration("main")["size"]  # as libcamera set it
        if (width, height) != (self.width, self.height):
            log.warning(
                "%s delivers %dx%d, not the configured %dx%d",
                self.name,
                width,
                height,
                self.width,
                self.height,
            )
        self._size = (width, height)
        camera.start()

    def read(self) -> np.ndarray | None:
        camera = self._camera
        if camera is None:
            return None
        try:
            array = camera.capture_array("main", wait=self.read_timeout_s)
        except (TimeoutError, RuntimeError) as exc:
            log.debug("%s read failed: %r", self.name, exc)
            return None
        if self.frame_format == "YUV420":
            width, height = self._size
            return array[:height, :width]  # the Y plane, without the stride's padding
        return array

    def close(self) -> None:
        camera, self._camera = self._camera, None
        if camera is not None:
            self._release(camera)

    def _release(self, camera: Any) -> None:
        for step in (camera.stop, camera.close):
            try:
                step()
            except Exception as exc:  # a camera that vanished cannot be stopped cleanly
                log.debug("%s %s failed: %r", self.name, step.__name__, exc)
