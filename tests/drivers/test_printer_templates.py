"""Receipt templates: byte-exact golden files, Chinese only as GB18030 inside FS & ... FS .,
native QR and CODE128, widths that count Chinese as two columns, a cut at the end.

The golden files are tests/drivers/golden/<kind>_<58|80>.bin. After an intended layout change:

    UPDATE_GOLDEN=1 PYTHONPATH=. python -m pytest -q tests/drivers/test_printer_templates.py

then look at the rendered receipts (print them through the VirtualPrinter) before committing.
"""

from __future__ import annotations

import dataclasses
import difflib
import logging
import os
import re
from pathlib import Path

import pytest

from drivers.printer.escpos_text import (
    FS_CHINESE_OFF,
    FS_CHINESE_ON,
    clean,
    columns_for,
    display_width,
    encode_chinese,
    text_bytes,
    two_columns,
    wrap,
)
from drivers.printer.samples import COMMITMENT, COUPON_CODE, TXN_ID, sample_receipts
from drivers.printer.sim_model import Barcode, ParsedReceipt, QrCode, TextLine
from drivers.printer.sim_parser import EscPosParser
from drivers.printer.sim_render import to_text
from drivers.printer.templates import render_receipt
from kiosk.domain.receipts import Bilingual, Receipt

GOLDEN = Path(__file__).parent / "golden"
SAMPLES = sample_receipts()
KINDS = sorted(SAMPLES)
CHINESE_RUN = re.compile(rb"\x1c&(.*?)\x1c\.", re.S)  # 0x1c never occurs inside GB18030
RASTER_COMMANDS = (b"\x1dv0", b"\x1b*", b"\x1d(L", b"\x1d8L")


def parse(data: bytes, paper_mm: int = 58, encoding: str = "gb18030") -> list[ParsedReceipt]:
    out: list[ParsedReceipt] = []
    parser = EscPosParser(
        encoding=encoding,
        columns=columns_for(paper_mm),
        on_status=lambda n: None,
        on_receipt=out.append,
    )
    parser.feed(data)
    assert parser.pending == 0, "the bytes end in the middle of a command"
    return out


# ---- golden files ------------------------------------------------------------------------------


@pytest.mark.parametrize("paper_mm", [58, 80])
@pytest.mark.parametrize("kind", KINDS)
def test_template_matches_its_golden_file(kind, paper_mm):
    data = render_receipt(SAMPLES[kind], paper_mm=paper_mm)
    path = GOLDEN / f"{kind}_{paper_mm}.bin"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        GOLDEN.mkdir(exist_ok=True)
        path.write_bytes(data)
    assert path.exists(), f"{path} is missing: run with UPDATE_GOLDEN=1 to create it"
    expected = path.read_bytes()
    if data != expected:
        columns = columns_for(paper_mm)
        old = to_text(parse(expected, paper_mm)[0], columns).splitlines()
        new = to_text(parse(data, paper_mm)[0], columns).splitlines()
        first = next(
            (i for i, (a, b) in enumerate(zip(data, expected, strict=False)) if a != b),
            min(len(data), len(expected)),
        )
        diff = "\n".join(difflib.unified_diff(old, new, "golden", "now", lineterm=""))
        pytest.fail(
            f"{path.name}: {len(data)} bytes now, {len(expected)} in the golden file, first "
            f"difference at byte {first}; rendered text diff:\n{diff or '(text identical)'}\n"
            "If the change is intended, rerun with UPDATE_GOLDEN=1."
        )


def test_every_golden_file_belongs_to_a_sample():
    expected = {f"{kind}_{mm}.bin" for kind in KINDS for mm in (58, 80)}
    assert {p.name for p in GOLDEN.glob("*.bin")} == expected


def test_templates_are_pure_same_receipt_same_bytes():
    for kind in KINDS:
        assert render_receipt(SAMPLES[kind]) == render_receipt(SAMPLES[kind])


# ---- structure of every template ---------------------------------------------------------------


@pytest.mark.parametrize("paper_mm", [58, 80])
@pytest.mark.parametrize("kind", KINDS)
def test_template_is_one_clean_receipt_within_the_paper_width(kind, paper_mm):
    data = render_receipt(SAMPLES[kind], paper_mm=paper_mm)
    assert data.startswith(b"\x1b@"), "starts with ESC @ (reset)"
    assert data.endswith(b"\x1dVB\x00"), "ends with GS V B 0 (feed to the blade and cut)"
    (receipt,) = parse(data, paper_mm)
    # no unknown commands, no high byte outside Chinese mode, no line wider than the paper
    assert receipt.problems == []
    lines = [b for b in receipt.blocks if isinstance(b, TextLine)]
    assert max(line.columns for line in lines) <= columns_for(paper_mm)
    assert not any(cmd in data for cmd in RASTER_COMMANDS), "no raster images"


@pytest.mark.parametrize("encoding", ["gb18030", "gbk"])
def test_chinese_goes_out_in_the_configured_encoding_inside_fs_and_fs_dot(encoding):
    data = render_receipt(SAMPLES["redemption"], encoding=encoding)
    runs = [run.decode(encoding) for run in CHINESE_RUN.findall(data)]
    assert "兑换凭证" in runs
    assert "  不锈钢保温杯" in runs
    assert "提醒：300积分将于2026-06-30到期" in runs
    outside = CHINESE_RUN.sub(b"", data)
    assert "兑换".encode(encoding) not in outside
    # every Chinese run is also readable back by a GB printer (the sim) as the same text
    text = to_text(parse(data, encoding=encoding)[0], 32)
    assert "不锈钢保温杯" in text and "Stainless Steel Thermos" in text


