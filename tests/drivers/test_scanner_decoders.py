"""QR decoders on realistic synthetic frames: what each decodes, what it must not, and payloads.

Every test runs against each decoder (zxing-cpp is skipped only when it is not installed),
through the real decode path: segno code -> camera-like frame -> degradation -> decoder.
"""

from __future__ import annotations

import sys

import cv2
import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from drivers.camera import synth
from drivers.camera.decoders import (
    LOW_CONTRAST_LEVELS,
    ContrastFallback,
    PyzbarDecoder,
    ZxingDecoder,
    largest,
    make_decoder,
)
from drivers.camera.scanner import FramePipeline, to_gray
from kiosk.errors import ScannerError
from kiosk.ports import PayloadKind
from storeserver import codes

try:
    import zxingcpp  # noqa: F401

    HAVE_ZXING = True
except ImportError:
    HAVE_ZXING = False


@pytest.fixture(
    params=[
        "pyzbar",
        pytest.param(
            "zxing", marks=pytest.mark.skipif(not HAVE_ZXING, reason="zxing-cpp not installed")
        ),
    ]
)
def decoder(request):
    return make_decoder(request.param)


def member_code(seed: int) -> str:
    return synth.fake_member_code(np.random.default_rng(seed))


def payloads_in(decoder, frame: np.ndarray) -> list[bytes]:
    return [d.payload for d in decoder.decode(to_gray(frame))]


SEEDS = (1, 2, 3)

MILD = {
    "perspective": lambda f, s: synth.perspective(f, 0.1, s),
    "blur": lambda f, s: synth.blur(f, 1.0),
    "noise": lambda f, s: synth.noise(f, 20, s),
    "low contrast": lambda f, s: synth.low_contrast(f, 0.15),
    "glare": lambda f, s: synth.glare(f, 0.6, radius=100),
    "rotation 25": lambda f, s: synth.rotate(f, 25),
    "rotation 90": lambda f, s: synth.rotate(f, 90),
}

HEAVY = {
    "blur": lambda f, s: synth.blur(f, 3.0),
    "low contrast": lambda f, s: synth.low_contrast(f, 0.02),
    "glare washout": lambda f, s: synth.glare(f, 3.0, radius=150),
    "noise": lambda f, s: synth.noise(f, 150, s),
}


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("size_px", [150, 300])
def test_clean_frame_decodes_exactly(decoder, seed, size_px):
    text = member_code(seed)
    frame = synth.camera_frame(text, code_px=size_px, angle_deg=7 * seed, seed=seed)
    assert payloads_in(decoder, frame) == [text.encode()]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("degrade", MILD.values(), ids=MILD.keys())
def test_mildly_degraded_frame_still_decodes(decoder, degrade, seed):
    text = member_code(seed)
    frame = degrade(synth.camera_frame(text, code_px=200, seed=seed), seed)
    assert payloads_in(decoder, frame) == [text.encode()]


@pytest.mark.parametrize("degrade", HEAVY.values(), ids=HEAVY.keys())
def test_heavily_degraded_frame_does_not_decode(decoder, degrade):
    text = member_code(0)
    clean = synth.camera_frame(text, code_px=200)
    assert payloads_in(decoder, clean) == [text.encode()]  # the code itself is readable
    assert payloads_in(decoder, degrade(clean, 0)) == []


def test_empty_frame_gives_nothing(decoder):
    assert payloads_in(decoder, synth.camera_frame(None, seed=5)) == []


def test_a_real_signed_member_code_decodes(decoder):
    text = codes.issue(Ed25519PrivateKey.generate(), codes.CodeKind.MEMBER, "M0002", 1_700_000_000)
    frame = synth.camera_frame(text, code_px=220, angle_deg=-12)
    assert payloads_in(decoder, frame) == [text.encode()]


def test_position_and_area_describe_the_code(decoder):
    frame = synth.camera_frame(member_code(1), code_px=200, center=(220, 260))
    (found,) = decoder.decode(to_gray(frame))
    x, y, width, height = found.box
    assert x < 220 < x + width and y < 260 < y + height
    assert 0.8 * 200**2 < found.area < 1.2 * 200**2


@pytest.mark.parametrize("near_on_left", [True, False])
def test_two_codes_in_a_frame_the_largest_wins(decoder, near_on_left):
    near, far = "LK1.M.NEAR", "LK1.M.FAR"
    centers = [(180, 240), (480, 240)] if near_on_left else [(480, 240), (180, 240)]
    frame = synth.background(640, 480, seed=3)
    frame = synth.place_code(frame, near, 220, centers[0])
    frame = synth.place_code(frame, far, 130, centers[1])
    frame = synth.noise(synth.blur(frame, 0.7), 2.5)
    assert sorted(payloads_in(decoder, frame)) == sorted([far.encode(), near.encode()])
    assert largest(decoder.decode(to_gray(frame))).payload == near.encode()
    result = FramePipeline(decoder, repeat_ignore_s=0).process(frame)
    assert result.code.payload == near


