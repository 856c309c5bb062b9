"""The QR camera: a USB camera (OpenCV), a CSI camera module (Picamera2) or the simulator,
chosen by ``[scanner] kind``.

Only this package (with the other drivers) imports cv2, pyzbar and zxingcpp.
"""

from __future__ import annotations

from drivers.camera.decoders import Decoded, PyzbarDecoder, QrDecoder, ZxingDecoder, make_decoder
from drivers.camera.picamera2_source import Picamera2Source
from drivers.camera.scanner import Backoff, CameraScanner, CaptureSource, FramePipeline, FrameSource
from drivers.camera.sim import SimCamera, SimFaults, SimScanner, scene_for
from kiosk.config import ScannerSection
from kiosk.errors import ScannerError
from kiosk.ports import QrScanner

__all__ = [
    "Backoff",
    "CameraScanner",
    "CaptureSource",
    "Decoded",
    "FramePipeline",
    "FrameSource",
    "Picamera2Source",
    "PyzbarDecoder",
    "QrDecoder",
    "SimCamera",
    "SimFaults",
    "SimScanner",
    "ZxingDecoder",
    "make_decoder",
    "make_scanner",
]


def make_scanner(cfg: ScannerSection) -> QrScanner:
    """The scanner ``cfg`` describes; a missing decoder library (or, for kind picamera2, a
    missing Picamera2: Picamera2Unavailable) is a ScannerError now.

    A missing camera or sim source is not an error here: the scanner starts, reports it in
    ``health()`` and keeps retrying, so the kiosk can show "scanner unavailable" and recover.
    """
    decoder = make_decoder(cfg.decoder)
    if cfg.kind == "sim":
        camera = SimCamera(scene_for(cfg), fps=cfg.fps)
        return SimScanner(camera, decoder, repeat_ignore_s=cfg.repeat_ignore_s)
    source: FrameSource
    if cfg.kind == "picamera2":
        if not isinstance(cfg.device, int):  # kiosk.config refuses it too
            raise ScannerError(f"scanner.device = {cfg.device!r}: a picamera2 camera is a number")
        source = Picamera2Source(cfg.device, cfg.width, cfg.height, cfg.fps)
    else:
        source = CaptureSource(cfg.device, cfg.width, cfg.height, cfg.fps)
    return CameraScanner(source, decoder, repeat_ignore_s=cfg.repeat_ignore_s)