def test_ascii_only_lines_take_the_normal_text_path():
    data = render_receipt(SAMPLES["redemption"])
    assert b"  Stainless Steel Thermos\n" in data
    assert FS_CHINESE_ON + b"  Stainless" not in data


def test_text_bytes_wraps_gb18030_in_chinese_mode():
    assert (
        text_bytes("积分 Points", "gb18030")
        == b"\x1c&" + "积分 Points".encode("gb18030") + b"\x1c."
    )
    assert FS_CHINESE_ON == b"\x1c&" and FS_CHINESE_OFF == b"\x1c."


def test_a_character_beyond_gbk_is_four_bytes_in_gb18030_and_a_wide_question_mark_in_gbk():
    rare = "𠀀"  # U+20000, CJK extension B
    assert encode_chinese(rare, "gb18030") == b"\x95\x32\x82\x36"
    assert encode_chinese("杯" + rare, "gbk") == "杯？".encode("gbk")
    with pytest.raises(ValueError, match="encoding"):
        encode_chinese("杯", "utf-8")


def test_names_from_the_server_cannot_inject_printer_commands():
    sneaky = dataclasses.replace(
        SAMPLES["redemption"], item=Bilingual("杯\x1d\x56\x00", "Cup\x1b@\n")
    )
    (receipt,) = parse(render_receipt(sneaky))
    assert receipt.problems == []
    assert "杯" in to_text(receipt, 32)
    assert clean("a\x1bb\x7f") == "a b "


def test_coupon_has_a_native_qr_and_a_code128_of_its_code():
    data = render_receipt(SAMPLES["coupon"])
    assert b"\x1d(k" + bytes([len(COUPON_CODE) + 3, 0]) + b"1P0" + COUPON_CODE.encode() in data
    assert b"\x1dkI" + bytes([len(COUPON_CODE) + 2]) + b"{B" + COUPON_CODE.encode() in data
    (receipt,) = parse(data)
    assert [b.data for b in receipt.blocks if isinstance(b, QrCode)] == [COUPON_CODE]
    assert [b.data for b in receipt.blocks if isinstance(b, Barcode)] == [COUPON_CODE]


def test_wheel_proof_qr_is_native_and_holds_commitment_and_txn():
    (receipt,) = parse(render_receipt(SAMPLES["wheel"]))
    (qr,) = [b for b in receipt.blocks if isinstance(b, QrCode)]
    assert COMMITMENT in qr.data and TXN_ID in qr.data
    assert qr.ec == "M"


def test_a_coupon_code_too_long_for_58mm_bars_keeps_its_qr(caplog):
    long_code = "CPN-" + "X" * 16  # 255 modules: 510 dots, 384 on 58 mm, 576 on 80
    coupon = dataclasses.replace(SAMPLES["coupon"], code=long_code)
    with caplog.at_level(logging.WARNING):
        data = render_receipt(coupon, paper_mm=58)
    assert b"\x1dk" not in data and long_code.encode() in data
    assert "too wide" in caplog.text and long_code not in caplog.text  # never in clear
    assert b"\x1dkI" in render_receipt(coupon, paper_mm=80)


@pytest.mark.parametrize("paper_mm", [58, 80])
def test_redemption_receipt_stays_under_one_and_a_half_kilobytes(paper_mm):
    assert len(render_receipt(SAMPLES["redemption"], paper_mm=paper_mm)) <= 1536


def test_unknown_receipt_kind_and_paper_width_are_refused():
    class Odd(Receipt):
        pass

    with pytest.raises(TypeError, match="no receipt template for Odd"):
        render_receipt(
            Odd(
                **{f.name: getattr(SAMPLES["restock"], f.name) for f in dataclasses.fields(Receipt)}
            )
        )
    with pytest.raises(ValueError, match="58 or 80"):
        render_receipt(SAMPLES["redemption"], paper_mm=76)


# ---- column arithmetic -------------------------------------------------------------------------


def test_chinese_characters_and_full_width_signs_count_two_columns():
    assert display_width("Points") == 6
    assert display_width("积分") == 4
    assert display_width("￥1.00") == 6
    assert display_width("提醒：") == 6


@pytest.mark.parametrize("width", [32, 48])
def test_two_columns_fill_the_line_exactly(width):
    (line,) = two_columns("现有积分 Balance now", "3,800", width)
    assert display_width(line) == width
    assert line.startswith("现有积分 Balance now ") and line.endswith(" 3,800")


def test_two_columns_that_clash_go_on_two_lines():
    lines = two_columns("支付单号 Payment", "pay_0123456789abcdef0123", 32)
    assert lines == ["支付单号 Payment", "        pay_0123456789abcdef0123"]
    lines = two_columns("交易号 Txn", TXN_ID, 32)
    assert lines == ["交易号 Txn", "3f2b1c9e-5d4a-4e7b-9c1d-", "2a3b4c5d6e7f"]


def test_wrap_breaks_english_at_spaces_chinese_anywhere_and_cuts_long_words():
    assert wrap("Reminder: 300 points expire on 2026-06-30", 32) == [
        "Reminder: 300 points expire on",
        "2026-06-30",
    ]
    assert wrap("工作人员将核实柜门并为您处理礼品。", 16) == [
        "工作人员将核实柜",
        "门并为您处理礼品",
        "。",
    ]
    assert wrap("x" * 40, 32) == ["x" * 32, "x" * 8]
    assert all(display_width(line) <= 10 for line in wrap("中文 and English 混合 text", 10))