def test_a_non_member_code_is_unknown_and_delivered(decoder):
    frame = synth.camera_frame("https://example.com/promo?id=42", code_px=200)
    code = FramePipeline(decoder).process(frame).code
    assert code.payload == "https://example.com/promo?id=42"
    assert code.kind is PayloadKind.UNKNOWN
    assert code.decoder == decoder.name


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        ("会员积分".encode("gb18030"), "会员积分"),  # GB18030 without ECI: common on Chinese POS
        ("会员".encode(), "会员"),  # short UTF-8 that zbar re-encodes when not in binary mode
        (b"\xff\xfe\x00\x80garbage\x81", None),
        (bytes(range(256))[:150], None),
    ],
    ids=["gb18030", "short utf-8", "garbage", "all bytes"],
)
def test_payload_bytes_arrive_raw_and_become_text(decoder, raw, text):
    frame = synth.camera_frame(raw, code_px=240)
    assert payloads_in(decoder, frame) == [raw]
    code = FramePipeline(decoder).process(frame).code
    assert isinstance(code.payload, str) and code.kind is PayloadKind.UNKNOWN
    if text is not None:
        assert code.payload == text


@pytest.mark.parametrize(
    "convert",
    [
        lambda f: f,
        lambda f: cv2.cvtColor(f, cv2.COLOR_BGR2GRAY),
        lambda f: cv2.cvtColor(f, cv2.COLOR_BGR2BGRA),
        lambda f: cv2.cvtColor(f, cv2.COLOR_BGR2GRAY)[..., None],
    ],
    ids=["bgr", "grey", "bgra", "grey 1 channel"],
)
def test_every_frame_layout_decodes_the_same(decoder, convert):
    text = member_code(4)
    frame = convert(synth.camera_frame(text, code_px=200))
    assert FramePipeline(decoder).process(frame).code.payload == text


# --- choosing a decoder ------------------------------------------------------------------------


@pytest.mark.skipif(not HAVE_ZXING, reason="zxing-cpp not installed")
def test_auto_prefers_zxing_when_installed():
    auto = make_decoder("auto")
    assert isinstance(auto, ContrastFallback) and isinstance(auto.inner, ZxingDecoder)
    assert auto.name == "zxing"


def test_auto_falls_back_to_pyzbar_without_zxing(monkeypatch):
    monkeypatch.setitem(sys.modules, "zxingcpp", None)  # makes `import zxingcpp` fail
    auto = make_decoder("auto")
    assert isinstance(auto, ContrastFallback) and isinstance(auto.inner, PyzbarDecoder)


# --- auto reads what either decoder reads: low contrast ----------------------------------------


@pytest.mark.skipif(not HAVE_ZXING, reason="zxing-cpp not installed")
@pytest.mark.parametrize("seed", SEEDS)
def test_auto_reads_a_x005_contrast_frame_that_zxing_alone_does_not(seed):
    text = member_code(seed)
    frame = synth.low_contrast(synth.camera_frame(text, code_px=200, seed=seed), 0.05)
    assert payloads_in(make_decoder("zxing"), frame) == []  # why the fallback exists
    assert payloads_in(make_decoder("pyzbar"), frame) == [text.encode()]
    assert payloads_in(make_decoder("auto"), frame) == [text.encode()]
    code = FramePipeline(make_decoder("auto")).process(frame).code
    assert code.payload == text and code.decoder == "zxing"


class Counting:
    """A decoder that finds nothing and keeps the frames it was given."""

    name = "counting"

    def __init__(self) -> None:
        self.frames: list[np.ndarray] = []

    def decode(self, gray: np.ndarray) -> list:
        self.frames.append(gray)
        return []


@pytest.mark.parametrize(
    ("frame", "passes"),
    [
        (synth.camera_frame(None, seed=5), 1),  # an ordinary empty frame: decoded once
        (synth.low_contrast(synth.camera_frame(None, seed=5), 0.05), 2),  # dim: once more
        (np.full((480, 640, 3), 40, np.uint8), 1),  # a covered lens: nothing to stretch
    ],
    ids=["ordinary", "low contrast", "flat"],
)
def test_the_fallback_decodes_again_only_low_contrast_frames(frame, passes):
    inner = Counting()
    assert ContrastFallback(inner).decode(to_gray(frame)) == []
    assert len(inner.frames) == passes
    if passes == 2:
        stretched = inner.frames[1]
        assert int(stretched.min()) == 0 and int(stretched.max()) == 255
        span = int(inner.frames[0].max()) - int(inner.frames[0].min())
        assert span < LOW_CONTRAST_LEVELS


def test_asking_for_zxing_without_it_says_to_install_the_pi_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "zxingcpp", None)
    with pytest.raises(ScannerError, match=r"\[pi\] extra"):
        make_decoder("zxing")


def test_missing_zbar_says_to_install_libzbar0(monkeypatch):
    monkeypatch.setitem(sys.modules, "pyzbar", None)
    with pytest.raises(ScannerError, match="libzbar0"):
        make_decoder("pyzbar")


def test_no_decoder_at_all_is_one_error_naming_both(monkeypatch):
    monkeypatch.setitem(sys.modules, "zxingcpp", None)
    monkeypatch.setitem(sys.modules, "pyzbar", None)
    with pytest.raises(ScannerError, match=r"\[pi\].*libzbar0"):
        make_decoder("auto")


def test_an_unknown_decoder_name_is_refused():
    with pytest.raises(ScannerError, match="auto, pyzbar, zxing"):
        make_decoder("opencv")
