"""Every template printed through the real serial adapter into the VirtualPrinter over a pty,
checked on what came out: the rendered text, and the QR and barcode decoded from the PNG.
Also the virtual printer itself: status bytes per state, receipts split at cuts that arrive
in later writes, and the problems it reports for bytes a real printer would misprint.
"""

from __future__ import annotations

import pytest
import serial
from PIL import Image
from pyzbar.pyzbar import ZBarSymbol, decode

from drivers.printer.samples import COMMITMENT, COUPON_CODE, MEMBER, TXN_ID, sample_receipts
from drivers.printer.serial_printer import SerialReceiptPrinter
from drivers.printer.sim_parser import EscPosParser
from drivers.printer.sim_printer import VirtualPrinter
from drivers.printer.sim_render import to_text
from drivers.printer.templates import render_receipt
from kiosk.domain.receipts import MemberReceipt
from kiosk.ports import PaperState

SAMPLES = sample_receipts()
TITLES = {
    "redemption": ("兑换凭证", "REDEMPTION RECEIPT"),
    "points_cash": ("积分加现金", "POINTS + CASH RECEIPT"),
    "wheel": ("幸运转盘", "LUCKY WHEEL"),
    "refund": ("退款凭证", "REFUND VOUCHER"),
    "claim": ("领取凭证", "CLAIM VOUCHER"),
    "coupon": ("优惠券", "COUPON"),
    "restock": ("补货单", "RESTOCK SLIP"),
    "selftest": ("自检页", "SELF-TEST PAGE"),
}


@pytest.fixture(params=[58, 80], ids=["58mm", "80mm"])
def paper_mm(request):
    return request.param


@pytest.fixture
def sim(tmp_path, paper_mm):
    with VirtualPrinter(tmp_path / "receipts", paper_mm=paper_mm) as printer:
        yield printer


@pytest.fixture
def printer(sim, paper_mm):
    p = SerialReceiptPrinter(sim.port, paper_mm=paper_mm, status_timeout_s=0.5, write_timeout_s=0.5)
    yield p
    p.close()


def decoded(png_path, symbol):
    with Image.open(png_path) as img:
        return [r.data.decode() for r in decode(img.convert("L"), symbols=[symbol])]


# ---- each template through adapter -> pty -> virtual printer -----------------------------------


@pytest.mark.parametrize("kind", sorted(SAMPLES))
def test_every_template_prints_in_chinese_and_english(kind, sim, printer):
    receipt = SAMPLES[kind]
    printer.print_receipt(receipt)
    (printed,) = sim.wait_for_receipts(1)
    assert printed.problems == ()
    assert printed.cut == "partial"
    lines = printed.text.splitlines()
    stripped = [line.strip() for line in lines]
    zh, en = TITLES[kind]
    assert zh in stripped and en in stripped
    assert "幸福超市（人民路店）" in stripped and "Happy Mart, Renmin Rd" in stripped
    assert any(line.startswith("终端 Kiosk") and line.endswith("kiosk-01") for line in lines)
    assert printed.text_path.read_text(encoding="utf-8") == printed.text
    assert printed.png_path.stat().st_size > 0
    if isinstance(receipt, MemberReceipt):
        assert any(line.startswith("会员 Member") and line.endswith(MEMBER) for line in lines)
        assert any(line.startswith("原有积分") or line.startswith("退还前") for line in lines)
        before = next(line for line in lines if line.startswith(("原有积分", "退还前")))
        assert before.endswith(f"{receipt.points_before:,}")
        now = next(line for line in lines if line.startswith("现有积分 Balance now"))
        assert now.endswith(f"{receipt.points_after:,}")
        assert TXN_ID.replace("-", "") in "".join(lines).replace("-", "")
        if receipt.expiring is not None:
            day = receipt.expiring.on.isoformat()
            assert f"提醒：{receipt.expiring.points}积分将于{day}到期" in lines
            assert f"{receipt.expiring.points} points expire on" in printed.text


def test_redemption_shows_item_in_both_languages_and_the_points_spent(sim, printer):
    printer.print_receipt(SAMPLES["redemption"])
    (printed,) = sim.wait_for_receipts(1)
    assert "  不锈钢保温杯" in printed.text.splitlines()
    assert "  Stainless Steel Thermos" in printed.text.splitlines()
    assert any(
        line.startswith("使用积分 Points used") and line.endswith("-1,200")
        for line in printed.text.splitlines()
    )


def test_wheel_proof_qr_decodes_to_commitment_and_txn_id(sim, printer):
    printer.print_receipt(SAMPLES["wheel"])
    (printed,) = sim.wait_for_receipts(1)
    (payload,) = decoded(printed.png_path, ZBarSymbol.QRCODE)
    assert payload == SAMPLES["wheel"].proof_payload()
    assert f"commit={COMMITMENT}" in payload and f"txn={TXN_ID}" in payload
    assert COMMITMENT[:32] in printed.text  # printed as text too, for a member without a phone


