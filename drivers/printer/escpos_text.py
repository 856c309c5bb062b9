"""The one place that turns text into printer bytes: Chinese mode, GB18030/GBK, column widths.

python-escpos's ``text()`` cannot print Chinese on these printers: its codepage guessing has no
GB18030, sends no ``FS &`` and turns characters outside GB2312 into "?". So a line holding
anything beyond ASCII is encoded here (GB18030, or GBK when the printer only knows GBK) and
sent between ``FS &`` (enter Chinese mode) and ``FS .`` (leave it) through the library's raw
write; pure ASCII lines keep the normal ``text()`` path.

Widths: in Chinese mode every multi-byte character prints as a full-width glyph, two columns
of font A; ASCII is one column. So a character is two columns exactly when it is not ASCII
(this also covers punctuation such as "·" or "￥", which GB printers print full width).
"""

from __future__ import annotations

import logging

from escpos.escpos import Escpos

log = logging.getLogger(__name__)

FS_CHINESE_ON = b"\x1c&"  # FS &: select Chinese (Kanji) character mode
FS_CHINESE_OFF = b"\x1c."  # FS .: cancel it
ENCODINGS = ("gb18030", "gbk")
PAPER_COLUMNS = {58: 32, 80: 48}  # font A (12 dots) on 384 and 576 printable dots
UNPRINTABLE = "？"  # full width, so a replaced character keeps its two columns


def columns_for(paper_mm: int) -> int:
    """Characters of font A per line on a roll of ``paper_mm``."""
    try:
        return PAPER_COLUMNS[paper_mm]
    except KeyError:
        raise ValueError(f"paper_mm must be 58 or 80, got {paper_mm!r}") from None


def clean(text: str) -> str:
    """Replace control characters (a name from the server must not smuggle in a command)."""
    return "".join(" " if ord(ch) < 0x20 or ord(ch) == 0x7F else ch for ch in text)


def char_width(ch: str) -> int:
    """Columns one character takes on the paper: 1 for ASCII, 2 for anything else."""
    return 1 if ord(ch) < 0x80 else 2


def display_width(text: str) -> int:
    """Columns ``text`` takes on the paper."""
    return sum(char_width(ch) for ch in text)


def truncate(text: str, width: int) -> str:
    """The longest prefix of ``text`` that fits in ``width`` columns."""
    used = 0
    for i, ch in enumerate(text):
        used += char_width(ch)
        if used > width:
            return text[:i]
    return text


def wrap(text: str, width: int) -> list[str]:
    """Split ``text`` into lines of at most ``width`` columns.

    English breaks after a space or a hyphen (so a txn id splits at its dashes); Chinese may
    break between any two characters; a word longer than a line is cut.
    """
    if width < 2:
        raise ValueError(f"width must be at least 2 columns, got {width}")
    tokens: list[str] = []
    word = ""
    for ch in clean(text):
        if char_width(ch) == 2:
            tokens += [word, ch] if word else [ch]
            word = ""
        else:
            word += ch
            if ch in " -":
                tokens.append(word)
                word = ""
    if word:
        tokens.append(word)
    lines: list[str] = []
    line = ""
    for token in tokens:
        if display_width(line + token.rstrip()) <= width:
            line += token
            continue
        if line.strip():
            lines.append(line.rstrip())
        line = token.lstrip()
        while display_width(line.rstrip()) > width:
            head = truncate(line, width)
            lines.append(head)
            line = line[len(head) :]
    if line.strip() or not lines:
        lines.append(line.rstrip())
    return lines


def two_columns(left: str, right: str, width: int) -> list[str]:
    """``left`` flush left and ``right`` flush right on one line, or on two when they clash.

    At least one space separates them; a right part too long for a whole line is wrapped.
    """
    left, right = clean(left), clean(right)
    gap = width - display_width(left) - display_width(right)
    if gap >= 1:
        return [left + " " * gap + right]
    lines = wrap(left, width) if left else []
    parts = wrap(right, width)
    if len(parts) == 1:
        return [*lines, " " * (width - display_width(right)) + right]
    return lines + parts  # a long value (a txn id on 58 mm) reads best flush left


def encode_chinese(text: str, encoding: str) -> bytes:
    """``text`` in the printer's Chinese encoding; a character it lacks becomes "？"."""
    if encoding not in ENCODINGS:
        raise ValueError(f"encoding must be one of {', '.join(ENCODINGS)}, got {encoding!r}")
    try:
        return text.encode(encoding)
    except UnicodeEncodeError:
        out = bytearray()
        for ch in text:
            try:
                out += ch.encode(encoding)
            except UnicodeEncodeError:
                log.warning(
                    "%r (U+%04X) has no %s code: printed as %s", ch, ord(ch), encoding, UNPRINTABLE
                )
                out += UNPRINTABLE.encode(encoding)
        return bytes(out)


def text_bytes(text: str, encoding: str) -> bytes:
    """What ``write_line`` sends for ``text`` when it holds non-ASCII: FS & ... FS . around it."""
    return FS_CHINESE_ON + encode_chinese(clean(text), encoding) + FS_CHINESE_OFF


def write_line(printer: Escpos, text: str, encoding: str) -> None:
    """Print one line (no wrapping) and end it with LF.

    The whole line goes inside one FS & ... FS . pair when it holds any non-ASCII character:
    ASCII bytes print the same in Chinese mode, and one pair costs 4 bytes instead of one per
    run. The LF is sent after FS . so the printer leaves every line in its default mode.
    """
    text = clean(text)
    if text.isascii():
        printer.text(text + "\n")
    else:
        printer._raw(text_bytes(text, encoding) + b"\n")
