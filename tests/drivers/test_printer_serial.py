"""SerialReceiptPrinter: status before printing, every failure a PrinterError a technician can
act on, nothing sent when the printer cannot print, and make_printer's wiring.

The adapter is always the real one; the printer at the other end of the pty is the
VirtualPrinter with faults injected. The contract tests at the end also run against a real
printer when KIOSK_TEST_PRINTER_PORT names its port (e.g. /dev/ttyUSB0; it prints a page).
"""

from __future__ import annotations

import os
import threading

import pytest
import serial

from drivers.printer import make_printer
from drivers.printer.samples import sample_receipts
from drivers.printer.serial_printer import SerialReceiptPrinter
from drivers.printer.sim_printer import VirtualPrinter
from drivers.printer.status import RawStatus, interpret, is_status_byte, query
from kiosk.config import PrinterSection
from kiosk.domain.receipts import Receipt
from kiosk.errors import PrinterError
from kiosk.ports import PaperState, PrinterStatus, ReceiptPrinter

SAMPLES = sample_receipts()
REDEMPTION = SAMPLES["redemption"]
STATUS_BYTES = 9  # DLE EOT 1, 2, 4 before a print


@pytest.fixture
def sim(tmp_path):
    with VirtualPrinter(tmp_path / "receipts") as printer:
        yield printer


def adapter(port: str, **kwargs) -> SerialReceiptPrinter:
    return SerialReceiptPrinter(port, **{"status_timeout_s": 0.3, "write_timeout_s": 0.5, **kwargs})


@pytest.fixture
def printer(sim):
    p = adapter(sim.port)
    yield p
    p.close()


# ---- refusing to print -------------------------------------------------------------------------


def test_paper_out_is_refused_with_a_message_and_nothing_is_sent(sim, printer):
    sim.set_paper(PaperState.OUT)
    with pytest.raises(PrinterError) as err:
        printer.print_receipt(REDEMPTION)
    assert str(err.value) == f"printer on {sim.port} reports paper out: load a 58 mm roll"
    assert sim.received == STATUS_BYTES and sim.status_queries == [1, 2, 4]
    assert sim.receipts == [] and sim.discarded == 0
    assert printer.last_status.paper is PaperState.OUT and not printer.last_status.ready


def test_after_loading_paper_the_kept_receipt_prints(sim, printer):
    sim.set_paper(PaperState.OUT)
    with pytest.raises(PrinterError):
        printer.print_receipt(REDEMPTION)
    sim.set_paper(PaperState.OK)
    printer.print_receipt(REDEMPTION)
    assert len(sim.wait_for_receipts(1)) == 1


def test_paper_near_end_prints_and_the_status_says_so(sim, printer, caplog):
    sim.set_paper(PaperState.NEAR_END)
    printer.print_receipt(REDEMPTION)
    assert "兑换凭证" in sim.wait_for_receipts(1)[0].text
    assert printer.last_status.paper is PaperState.NEAR_END
    status = printer.status()
    assert status.paper is PaperState.NEAR_END and status.ready
    assert "near end: load a new 58 mm roll soon" in status.detail
    assert "near end" in caplog.text


@pytest.mark.parametrize(
    ("fault", "words"),
    [
        (lambda s: s.set_offline(), "is offline: check its error light"),
        (lambda s: s.set_cover_open(), "reports its cover open: close the paper cover"),
    ],
    ids=["offline", "cover_open"],
)
def test_a_printer_that_cannot_print_is_refused(sim, printer, fault, words):
    fault(sim)
    with pytest.raises(PrinterError, match=words) as err:
        printer.print_receipt(REDEMPTION)
    assert sim.port in str(err.value)
    assert sim.received == STATUS_BYTES and sim.receipts == []
    assert not printer.status().ready


# ---- a printer that stops reading --------------------------------------------------------------


def test_silent_printer_fails_the_status_check(sim, printer):
    sim.stall()
    with pytest.raises(PrinterError, match="does not answer status queries") as err:
        printer.print_receipt(REDEMPTION)
    assert "switched on" in str(err.value) and sim.port in str(err.value)
    with pytest.raises(PrinterError, match="does not answer"):
        printer.status()