def test_coupon_qr_and_barcode_decode_to_the_code(sim, printer):
    printer.print_receipt(SAMPLES["coupon"])
    (printed,) = sim.wait_for_receipts(1)
    assert decoded(printed.png_path, ZBarSymbol.QRCODE) == [COUPON_CODE]
    assert decoded(printed.png_path, ZBarSymbol.CODE128) == [COUPON_CODE]
    assert printed.barcodes == (COUPON_CODE,)
    assert "￥10.00" in printed.text


def test_receipts_in_a_row_are_split_at_their_cuts(sim, printer):
    for kind in ("redemption", "coupon", "restock"):
        printer.print_receipt(SAMPLES[kind])
    printed = sim.wait_for_receipts(3)
    assert [p.number for p in printed] == [1, 2, 3]
    assert "兑换凭证" in printed[0].text and "优惠券" in printed[1].text
    assert "补货单" in printed[2].text
    assert sorted(p.name for p in sim.out_dir.iterdir()) == [
        f"receipt-000{n}.{ext}" for n in (1, 2, 3) for ext in ("png", "txt")
    ]


# ---- the virtual printer at the byte level -----------------------------------------------------


@pytest.fixture
def sim58(tmp_path):
    with VirtualPrinter(tmp_path / "receipts") as printer:
        yield printer


@pytest.fixture
def raw(sim58):
    port = serial.Serial(sim58.port, 19200, timeout=1)
    yield port
    port.close()


def ask(port: serial.Serial, n: int) -> int:
    port.write(b"\x10\x04" + bytes([n]))
    answer = port.read(1)
    assert answer, f"no answer to DLE EOT {n}"
    return answer[0]


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        (lambda s: None, {1: 0x12, 2: 0x12, 4: 0x12}),
        (lambda s: s.set_paper(PaperState.NEAR_END), {1: 0x12, 2: 0x12, 4: 0x1E}),
        (lambda s: s.set_paper(PaperState.OUT), {1: 0x1A, 2: 0x32, 4: 0x72}),
        (lambda s: s.set_cover_open(), {1: 0x1A, 2: 0x16, 4: 0x12}),
        (lambda s: s.set_offline(), {1: 0x1A, 2: 0x12, 4: 0x12}),
    ],
    ids=["ok", "near_end", "paper_out", "cover_open", "offline"],
)
def test_status_queries_get_the_byte_of_the_current_state(sim58, raw, fault, expected):
    fault(sim58)
    assert {n: ask(raw, n) for n in (1, 2, 4)} == expected


def test_a_cut_that_arrives_in_a_later_write_still_ends_the_receipt(sim58, raw):
    data = render_receipt(SAMPLES["redemption"])
    assert data.endswith(b"\x1dVB\x00")
    raw.write(data[:-4])
    assert ask(raw, 1) == 0x12  # answered in order: the sim has read everything before it
    assert sim58.receipts == []
    raw.write(data[-4:])
    (printed,) = sim58.wait_for_receipts(1)
    assert printed.raw.endswith(b"\x1dVB\x00") and "兑换凭证" in printed.text


def test_commands_split_across_reads_parse_as_if_sent_at_once():
    data = render_receipt(SAMPLES["wheel"]) + render_receipt(SAMPLES["coupon"])

    def run(pieces):
        out, queries = [], []
        parser = EscPosParser(
            encoding="gb18030", columns=32, on_status=queries.append, on_receipt=out.append
        )
        for piece in pieces:
            parser.feed(piece)
        return [(to_text(r, 32), r.problems, r.raw) for r in out]

    at_once = run([data])
    assert len(at_once) == 2
    assert run([data[i : i + 1] for i in range(len(data))]) == at_once
    assert run([data[i : i + 7] for i in range(0, len(data), 7)]) == at_once


def test_two_receipts_in_one_write_come_out_as_two(sim58, raw):
    raw.write(render_receipt(SAMPLES["redemption"]) + render_receipt(SAMPLES["coupon"]))
    first, second = sim58.wait_for_receipts(2)
    assert "兑换凭证" in first.text and "优惠券" in second.text


def test_bytes_a_real_printer_would_misprint_are_reported(sim58, raw):
    # python-escpos's text() sends GB2312 bytes without FS &: a printer in its default mode
    # prints them as code page 437 symbols. Also an unknown command and an over-long line.
    raw.write(b"\x1b@" + "积分".encode("gbk") + b"\n\x1b\x99" + b"x" * 60 + b"\n\x1dV\x00")
    (printed,) = sim58.wait_for_receipts(1)
    problems = " | ".join(printed.problems)
    assert "outside Chinese mode" in problems
    assert "unknown command ESC 0x99" in problems
    assert "60 columns wide" in problems
    assert printed.cut == "full"


def test_a_stalled_printer_does_not_answer_until_it_resumes(sim58, raw):
    sim58.stall()
    raw.timeout = 0.3
    raw.write(b"\x10\x04\x01")
    assert raw.read(1) == b""
    sim58.resume()
    assert raw.read(1) == b"\x12"
