"""Synthetic camera frames holding a QR code, and the ways a real camera degrades them.

Used by the tests, the bench and the simulated camera's fault injection. A frame is a BGR (or
grey) uint8 array like the ones ``cv2.VideoCapture`` delivers: a textured counter top with a
phone-like white card carrying the code, seen through slightly soft optics with sensor noise.
Every function is deterministic for a given seed.
"""

from __future__ import annotations

import cv2
import numpy as np
import segno

QUIET_MODULES = 4  # the quiet zone the QR standard asks for, in modules


def fake_member_code(rng: np.random.Generator, kind: str = "M") -> str:
    """A string shaped like a signed member code (same length and alphabet, no real signature)."""
    subject = f"M{int(rng.integers(1, 10_000)):04d}"
    issued = int(rng.integers(1_700_000_000, 1_900_000_000))
    nonce = "".join(rng.choice(list("0123456789abcdef"), 16))
    alphabet = list("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    signature = "".join(rng.choice(alphabet, 86))
    return f"LK1.{kind}.{subject}.{issued}.{issued + 60}.{nonce}.{signature}"


def qr_modules(payload: str | bytes, error: str = "m") -> np.ndarray:
    """The code's dark modules as a bool matrix, quiet zone included (segno, never Micro QR)."""
    qr = segno.make(payload, error=error, micro=False)
    matrix = np.array([list(row) for row in qr.matrix], dtype=bool)
    return np.pad(matrix, QUIET_MODULES)


def qr_image(payload: str | bytes, module_px: int = 4, error: str = "m") -> np.ndarray:
    """A clean grey image of the code, ``module_px`` pixels per module, quiet zone included."""
    modules = qr_modules(payload, error)
    image = np.where(modules, 0, 255).astype(np.uint8)
    return np.kron(image, np.ones((module_px, module_px), dtype=np.uint8))


def background(width: int, height: int, seed: int = 0) -> np.ndarray:
    """A textured BGR scene without any code: smooth shading plus a few hard-edged objects."""
    rng = np.random.default_rng(seed)
    # Smooth luminance with a slight colour cast, like a lit counter top out of focus.
    shade = rng.normal(130, 30, (max(2, height // 60), max(2, width // 60)))
    shade = cv2.resize(shade.astype(np.float32), (width, height), interpolation=cv2.INTER_CUBIC)
    tint = rng.uniform(0.85, 1.15, 3).astype(np.float32)
    grain = rng.normal(0, 6, (height, width)).astype(np.float32)
    scene = ((shade + grain)[..., None] * tint).clip(0, 255).astype(np.uint8)
    for _ in range(6):  # edges and corners that a finder-pattern search has to reject
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        x0, y0 = int(rng.integers(0, width)), int(rng.integers(0, height))
        x1, y1 = x0 + int(rng.integers(10, width // 3)), y0 + int(rng.integers(4, height // 3))
        cv2.rectangle(scene, (x0, y0), (x1, y1), colour, -1 if rng.random() < 0.6 else 3)
    return scene


def place_code(
    scene: np.ndarray,
    payload: str | bytes,
    code_px: int,
    center: tuple[float, float] | None = None,
    angle_deg: float = 0.0,
) -> np.ndarray:
    """Draw the code, ``code_px`` wide without its quiet zone, on a white card into ``scene``.

    The card (quiet zone plus a margin) is resampled with linear interpolation, as a lens
    would, so module edges are not pixel-aligned.
    """
    out = scene.copy()
    modules = qr_modules(payload)
    module = code_px / (modules.shape[0] - 2 * QUIET_MODULES)  # scene pixels per module
    # Upsample the module grid (nearest) to at least one pixel per scene pixel, then resample
    # it linearly into place: sharp modules, softened only by the resampling.
    fine = max(1, int(np.ceil(module)))
    card = np.pad(np.where(modules, 0, 255).astype(np.uint8), 2, constant_values=255)
    card = np.kron(card, np.ones((fine, fine), np.uint8))
    height, width = out.shape[:2]
    cx, cy = center if center is not None else (width / 2, height / 2)
    affine = cv2.getRotationMatrix2D(
        (card.shape[1] / 2, card.shape[0] / 2), angle_deg, module / fine
    )
    affine[:, 2] += (cx - card.shape[1] / 2, cy - card.shape[0] / 2)
    code = cv2.warpAffine(card, affine, (width, height), flags=cv2.INTER_LINEAR)
    solid = np.full(card.shape, 255, np.uint8)
    alpha = cv2.warpAffine(solid, affine, (width, height), flags=cv2.INTER_LINEAR) / 255.0
    if out.ndim == 3:
        code, alpha = code[..., None], alpha[..., None]
    return (out * (1 - alpha) + code * alpha).clip(0, 255).astype(np.uint8)


def camera_frame(
    payload: str | bytes | None,
    width: int = 640,
    height: int = 480,
    code_px: int = 200,
    center: tuple[float, float] | None = None,
    angle_deg: float = 0.0,
    seed: int = 0,
) -> np.ndarray:
    """A realistic BGR frame: textured scene, the code (if any), soft optics and sensor noise."""
    frame = background(width, height, seed)
    if payload is not None:
        frame = place_code(frame, payload, code_px, center, angle_deg)
    frame = blur(frame, 0.7)
    return noise(frame, 2.5, seed + 1)


# --- degradations ------------------------------------------------------------------------------


def blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur (defocus, motion-free), ``sigma`` in pixels; 0 returns the image."""
    if sigma <= 0:
        return image
    return cv2.GaussianBlur(image, (0, 0), sigma)


def noise(image: np.ndarray, sigma: float, seed: int = 0) -> np.ndarray:
    """Add Gaussian sensor noise of ``sigma`` grey levels."""
    if sigma <= 0:
        return image
    rng = np.random.default_rng(seed)
    noisy = image.astype(np.int16) + rng.normal(0, sigma, image.shape).astype(np.int16)
    return noisy.clip(0, 255).astype(np.uint8)


def low_contrast(image: np.ndarray, factor: float, mid: float = 128.0) -> np.ndarray:
    """Squeeze grey levels towards ``mid``: factor 0.2 leaves a fifth of the contrast."""
    squeezed = mid + (image.astype(np.float32) - mid) * factor
    return squeezed.clip(0, 255).astype(np.uint8)


def glare(
    image: np.ndarray,
    strength: float,
    center: tuple[float, float] | None = None,
    radius: float | None = None,
) -> np.ndarray:
    """A bright Gaussian blob (a ceiling light on a phone screen); strength 1 adds up to white."""
    height, width = image.shape[:2]
    cx, cy = center if center is not None else (width / 2, height / 2)
    radius = radius if radius is not None else min(width, height) / 4
    ys, xs = np.ogrid[:height, :width]
    blob = np.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * radius**2)) * 255 * strength
    blob = blob.astype(np.float32)
    if image.ndim == 3:
        blob = blob[..., None]
    return (image + blob).clip(0, 255).astype(np.uint8)


def perspective(image: np.ndarray, strength: float, seed: int = 0) -> np.ndarray:
    """Warp as if seen at an angle: each corner moves by up to ``strength`` of the frame size."""
    if strength <= 0:
        return image
    rng = np.random.default_rng(seed)
    height, width = image.shape[:2]
    src = np.float32([[0, 0], [width, 0], [width, height], [0, height]])
    jitter = rng.uniform(0, strength, (4, 2)) * (width, height)
    inward = np.float32([[1, 1], [-1, 1], [-1, -1], [1, -1]])  # corners move into the frame
    dst = (src + jitter * inward).astype(np.float32)
    matrix = cv2.getPerspectiveTransform(src, dst)
    return cv2.warpPerspective(image, matrix, (width, height), borderMode=cv2.BORDER_REPLICATE)


def rotate(image: np.ndarray, angle_deg: float) -> np.ndarray:
    """Rotate the whole frame about its centre (a tilted phone), edges replicated."""
    height, width = image.shape[:2]
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), angle_deg, 1.0)
    return cv2.warpAffine(image, matrix, (width, height), borderMode=cv2.BORDER_REPLICATE)
