"""QR decoders behind one small interface: zxing-cpp (fast, the Pi's choice) and pyzbar (zbar).

A decoder takes a grey uint8 frame and returns every QR code it found, as raw payload bytes
plus where the code is, so the scanner can pick the largest (nearest) one. Turning bytes into
text is the domain's job (``kiosk.domain.payloads.payload_text``). The decoder libraries are
imported when a decoder is made, so a missing one is a ScannerError saying what to install,
not an ImportError at start-up.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from ctypes import c_void_p, cast
from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np

from kiosk.errors import ScannerError

log = logging.getLogger(__name__)

DECODER_CHOICES = ("auto", "pyzbar", "zxing")
# ``auto`` stretches a frame whose darkest and brightest pixels are fewer grey levels apart than
# this (a code in dim light or behind a dirty window) when the decoder found nothing in it; a
# frame flatter than FLAT_LEVELS (a covered lens) holds nothing to find.
LOW_CONTRAST_LEVELS = 64
FLAT_LEVELS = 4


@dataclass(frozen=True, slots=True)
class Decoded:
    """One code found in a frame: its raw payload and where it is (pixels)."""

    payload: bytes
    box: tuple[int, int, int, int]  # x, y, width, height of the axis-aligned bounding box
    area: float  # area of the code's outline (its four corners), in square pixels


class QrDecoder(Protocol):
    """Finds QR codes in a grey frame."""

    name: str  # reported in ScannedCode.decoder

    def decode(self, gray: np.ndarray) -> list[Decoded]:
        """Every QR code in ``gray`` (2-D uint8); an empty list when there is none."""
        ...


def _outline(points: Sequence[tuple[float, float]]) -> tuple[tuple[int, int, int, int], float]:
    """Bounding box and (shoelace) area of a code's corner polygon."""
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    box = (int(min(xs)), int(min(ys)), int(max(xs) - min(xs)), int(max(ys) - min(ys)))
    twice = sum(
        xs[i] * ys[(i + 1) % len(xs)] - xs[(i + 1) % len(xs)] * ys[i] for i in range(len(xs))
    )
    area = abs(twice) / 2 if len(points) >= 3 else float(box[2] * box[3])
    return box, area


def largest(found: Iterable[Decoded]) -> Decoded | None:
    """The code with the largest outline (the one held nearest the camera), or None."""
    return max(found, key=lambda d: d.area, default=None)


class ZxingDecoder:
    """zxing-cpp: 10-20x faster than zbar (bench/scan_bench.py) and more tolerant of blur.

    zbar copes better with very low contrast; ``auto`` still prefers zxing-cpp for speed.
    """

    name = "zxing"

    def __init__(self) -> None:
        try:
            import zxingcpp
        except ImportError:
            raise ScannerError(
                'scanner.decoder = "zxing" but zxing-cpp is not installed: install the [pi] '
                "extra (pip install 'loyalty-kiosk[pi]') or set scanner.decoder = \"auto\""
            ) from None
        self._read = zxingcpp.read_barcodes
        self._format = zxingcpp.BarcodeFormat.QRCode

    def decode(self, gray: np.ndarray) -> list[Decoded]:
        found = []
        for barcode in self._read(gray, formats=self._format):
            pos = barcode.position
            corners = [
                (p.x, p.y) for p in (pos.top_left, pos.top_right, pos.bottom_right, pos.bottom_left)
            ]
            box, area = _outline(corners)
            found.append(Decoded(bytes(barcode.bytes), box, area))
        return found


# zbar >= 0.23 (Debian 12 and Raspberry Pi OS bookworm ship 0.23.92) has ZBAR_CFG_BINARY,
# which pyzbar 0.1.9 does not know: without it zbar guesses a text encoding and re-encodes the
# payload as UTF-8, so GB18030 bytes and even short UTF-8 Chinese came back as mojibake.
_ZBAR_CFG_BINARY = 4


