"""Product pictures for the demo gifts, drawn with Pillow (no photos to fetch, no binaries in git).

Each is a flat illustration on a pastel rounded tile, 240x240 PNG of a few KB, the same bytes
on every run of one Pillow version. ``demo.seed`` writes them into the store's pictures folder,
where ``GET /v1/pictures/{name}`` serves them to the kiosks.

python -m storeserver.demo_pictures FOLDER    # write them somewhere to look at
"""

from __future__ import annotations

import functools
import io
import math
import os
import sys
from collections.abc import Callable
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

SIZE = 240
_S = 4  # drawn at 4x and scaled down: smooth edges without an anti-aliasing renderer
_W = SIZE * _S

Color = tuple[int, int, int]
Draw = ImageDraw.ImageDraw


def _p(*values: float) -> list[int]:
    """Coordinates of the 240 px design, scaled to the drawing canvas."""
    return [round(v * _S) for v in values]


def _canvas(background: Color) -> tuple[Image.Image, Draw]:
    img = Image.new("RGBA", (_W, _W), (0, 0, 0, 0))
    draw = ImageDraw.Draw(img)
    draw.rounded_rectangle(_p(0, 0, SIZE - 1, SIZE - 1), radius=28 * _S, fill=background)
    return img, draw


def _shadow(draw: Draw, cx: float, y: float, rx: float, color: Color) -> None:
    draw.ellipse(_p(cx - rx, y - rx * 0.16, cx + rx, y + rx * 0.16), fill=color)


def _leaf(d: Draw, base: tuple[float, float], tip: tuple[float, float], half_width: float,
          color: Color) -> None:  # fmt: skip
    """A pointed leaf from ``base`` to ``tip`` with a vein."""
    (x0, y0), (x1, y1) = base, tip
    length = math.hypot(x1 - x0, y1 - y0)
    ux, uy = (x1 - x0) / length, (y1 - y0) / length
    outline = []
    for side in (1, -1):
        for i in range(21) if side == 1 else range(20, -1, -1):
            t = i / 20
            w = side * half_width * math.sin(math.pi * t)
            outline.append((x0 + ux * length * t - uy * w, y0 + uy * length * t + ux * w))
    d.polygon(_p(*(v for xy in outline for v in xy)), fill=color)
    vein = _p(x0 + ux * 2, y0 + uy * 2, x1 - ux * 4, y1 - uy * 4)
    d.line(vein, fill=tuple(min(255, c + 60) for c in color), width=2 * _S)


def _star(d: Draw, cx: float, cy: float, r: float, color: Color) -> None:
    points = []
    for i in range(10):
        a = -math.pi / 2 + i * math.pi / 5
        radius = r if i % 2 == 0 else r * 0.45
        points += [cx + radius * math.cos(a), cy + radius * math.sin(a)]
    d.polygon(_p(*points), fill=color)


# ---- the gifts ----------------------------------------------------------------------------------


def mug() -> Image.Image:
    """A thermal mug: steel-teal body with a lid, a band and a handle."""
    img, d = _canvas((221, 241, 236))
    _shadow(d, 112, 206, 62, (190, 222, 213))
    d.rounded_rectangle(_p(146, 92, 196, 168), radius=24 * _S, fill=(38, 110, 112))  # handle
    d.rounded_rectangle(_p(158, 106, 184, 154), radius=12 * _S, fill=(221, 241, 236))
    d.rounded_rectangle(_p(60, 62, 164, 206), radius=16 * _S, fill=(48, 142, 140))  # body
    d.rounded_rectangle(_p(60, 62, 84, 206), radius=12 * _S, fill=(74, 170, 165))  # light side
    d.rectangle(_p(72, 62, 84, 206), fill=(74, 170, 165))
    d.rectangle(_p(60, 150, 164, 164), fill=(34, 98, 100))  # band
    d.rounded_rectangle(_p(52, 40, 172, 70), radius=10 * _S, fill=(52, 60, 72))  # lid
    d.rounded_rectangle(_p(88, 30, 136, 46), radius=6 * _S, fill=(70, 80, 94))
    d.rounded_rectangle(_p(96, 86, 104, 138), radius=4 * _S, fill=(140, 212, 204))  # gleam
    return img