def test_stall_while_printing_fails_after_the_write_timeout_and_the_reprint_is_whole(sim, printer):
    sim.stall(after_bytes=STATUS_BYTES)  # answers the status check, then stops reading
    with pytest.raises(PrinterError, match="stopped taking data") as err:
        printer.print_receipt(REDEMPTION)
    assert "write timeout 0.5 s" in str(err.value) and "reprint" in str(err.value)
    assert sim.receipts == []
    sim.resume()
    printer.print_receipt(REDEMPTION)  # the caller kept the receipt
    # Bytes that had already left the kernel (here: into the pty's far side) cannot be
    # recalled, so the stalled copy may come out too: at least once, and never mixed up.
    sim.wait_for_receipts(1)
    ok = printer.status()
    printed = sim.receipts
    assert ok.ready and 1 <= len(printed) <= 2
    assert all(p.problems == () and p.text == printed[-1].text for p in printed)
    assert "兑换凭证" in printed[-1].text


def test_stall_with_xon_xoff_hits_the_serial_write_timeout(tmp_path):
    with VirtualPrinter(tmp_path, flow_control="xonxoff") as sim:
        printer = adapter(sim.port, flow_control="xonxoff")
        sim.stall(after_bytes=STATUS_BYTES)  # as an XOFF: the writer's tty stops at once
        with pytest.raises(PrinterError, match=r"write timed out after 0\.5 s") as err:
            printer.print_receipt(REDEMPTION)
        assert isinstance(err.value.__cause__, serial.SerialTimeoutException)
        sim.resume()
        printer.print_receipt(REDEMPTION)
        assert len(sim.wait_for_receipts(1)) == 1
        printer.close()


# ---- ports that are not there ------------------------------------------------------------------


def test_a_missing_port_is_named_in_the_error():
    printer = adapter("/dev/ttyUSB-missing")
    with pytest.raises(PrinterError) as err:
        printer.print_receipt(REDEMPTION)
    assert "printer port /dev/ttyUSB-missing not found" in str(err.value)
    assert "USB cable" in str(err.value)
    assert isinstance(err.value.__cause__, serial.SerialException)
    with pytest.raises(PrinterError, match="/dev/ttyUSB-missing"):
        printer.status()


def test_unplugging_between_prints_gives_a_printer_error_naming_the_port(sim, printer):
    printer.print_receipt(REDEMPTION)
    port = sim.port
    sim.unplug()
    with pytest.raises(PrinterError, match=port) as err:
        printer.print_receipt(REDEMPTION)
    assert "lost the connection" in str(err.value) or "not found" in str(err.value)
    with pytest.raises(PrinterError, match="not found"):
        printer.print_receipt(REDEMPTION)  # the next try reopens the port: it is gone


def test_a_printer_at_another_baud_rate_looks_silent_and_the_message_says_baud(tmp_path):
    with VirtualPrinter(tmp_path, baudrate=9600) as sim:
        printer = adapter(sim.port, baudrate=19200)
        with pytest.raises(PrinterError, match="set to 19200 baud"):
            printer.status()
        assert sim.garbled >= 3 and sim.receipts == []
        printer.close()
        printer = adapter(sim.port, baudrate=9600)
        assert printer.status().ready
        printer.close()


def test_a_receipt_without_a_template_is_a_printer_error_before_any_io(sim, printer):
    class Odd(Receipt):
        pass

    odd = Odd(
        store_name_zh="店", store_name_en="Shop", kiosk_id="k1", printed_at=REDEMPTION.printed_at
    )
    with pytest.raises(PrinterError, match="software fault") as err:
        printer.print_receipt(odd)
    assert isinstance(err.value.__cause__, TypeError)
    assert sim.received == 0