class PyzbarDecoder:
    """zbar through pyzbar, with binary mode on so payload bytes arrive as they were encoded.

    This is ``pyzbar.decode(gray, symbols=[ZBarSymbol.QRCODE])`` with one more scanner
    setting, which pyzbar's ``decode`` has no argument for.
    """

    name = "pyzbar"

    def __init__(self) -> None:
        try:
            from pyzbar import pyzbar, wrapper
        except ImportError as exc:  # pyzbar raises ImportError when libzbar.so is missing
            raise ScannerError(
                f"the zbar QR decoder cannot load ({exc}): install it with "
                "'apt-get install libzbar0' and pip install pyzbar"
            ) from None
        self._pyzbar = pyzbar
        self._zbar = wrapper
        self._binary = True
        with pyzbar._image_scanner() as scanner:
            if wrapper.zbar_image_scanner_set_config(
                scanner, pyzbar.ZBarSymbol.QRCODE, _ZBAR_CFG_BINARY, 1
            ):
                self._binary = False
                log.warning(
                    "libzbar is older than 0.23: QR payloads are re-encoded by zbar; "
                    "non-UTF-8 payloads may read wrongly (install libzbar0 >= 0.23 or zxing-cpp)"
                )

    def decode(self, gray: np.ndarray) -> list[Decoded]:
        pz, zbar = self._pyzbar, self._zbar
        height, width = gray.shape[:2]
        pixels = np.ascontiguousarray(gray, dtype=np.uint8).tobytes()
        with pz._image_scanner() as scanner:
            # Symbology ZBAR_NONE addresses every symbology: all off, then only QR on.
            zbar.zbar_image_scanner_set_config(
                scanner, pz.ZBarSymbol.NONE, zbar.ZBarConfig.CFG_ENABLE, 0
            )
            zbar.zbar_image_scanner_set_config(
                scanner, pz.ZBarSymbol.QRCODE, zbar.ZBarConfig.CFG_ENABLE, 1
            )
            if self._binary:
                zbar.zbar_image_scanner_set_config(
                    scanner, pz.ZBarSymbol.QRCODE, _ZBAR_CFG_BINARY, 1
                )
            with pz._image() as image:
                zbar.zbar_image_set_format(image, pz._FOURCC["L800"])
                zbar.zbar_image_set_size(image, width, height)
                zbar.zbar_image_set_data(image, cast(pixels, c_void_p), len(pixels), None)
                if zbar.zbar_scan_image(scanner, image) < 0:
                    raise ScannerError(f"zbar rejected a {width}x{height} frame as unsupported")
                symbols = list(pz._decode_symbols(pz._symbols_for_image(image)))
        found = []
        for symbol in symbols:
            box, area = _outline([(p.x, p.y) for p in symbol.polygon])
            found.append(Decoded(symbol.data, box, area))
        return found


class ContrastFallback:
    """A decoder, and on a low-contrast frame where it found nothing, again on it stretched.

    zxing-cpp reads none of the codes at x0.05 contrast that zbar reads all of
    (bench/scan_bench.py); stretched to the full grey range, zxing-cpp reads them too. An
    ordinary frame without a code costs one ``cv2.minMaxLoc`` more (microseconds).
    """

    def __init__(self, inner: QrDecoder) -> None:
        self.inner = inner
        self.name = inner.name

    def decode(self, gray: np.ndarray) -> list[Decoded]:
        found = self.inner.decode(gray)
        if found:
            return found
        low, high, _, _ = cv2.minMaxLoc(gray)
        span = high - low
        if not FLAT_LEVELS <= span < LOW_CONTRAST_LEVELS:
            return found
        stretched = cv2.convertScaleAbs(gray, alpha=255 / span, beta=-low * 255 / span)
        return self.inner.decode(stretched)


def make_decoder(choice: str) -> QrDecoder:
    """The decoder named by ``scanner.decoder``: auto takes zxing-cpp if it imports, else zbar,
    and stretches low-contrast frames it found nothing in (``ContrastFallback``)."""
    if choice == "zxing":
        return ZxingDecoder()
    if choice == "pyzbar":
        return PyzbarDecoder()
    if choice != "auto":
        raise ScannerError(
            f"scanner.decoder = {choice!r}: must be one of {', '.join(DECODER_CHOICES)}"
        )
    try:
        return ContrastFallback(ZxingDecoder())
    except ScannerError:
        log.info("zxing-cpp not installed: decoding QR codes with zbar (slower)")
    try:
        return ContrastFallback(PyzbarDecoder())
    except ScannerError as exc:
        raise ScannerError(
            "no QR decoder available: install the [pi] extra (zxing-cpp), or libzbar0 "
            f"for pyzbar ({exc})"
        ) from None