def tote() -> Image.Image:
    """A canvas tote bag: two handles, stitching and a leaf print."""
    img, d = _canvas((222, 232, 244))
    _shadow(d, 120, 212, 78, (198, 212, 230))
    for x0 in (68, 124):  # handles behind the bag
        d.ellipse(_p(x0, 26, x0 + 48, 110), outline=(156, 122, 82), width=10 * _S)
    d.polygon(_p(52, 84, 188, 84, 198, 210, 42, 210), fill=(232, 210, 168))  # bag
    d.polygon(_p(52, 84, 188, 84, 189, 100, 51, 100), fill=(214, 188, 142))  # hem
    for x in range(58, 184, 12):  # stitching under the hem
        d.line(_p(x, 106, x + 6, 106), fill=(176, 146, 104), width=2 * _S)
    d.ellipse(_p(92, 124, 148, 180), fill=(92, 150, 96))  # leaf print
    _leaf(d, (108, 168), (134, 136), 10, (232, 210, 168))
    return img


def tea() -> Image.Image:
    """A premium tea gift box: red with a gold ribbon and bow, a tea leaf on the lid."""
    img, d = _canvas((251, 227, 214))
    _shadow(d, 120, 210, 82, (234, 200, 184))
    d.rectangle(_p(44, 96, 196, 206), fill=(178, 34, 40))  # box
    d.rectangle(_p(36, 78, 204, 110), fill=(204, 46, 50))  # lid
    d.rectangle(_p(36, 106, 204, 112), fill=(140, 24, 30))  # lid's shadow
    d.rectangle(_p(110, 78, 130, 206), fill=(232, 184, 72))  # ribbon
    d.polygon(_p(120, 80, 78, 50, 74, 86), fill=(240, 198, 90))  # bow
    d.polygon(_p(120, 80, 162, 50, 166, 86), fill=(240, 198, 90))
    d.ellipse(_p(110, 70, 130, 90), fill=(214, 160, 52))
    for cx in (81, 159):  # a tea leaf in a gold medallion on each side of the ribbon
        d.ellipse(_p(cx - 21, 134, cx + 21, 182), fill=(232, 184, 72))
        _leaf(d, (cx - 12, 172), (cx + 12, 144), 9, (86, 146, 76))
    return img


def earbuds() -> Image.Image:
    """Bluetooth earbuds: two white buds above their charging case."""
    img, d = _canvas((218, 230, 247))
    _shadow(d, 120, 206, 70, (196, 210, 234))
    d.rounded_rectangle(_p(62, 140, 178, 204), radius=30 * _S, fill=(246, 248, 252))  # case
    d.rounded_rectangle(_p(62, 140, 178, 166), radius=14 * _S, fill=(230, 234, 242))
    d.rectangle(_p(62, 156, 178, 166), fill=(246, 248, 252))
    d.line(_p(66, 162, 174, 162), fill=(196, 204, 220), width=2 * _S)
    d.ellipse(_p(114, 176, 126, 188), fill=(96, 200, 130))  # charge light
    for cx, tilt in ((84, -1), (156, 1)):
        stem = [(cx + tilt * 6, 66), (cx + tilt * 16, 124)]
        d.line(_p(*stem[0], *stem[1]), fill=(236, 240, 246), width=16 * _S)
        d.ellipse(_p(stem[1][0] - 8, stem[1][1] - 8, stem[1][0] + 8, stem[1][1] + 8),
                  fill=(236, 240, 246))  # fmt: skip
        d.ellipse(_p(cx - 24, 34, cx + 24, 80), fill=(250, 251, 254))  # head
        d.ellipse(_p(cx - 14 - tilt * 4, 52, cx + 6 - tilt * 4, 64), fill=(186, 194, 210))  # tip
    return img


