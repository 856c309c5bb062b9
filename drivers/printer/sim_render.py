"""Draw what the virtual printer parsed: a text file for people and tests, a PNG for the eye.

The PNG is one pixel per printer dot (8 dots/mm): 384 printable dots on 58 mm paper, 576 on
80 mm, plus the unprintable paper edge as white margin (it is also a barcode's quiet zone).
Font A cells are 12x24 dots, a Chinese character 24x24. QR codes are redrawn with segno from
the data the printer received, module for module at the size it was told, so a decoder can
read them back; CODE128 bars come from python-barcode's encoder.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path

import numpy as np
import segno
from barcode.codex import Code128
from PIL import Image, ImageDraw, ImageFont

from .sim_model import Barcode, ParsedReceipt, QrCode, RasterImage, TextLine

log = logging.getLogger(__name__)

DEFAULT_FONT = Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")
DOTS_PER_MM = 8
CELL_W, CELL_H, LINE_H = 12, 24, 30  # font A; default line spacing is 30 dots


def to_text(receipt: ParsedReceipt, columns: int) -> str:
    """The receipt as lines of text, aligned as printed; codes shown as ``[QR data]``."""
    out = []
    for block in receipt.blocks:
        if isinstance(block, TextLine):
            pad = {"center": (columns - block.columns) // 2, "right": columns - block.columns}
            out.append((" " * max(pad.get(block.align, 0), 0) + block.text).rstrip())
        elif isinstance(block, QrCode):
            out.append(f"[QR {block.data}]")
        elif isinstance(block, Barcode):
            out.append(f"[{block.symbology} {block.data}]")
        else:
            out.append(f"[image {block.width_bytes * 8}x{block.height}]")
    return "\n".join(out) + "\n"


@lru_cache(maxsize=4)
def _fonts(path: str) -> tuple[ImageFont.FreeTypeFont, ImageFont.FreeTypeFont]:
    # Face 1 of wqy-microhei.ttc is its Mono face: ASCII advance 0.6 em, so 20 px -> 12 dots.
    try:
        ascii_font = ImageFont.truetype(path, 20, index=1)
    except OSError:
        ascii_font = ImageFont.truetype(path, 20)
    return ascii_font, ImageFont.truetype(path, 24)


def to_png(
    receipt: ParsedReceipt, paper_mm: int, columns: int, font_path: Path = DEFAULT_FONT
) -> Image.Image:
    """The receipt as a grey image, one pixel per dot, black on white."""
    printable = columns * CELL_W
    paper = paper_mm * DOTS_PER_MM
    pieces = [_piece(block, printable, str(font_path)) for block in receipt.blocks]
    height = sum(img.height for img, _ in pieces) + 2 * LINE_H
    page = Image.new("L", (paper, height), 255)
    y, margin = LINE_H, (paper - printable) // 2
    for img, align in pieces:
        x = {"center": (printable - img.width) // 2, "right": printable - img.width}.get(align, 0)
        page.paste(img, (margin + x, y))
        y += img.height
    return page


def _piece(block: object, printable: int, font_path: str) -> tuple[Image.Image, str]:
    if isinstance(block, TextLine):
        return _text_line(block, font_path), block.align
    if isinstance(block, QrCode):
        return _qr(block), block.align
    if isinstance(block, Barcode):
        return _barcode(block, font_path), block.align
    assert isinstance(block, RasterImage)
    bits = np.unpackbits(np.frombuffer(block.bits, dtype=np.uint8))
    dots = bits.reshape(block.height, block.width_bytes * 8)
    return Image.fromarray(((1 - dots) * 255).astype(np.uint8), "L"), block.align


def _text_line(line: TextLine, font_path: str) -> Image.Image:
    ascii_font, cjk_font = _fonts(font_path)
    tall = max((span.height for span in line.spans), default=1)
    img = Image.new("L", (max(line.columns * CELL_W, 1), LINE_H * tall), 255)
    x = 0
    for span in line.spans:
        base = Image.new("L", (span.columns * CELL_W, CELL_H), 255)
        draw = ImageDraw.Draw(base)
        cx = 0
        for ch, cells in zip(span.text, span.cells, strict=True):
            font, dy = (ascii_font, 1) if cells == 1 else (cjk_font, 0)
            for bold_dx in (0, 1) if span.bold else (0,):
                draw.text((cx + bold_dx, dy), ch, font=font, fill=0)
            cx += cells * CELL_W
        scaled = base.resize((base.width * span.width, CELL_H * span.height), Image.NEAREST)
        img.paste(scaled, (x, img.height - scaled.height - (LINE_H - CELL_H)))
        x += scaled.width
    return img


def _qr(block: QrCode) -> Image.Image:
    qr = segno.make_qr(block.data, error=block.ec.lower(), boost_error=False)
    rows = np.array(list(qr.matrix_iter(scale=block.module_dots, border=4)), dtype=np.uint8)
    return Image.fromarray(((1 - rows) * 255).astype(np.uint8), "L")


def _barcode(block: Barcode, font_path: str) -> Image.Image:
    ascii_font, _ = _fonts(font_path)
    drawn = block.symbology == "CODE128"  # only CODE128 is drawn; others show their text
    text_h = CELL_H + 6 if block.text_below or not drawn else 0
    modules = Code128(block.data).build()[0] if drawn else "0" * 20
    quiet = 10 * block.module_dots
    width = len(modules) * block.module_dots + 2 * quiet
    img = Image.new("L", (width, block.height_dots + text_h), 255)
    draw = ImageDraw.Draw(img)
    for n, bit in enumerate(modules):
        if bit == "1":
            x = quiet + n * block.module_dots
            draw.rectangle((x, 0, x + block.module_dots - 1, block.height_dots - 1), fill=0)
    if text_h:
        tx = (width - len(block.data) * CELL_W) // 2
        draw.text((max(tx, 0), block.height_dots + 3), block.data, font=ascii_font, fill=0)
    return img
