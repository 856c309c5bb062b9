"""QR scan bench: per-frame decode time and decode rate, our pipeline against the raw decoders.

One run, the same synthetic frames (drivers/camera/synth.py) for every method, methods
interleaved frame by frame so drift and turbo affect them alike. Prints markdown tables.

    PYTHONPATH=. .venv/bin/python bench/scan_bench.py [--rounds 10] [--rate-frames 100]

- "pipeline X" is ``FramePipeline.process`` on the BGR frame the camera delivers: grey
  conversion, decode, largest code, payload text, kind, repeat filter (window 0, so every hit
  goes all the way through).
- The raw decoders get the grey frame (their best case: the conversion is not counted for
  them), so "pipeline / raw" is everything our code adds, conversion included.
- "pipeline auto" is zxing-cpp with the contrast fallback (drivers/camera/decoders.py
  ``ContrastFallback``); "pipeline zxing" is what ``auto`` was before it. The contrast table
  and the "empty, dim" timing set show what the fallback reads and what it costs.
- "half-res first" (bench only) decodes a 2x-downscaled frame and the full frame only if
  that found nothing: it is here to show whether that would pay.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import statistics
import time
from collections.abc import Callable
from importlib import metadata

import cv2
import numpy as np
import zxingcpp
from pyzbar.pyzbar import ZBarSymbol
from pyzbar.pyzbar import decode as pyzbar_decode

from drivers.camera import synth
from drivers.camera.decoders import Decoded, QrDecoder, make_decoder
from drivers.camera.scanner import FramePipeline, to_gray

Method = Callable[[np.ndarray, np.ndarray], list[str]]  # (bgr, grey) -> payload texts
AUTO = "pipeline auto (zxing + contrast fallback)"
BEFORE = "pipeline zxing"  # what auto was before the fallback
CONTRASTS = (1.0, 0.25, 0.1, 0.05, 0.03, 0.02)


class HalfResFirst:
    """Decode at half resolution first; the full frame only if that found nothing."""

    def __init__(self, inner: QrDecoder) -> None:
        self.inner, self.name = inner, f"{inner.name} half-res first"

    def decode(self, gray: np.ndarray) -> list[Decoded]:
        small = cv2.resize(gray, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
        return self.inner.decode(small) or self.inner.decode(gray)


def pipeline(decoder: QrDecoder, grey_in: bool = False) -> Method:
    run = FramePipeline(decoder, repeat_ignore_s=0).process

    def method(bgr: np.ndarray, gray: np.ndarray) -> list[str]:
        code = run(gray if grey_in else bgr).code
        return [code.payload] if code else []

    return method


def raw_zxing(bgr: np.ndarray, gray: np.ndarray) -> list[str]:
    return [b.text for b in zxingcpp.read_barcodes(gray, formats=zxingcpp.BarcodeFormat.QRCode)]


def raw_zxing_bgr(bgr: np.ndarray, gray: np.ndarray) -> list[str]:
    return [b.text for b in zxingcpp.read_barcodes(bgr, formats=zxingcpp.BarcodeFormat.QRCode)]


def raw_pyzbar(bgr: np.ndarray, gray: np.ndarray) -> list[str]:
    return [
        s.data.decode("utf-8", "replace") for s in pyzbar_decode(gray, symbols=[ZBarSymbol.QRCODE])
    ]


_ARUCO = cv2.QRCodeDetectorAruco()


def aruco(bgr: np.ndarray, gray: np.ndarray) -> list[str]:
    ok, texts, _, _ = _ARUCO.detectAndDecodeMulti(gray)
    return [t for t in texts if t] if ok else []


def methods() -> dict[str, Method]:
    return {
        AUTO: pipeline(make_decoder("auto")),
        "pipeline zxing": pipeline(make_decoder("zxing")),
        "pipeline pyzbar": pipeline(make_decoder("pyzbar")),
        "pipeline zxing, grey frame in": pipeline(make_decoder("zxing"), grey_in=True),
        "raw zxingcpp.read_barcodes": raw_zxing,
        "raw zxingcpp.read_barcodes, BGR frame in": raw_zxing_bgr,
        "raw pyzbar.decode": raw_pyzbar,
        "cv2.QRCodeDetectorAruco": aruco,
        "zxing half-res first": pipeline(HalfResFirst(make_decoder("zxing"))),
        "pyzbar half-res first": pipeline(HalfResFirst(make_decoder("pyzbar"))),
    }


# --- frames ------------------------------------------------------------------------------------


def code_frame(
    rng: np.random.Generator, width: int, height: int, seed: int, angle: float | None = None
) -> tuple[np.ndarray, str, tuple[float, float], int]:
    """A member code 1/3 to 1/2 of the frame height, anywhere it fits, tilted up to 10 degrees.

    Returns the frame, the payload, the code's centre and its size in pixels.
    """
    payload = synth.fake_member_code(rng)
    size = int(rng.uniform(height / 3, height / 2))
    margin = size * 0.75
    center = (rng.uniform(margin, width - margin), rng.uniform(margin, height - margin))
    tilt = rng.uniform(-10, 10)
    angle = tilt if angle is None else angle
    frame = synth.camera_frame(payload, width, height, size, center, angle, seed)
    return frame, payload, center, size


# name -> (code angle or None for a random tilt, degradation(frame, code centre, code size))
Degrade = Callable[[np.ndarray, tuple[float, float], int], np.ndarray]
RATE_SETS: dict[str, tuple[float | None, Degrade]] = {
    "clean": (None, lambda f, c, s: f),
    "blur σ1.0": (None, lambda f, c, s: synth.blur(f, 1.0)),
    "low contrast ×0.25": (None, lambda f, c, s: synth.low_contrast(f, 0.25)),
    "glare 0.6": (None, lambda f, c, s: synth.glare(f, 0.6, c, s / 2)),
    "rotation 25°": (25.0, lambda f, c, s: f),
    "blur σ1.5 (hard)": (None, lambda f, c, s: synth.blur(f, 1.5)),
    "low contrast ×0.05 (hard)": (None, lambda f, c, s: synth.low_contrast(f, 0.05)),
    "glare 0.9 (hard)": (None, lambda f, c, s: synth.glare(f, 0.9, c, s / 2)),
    "rotation 45° (hard)": (45.0, lambda f, c, s: f),
}
MILD = ("blur σ1.0", "low contrast ×0.25", "glare 0.6", "rotation 25°")


def timing_sets(count: int) -> dict[str, list[np.ndarray]]:
    rng = np.random.default_rng(1)
    sets = {}
    for width, height in ((640, 480), (1280, 720)):
        sets[f"{width}×{height} code"] = [
            code_frame(rng, width, height, i)[0] for i in range(count)
        ]
        sets[f"{width}×{height} empty"] = [
            synth.camera_frame(None, width, height, seed=100 + i) for i in range(count)
        ]
    # A dim scene without a code: the one case where the fallback decodes a frame twice.
    sets["640×480 empty, dim (×0.25)"] = [
        synth.low_contrast(synth.camera_frame(None, 640, 480, seed=100 + i), 0.25)
        for i in range(count)
    ]
    return sets


# --- measuring ---------------------------------------------------------------------------------


def time_methods(sets: dict[str, list[np.ndarray]], all_methods: dict[str, Method], rounds: int):
    """times[set][method] = per-frame milliseconds.

    Each round runs every method over the set's frames in a block (a kiosk calls the same
    decoder frame after frame, so its code and tables are warm), blocks in a new random order
    each round so drift and cache effects of a neighbour fall on every method alike.
    """
    times: dict[str, dict[str, list[float]]] = {s: {m: [] for m in all_methods} for s in sets}
    order = np.random.default_rng(3)
    for set_name, frames in sets.items():
        grays = [cv2.cvtColor(f, cv2.COLOR_BGR2GRAY) for f in frames]
        gc.disable()
        try:
            for _ in range(rounds):
                for name in order.permutation(list(all_methods)):
                    method = all_methods[name]
                    method(frames[-1], grays[-1])  # warm-up, not timed
                    for frame, gray in zip(frames, grays, strict=True):
                        started = time.perf_counter()
                        method(frame, gray)
                        times[set_name][name].append((time.perf_counter() - started) * 1000)
        finally:
            gc.enable()
    return times


def decode_rates(all_methods: dict[str, Method], count: int) -> dict[str, dict[str, float]]:
    """rates[degradation][method] = share of frames where the method read the exact payload."""
    rates: dict[str, dict[str, float]] = {}
    for name, (angle, degrade) in RATE_SETS.items():
        rng = np.random.default_rng(7)  # the same codes and places in every set
        hits = dict.fromkeys(all_methods, 0)
        for i in range(count):
            frame, payload, center, size = code_frame(rng, 640, 480, i, angle)
            frame = degrade(frame, center, size)
            gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
            for method_name, method in all_methods.items():
                hits[method_name] += payload in method(frame, gray)
        rates[name] = {m: h / count for m, h in hits.items()}
    return rates


def contrast_rates(all_methods: dict[str, Method], count: int) -> dict[float, dict[str, float]]:
    """rates[contrast][method] for auto before and after the fallback, and pyzbar."""
    names = (BEFORE, AUTO, "pipeline pyzbar")
    rates: dict[float, dict[str, float]] = {}
    for factor in CONTRASTS:
        rng = np.random.default_rng(11)
        hits = dict.fromkeys(names, 0)
        for i in range(count):
            frame, payload, _, _ = code_frame(rng, 640, 480, i)
            frame = synth.low_contrast(frame, factor)
            gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
            for name in names:
                hits[name] += payload in all_methods[name](frame, gray)
        rates[factor] = {m: h / count for m, h in hits.items()}
    return rates


def camera_grey_ms(rounds: int) -> dict[str, float]:
    """Per-frame ms from what Picamera2.capture_array hands over (it copies the buffer) to the
    grey frame the decoder gets, for the two formats of drivers/camera/picamera2_source.py."""
    rng = np.random.default_rng(5)
    rgb = rng.integers(0, 256, (480, 640, 3), np.uint8)  # "RGB888": BGR order in memory
    yuv = rng.integers(0, 256, (480 * 3 // 2, 640), np.uint8)  # "YUV420": Y plane, then U, V
    cases = {
        "RGB888 640×480: buffer copy + cv2.cvtColor": lambda: to_gray(np.copy(rgb)),
        "YUV420 640×480: buffer copy + Y plane view": lambda: to_gray(np.copy(yuv)[:480, :640]),
    }
    result = {}
    for name, fn in cases.items():
        fn()
        times = []
        for _ in range(rounds):
            started = time.perf_counter()
            fn()
            times.append((time.perf_counter() - started) * 1000)
        result[name] = statistics.median(times)
    return result


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith(("model name", "Model")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.machine()


def p90(values: list[float]) -> float:
    return statistics.quantiles(values, n=10)[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=10, help="distinct frames per timing set")
    parser.add_argument("--rounds", type=int, default=30, help="passes over each timing set")
    parser.add_argument("--rate-frames", type=int, default=100, help="frames per degraded set")
    args = parser.parse_args()
    all_methods = methods()
    sets = timing_sets(args.frames)
    times = time_methods(sets, all_methods, args.rounds)
    rates = decode_rates(all_methods, args.rate_frames)
    contrasts = contrast_rates(all_methods, args.rate_frames)
    grey_ms = camera_grey_ms(args.rounds * args.frames)

    print(
        f"QR scan bench: {cpu_name()} ({os.cpu_count()} cores), Python "
        f"{platform.python_version()}, OpenCV {cv2.__version__}, zxing-cpp "
        f"{metadata.version('zxing-cpp')}, pyzbar {metadata.version('pyzbar')}; {args.frames} frames × {args.rounds} rounds "
        f"per timing cell, {args.rate_frames} frames per degraded set\n"
    )
    print("Per-frame time, ms, median / p90\n")
    print("| method | " + " | ".join(sets) + " |")
    print("| --- |" + " ---: |" * len(sets))
    for name in all_methods:
        cells = [
            f"{statistics.median(times[s][name]):.2f} / {p90(times[s][name]):.2f}" for s in sets
        ]
        print(f"| {name} | " + " | ".join(cells) + " |")
    comparisons = {  # label -> (ours, raw)
        "pipeline zxing ÷ raw zxing (grey given)": ("pipeline zxing", "raw zxingcpp.read_barcodes"),
        "pipeline zxing, grey in ÷ raw zxing": (
            "pipeline zxing, grey frame in",
            "raw zxingcpp.read_barcodes",
        ),
        "pipeline zxing ÷ raw zxing on the BGR frame": (
            "pipeline zxing",
            "raw zxingcpp.read_barcodes, BGR frame in",
        ),
        "pipeline pyzbar ÷ raw pyzbar (grey given)": ("pipeline pyzbar", "raw pyzbar.decode"),
    }
    ratios = {}
    for label, (ours, raw) in comparisons.items():
        ratios[label] = [
            statistics.median(times[s][ours]) / statistics.median(times[s][raw]) for s in sets
        ]
        print(f"| *{label}* | " + " | ".join(f"*{r:.2f}×*" for r in ratios[label]) + " |")

    print("\nDecode rate at 640×480 (exact payload read), %\n")
    print("| method | " + " | ".join(RATE_SETS) + " |")
    print("| --- |" + " ---: |" * len(RATE_SETS))
    for name in all_methods:
        print(f"| {name} | " + " | ".join(f"{100 * rates[d][name]:.0f}" for d in RATE_SETS) + " |")

    print("\nAuto before (zxing alone) and after the contrast fallback, by contrast, 640×480, %\n")
    print("| method | " + " | ".join(f"×{c:g}" for c in CONTRASTS) + " |")
    print("| --- |" + " ---: |" * len(CONTRASTS))
    for name in (BEFORE, AUTO, "pipeline pyzbar"):
        print(
            f"| {name} | " + " | ".join(f"{100 * contrasts[c][name]:.0f}" for c in CONTRASTS) + " |"
        )

    print("\nGrey frame from a Picamera2 array, ms per frame, median\n")
    for name, ms in grey_ms.items():
        print(f"- {name}: {ms:.3f}")

    auto = AUTO
    ordinary = [s for s in sets if "dim" not in s]
    slowest_640 = max(statistics.median(times[s][auto]) for s in ordinary if s.startswith("640"))
    slowest_640_p90 = max(p90(times[s][auto]) for s in ordinary if s.startswith("640"))
    empty_ratio = max(
        statistics.median(times[s][auto]) / statistics.median(times[s][BEFORE])
        for s in ordinary
        if "empty" in s
    )
    low = min(
        contrasts[c][auto] - max(contrasts[c][BEFORE], contrasts[c]["pipeline pyzbar"])
        for c in CONTRASTS
    )
    mild_rate = min(rates[d][auto] for d in MILD)
    print("\nGoals\n")
    for label, values in ratios.items():
        worst = max(values)
        print(
            f"- pipeline ≤ 1.1×, {label}: worst {worst:.2f}× {'met' if worst <= 1.1 else 'NOT met'}"
        )
    print(
        f"- auto ≤ 2 ms per 640×480 frame: median {slowest_640:.2f} ms, p90 {slowest_640_p90:.2f} ms "
        f"{'met' if slowest_640_p90 <= 2 else 'NOT met'}"
    )
    print(
        f"- auto on empty frames ≤ 1.1× auto before the fallback: worst {empty_ratio:.2f}× "
        f"{'met' if empty_ratio <= 1.1 else 'NOT met'}"
    )
    print(
        f"- auto reads what either decoder reads, at every contrast: worst margin "
        f"{100 * low:+.0f} points {'met' if low >= 0 else 'NOT met'}"
    )
    print(
        f"- auto ≥ 99 % on mildly degraded frames: worst set {100 * mild_rate:.0f} % "
        f"{'met' if mild_rate >= 0.99 else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