def umbrella() -> Image.Image:
    """An umbrella: striped canopy with scalloped edge, shaft and a J handle."""
    img, d = _canvas((226, 242, 222))
    bg = (226, 242, 222)
    cx, top, edge, rx = 120, 44, 122, 92
    box = _p(cx - rx, top, cx + rx, 2 * edge - top)
    colors = [(230, 84, 72), (250, 200, 70), (230, 84, 72), (250, 200, 70)]
    for i, color in enumerate(colors):  # four panels from left to right
        d.pieslice(box, 180 + i * 45, 180 + (i + 1) * 45, fill=color)
    scallop = rx / 4
    for i in range(4):
        x = cx - rx + scallop * (2 * i + 1)
        d.ellipse(_p(x - scallop, edge - scallop * 0.45, x + scallop, edge + scallop * 0.45),
                  fill=bg)  # fmt: skip
    d.line(_p(cx, top - 14, cx, top + 2), fill=(70, 70, 80), width=5 * _S)  # tip
    d.line(_p(cx, edge - 6, cx, 188), fill=(70, 70, 80), width=6 * _S)  # shaft
    d.arc(_p(cx - 28, 168, cx + 2, 204), 0, 180, fill=(70, 70, 80), width=7 * _S)  # handle
    d.ellipse(_p(cx - 30, 182, cx - 20, 192), fill=(70, 70, 80))
    return img


def coupon() -> Image.Image:
    """A ¥10 coupon: an orange ticket with notches, a perforation and its value."""
    img, d = _canvas((255, 241, 201))
    bg = (255, 241, 201)
    d.rounded_rectangle(_p(26, 66, 214, 174), radius=14 * _S, fill=(240, 120, 40))
    for x in (26, 214):  # notches
        d.ellipse(_p(x - 14, 106, x + 14, 134), fill=bg)
    for y in range(76, 168, 12):  # perforation
        d.line(_p(164, y, 164, y + 6), fill=(255, 214, 170), width=3 * _S)
    white = (255, 255, 255)
    font = ImageFont.load_default(size=64 * _S)  # Pillow's own font: the same on every system
    d.text(_p(114, 122), "10", font=font, fill=white, anchor="mm")
    # the yen sign by hand: the bundled font has no glyph for it
    d.line(_p(50, 96, 62, 118, 74, 96), fill=white, width=6 * _S, joint="curve")
    d.line(_p(62, 117, 62, 148), fill=white, width=6 * _S)
    d.line(_p(50, 124, 74, 124), fill=white, width=5 * _S)
    d.line(_p(50, 135, 74, 135), fill=white, width=5 * _S)
    _star(d, 189, 120, 12, (255, 214, 170))
    return img


# sku -> (file name, drawing): the demo's catalog (storeserver/demo.py ITEMS)
PICTURES: dict[str, tuple[str, Callable[[], Image.Image]]] = {
    "GIFT-MUG": ("mug.png", mug),
    "GIFT-TOTE": ("tote.png", tote),
    "GIFT-TEA": ("tea.png", tea),
    "GIFT-EARBUDS": ("earbuds.png", earbuds),
    "GIFT-UMBRELLA": ("umbrella.png", umbrella),
    "CPN-10": ("coupon-10.png", coupon),
}


@functools.cache
def png(sku: str) -> bytes:
    """The item's picture as PNG bytes (drawn once per process: tests seed a store per test)."""
    _, drawing = PICTURES[sku]
    img = drawing().resize((SIZE, SIZE), Image.Resampling.LANCZOS)
    # a 64-colour palette keeps a flat illustration at a few KB; alpha stays for the corners
    small = img.quantize(64, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)
    out = io.BytesIO()
    small.save(out, "PNG", optimize=True)
    return out.getvalue()


def write_missing(folder: Path) -> dict[str, str]:
    """Write each picture not yet in ``folder`` (a store's own photo is never overwritten);
    returns sku -> file name for all of them."""
    folder.mkdir(parents=True, exist_ok=True)
    for sku, (name, _) in PICTURES.items():
        path = folder / name
        if path.exists():
            continue
        tmp = path.with_name(f".{name}.tmp")
        tmp.write_bytes(png(sku))
        os.replace(tmp, path)  # a server serving the folder never sees half a file
    return {sku: name for sku, (name, _) in PICTURES.items()}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m storeserver.demo_pictures FOLDER", file=sys.stderr)
        return 2
    folder = Path(args[0])
    for sku, name in write_missing(folder).items():
        print(f"{folder / name}\t{len((folder / name).read_bytes())} bytes\t{sku}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