def test_status_and_prints_from_two_threads_do_not_interleave(sim, printer):
    errors: list[BaseException] = []

    def run(action) -> None:
        try:
            for _ in range(5):
                action()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [
        threading.Thread(target=run, args=(lambda: printer.print_receipt(REDEMPTION),)),
        threading.Thread(target=run, args=(printer.status,)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    printed = sim.wait_for_receipts(5)
    assert all(p.problems == () for p in printed)


# ---- status decoding ---------------------------------------------------------------------------


def test_status_bytes_are_told_from_line_noise():
    assert [is_status_byte(b) for b in (0x12, 0x1A, 0x72, 0x16)] == [True] * 4
    assert [is_status_byte(b) for b in (0x00, 0x11, 0x13, 0xFF, 0x92)] == [False] * 5
    assert query(4) == b"\x10\x04\x04"


@pytest.mark.parametrize(
    ("raw", "online", "paper", "cover", "detail"),
    [
        ((0x12, 0x12, 0x12), True, PaperState.OK, False, "ok"),
        ((0x12, 0x12, 0x1E), True, PaperState.NEAR_END, False, "near end"),
        ((0x1A, 0x32, 0x72), False, PaperState.OUT, False, "paper out: load a 80 mm roll"),
        ((0x1A, 0x16, 0x72), False, PaperState.OUT, True, "cover open"),
        ((0x1A, 0x52, 0x12), False, PaperState.OK, False, "cutter jam"),
        ((0x1A, 0x12, 0x12), False, PaperState.OK, False, "offline"),
    ],
)
def test_status_answers_become_an_actionable_status(raw, online, paper, cover, detail):
    status = interpret(RawStatus(*raw), "/dev/ttyUSB0", 80)
    assert (status.online, status.paper, status.cover_open) == (online, paper, cover)
    assert detail in status.detail
    assert status.detail == "ok" or status.detail.startswith("printer on /dev/ttyUSB0")


# ---- make_printer ------------------------------------------------------------------------------


def test_make_printer_for_sim_starts_a_virtual_printer_and_close_stops_it():
    printer = make_printer(PrinterSection(kind="sim", paper_mm=80, write_timeout_s=0.5))
    port = printer.port
    try:
        printer.print_receipt(REDEMPTION)
        assert printer.last_status == PrinterStatus(online=True, paper=PaperState.OK)
    finally:
        printer.close()
    assert not os.path.exists(port)


def test_make_printer_uses_the_given_sim_and_leaves_it_running(sim):
    printer = make_printer(PrinterSection(kind="sim"), sim)
    printer.print_receipt(SAMPLES["coupon"])
    printer.close()
    assert sim.running and len(sim.wait_for_receipts(1)) == 1
    # a late status query (a maintenance check still running) must not open the port again
    with pytest.raises(PrinterError, match="closed"):
        printer.status()
    assert printer._serial is None


def test_make_printer_for_serial_uses_the_configured_port_without_opening_it(sim):
    cfg = PrinterSection(port="/dev/ttyUSB7", baudrate=9600, flow_control="rtscts", paper_mm=80)
    printer = make_printer(cfg)
    assert (printer.port, printer.baudrate, printer.flow_control, printer.paper_mm) == (
        "/dev/ttyUSB7",
        9600,
        "rtscts",
        80,
    )
    with pytest.raises(ValueError, match="kind is"):
        make_printer(cfg, sim)


# ---- the ReceiptPrinter contract, on the virtual printer and (if present) a real one -----------


@pytest.fixture(params=["virtual", "hardware"])
def any_printer(request, tmp_path):
    if request.param == "hardware":
        port = os.environ.get("KIOSK_TEST_PRINTER_PORT")
        if not port:
            pytest.skip("set KIOSK_TEST_PRINTER_PORT=/dev/ttyUSB0 to run against a real printer")
        p = SerialReceiptPrinter(
            port, baudrate=int(os.environ.get("KIOSK_TEST_PRINTER_BAUD", "19200"))
        )
        yield p
        p.close()
        return
    with VirtualPrinter(tmp_path) as sim:
        p = SerialReceiptPrinter(sim.port)
        yield p
        p.close()


def test_contract_status_then_print_then_status(any_printer):
    printer: ReceiptPrinter = any_printer
    assert printer.status().ready
    printer.print_receipt(SAMPLES["selftest"])
    assert printer.status().online
