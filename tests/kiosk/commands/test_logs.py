"""``kiosk logs TXN`` on journals written by the real engine (store server on loopback,
simulated locker and printer), read while the kiosk holds the journal's lock; the system log
is a fake journal holding every line the process logged through kiosk.platform.logctx, whatever it
says, read by a fake journalctl that filters as the real one does. Also the log context
itself: TXN= on every line of a transaction, and only there."""

from __future__ import annotations

import argparse
import datetime as dt
import io
import itertools
import logging
import os
import re
import sys
import threading
import time
import types
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from kiosk.commands.doctor import CommandResult
from kiosk.commands.logs import format_story, transaction_story, zone
from kiosk.commands.maintenance import add_subcommands
from kiosk.domain.receipts import RestockLine, RestockSlip
from kiosk.errors import JournalError, KioskError
from kiosk.platform.logctx import (
    JournaldFormatter,
    TxnFilter,
    bind_txn,
    configure_logging,
    current_txn_id,
    journal_stream_is,
    txn_context,
    txn_scope,
)
from kiosk.ports import PaperState
from kiosk.services.txn_steps import Outcome
from kiosk.storage import journal_reader
from kiosk.storage.journal import Journal
from kiosk.storage.journal_reader import read_journal
from tests.kiosk.services.rig import COUPON, KIOSK, MUG, KioskSide

TZ = zone("Asia/Shanghai")


@dataclass(frozen=True)
class Entry:
    at: float  # when it was logged (journald's timestamp)
    unit: str
    message: str  # as journald stores it: TXN= prefix included, no priority


class FakeJournal(logging.Handler):
    """The system journal while a test runs: every line the process logs, from any thread.
    The store server's loggers (storeserver.*) stand for another machine's unit, the rest is
    unit kiosk."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(JournaldFormatter(level_prefix=False))
        self.addFilter(TxnFilter())
        self.entries: list[Entry] = []

    def emit(self, record: logging.LogRecord) -> None:
        unit = "storeserver" if record.name.partition(".")[0] == "storeserver" else "kiosk"
        for line in self.format(record).splitlines():  # journald: one entry per line
            self.entries.append(Entry(record.created, unit, line))

    def messages(self, unit: str, start: float, end: float) -> list[str]:
        """What ``unit`` logged from ``start`` to ``end``."""
        return [e.message for e in self.entries if e.unit == unit and start <= e.at <= end]


@pytest.fixture
def journal():
    fake = FakeJournal()
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(fake)
    root.setLevel(logging.INFO)
    yield fake
    root.removeHandler(fake)
    root.setLevel(old_level)


class FakeJournalctl:
    """``journalctl`` on a FakeJournal, with the real one's filters for what ``kiosk logs``
    passes: ``-u`` (unit), ``--since @EPOCH``, ``--grep`` (a regex on the message, ignoring
    case when it has no capitals, as journalctl's smart case does). Whether a line carries
    the id is the kiosk's doing, not the fake's: any other option is refused."""

    def __init__(self, journal: FakeJournal | None = None, result: CommandResult | None = None):
        self.journal, self.result = journal, result
        self.calls: list[list[str]] = []

    def __call__(self, argv) -> CommandResult:
        self.calls.append(list(argv))
        if self.result is not None:
            return self.result
        assert argv[0] == "journalctl"
        opts: dict[str, str] = {}
        args = iter(argv[1:])
        for arg in args:
            if arg != "--no-pager":
                assert arg in ("-o", "-u", "--since", "--grep"), f"fake journalctl: {arg}?"
                opts[arg] = next(args)
        assert opts.pop("-o") == "short-iso"
        since = float(opts["--since"].removeprefix("@")) if "--since" in opts else 0.0
        pattern = opts.get("--grep", "")
        grep = re.compile(pattern, 0 if pattern != pattern.lower() else re.IGNORECASE)
        lines = [
            f"{dt.datetime.fromtimestamp(e.at, TZ):%Y-%m-%dT%H:%M:%S%z} pi {e.unit}[512]: "
            f"{e.message}"
            for e in (self.journal.entries if self.journal else [])
            if e.unit == opts.get("-u", e.unit) and e.at >= since and grep.search(e.message)
        ]
        if not lines:
            return CommandResult(1, "-- No entries --\n", "")
        return CommandResult(0, "\n".join(lines) + "\n", "")


def shown(story) -> list[str]:
    """The story's system log lines without journalctl's time, host and unit."""
    return [line.split("]: ", 1)[1] for line in story.log_lines]


def redeem_as(kiosk: KioskSide, txn_id: str):
    """A redemption with a known id (the engine binds it to the flow's log lines itself)."""
    kiosk.engine.new_id = lambda: txn_id
    return kiosk.engine.redeem(kiosk.member("M0002"), MUG)


def files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def test_a_coupon_story_names_the_code_by_its_last_4_characters_only(kiosk, journal):
    result = kiosk.engine.redeem(kiosk.member("M0002"), COUPON)
    code = result.ctx.coupon_code
    kiosk.printer.wait_for_receipts(1)
    story = transaction_story(
        kiosk.folder / "state", result.txn.txn_id, runner=FakeJournalctl(journal)
    )
    text = format_story(story, TZ)
    assert f"coupon: …{code[-4:]} (sha256 " in text and code not in text


def test_a_jammed_door_story_read_while_the_kiosk_holds_the_journal(kiosk, journal):
    kiosk.sim.jam(1)
    kiosk.printer.set_paper(PaperState.OUT)
    txn_id = str(uuid.uuid4())
    start = time.time()
    result = redeem_as(kiosk, txn_id)
    end = time.time()
    assert result.outcome is Outcome.NEEDS_CHECK and result.queued
    logging.getLogger("kiosk.ui").info("idle again")  # after the flow: no TXN
    state = kiosk.folder / "state"
    before = files(state)
    journalctl = FakeJournalctl(journal)

    story = transaction_story(state, txn_id, runner=journalctl)  # the journal stays open

    assert files(state) == before, "reading the journal must not write to it"
    assert story.record["state"] == "VOIDED" and story.record["void_reason"].startswith(
        "door_jammed"
    )
    assert list(story.receipts) == [f"{txn_id}:voucher"]
    assert list(story.flags) == ["1"] and [r["kind"] for r in story.events.values()] == [
        "needs_check"
    ]
    (argv,) = journalctl.calls
    assert argv[:8] == [
        "journalctl",
        "-o",
        "short-iso",
        "--no-pager",
        "-u",
        "kiosk",
        "--grep",
        txn_id,
    ]
    assert argv[8] == "--since" and argv[9].startswith("@")
    text = format_story(story, TZ)
    order = ["NEW", "HELD", "DOOR_OPENING", "NEEDS_CHECK", "VOIDING", "VOIDED"]
    positions = [
        text.index(f"  {s} ") if f"  {s} " in text else text.index(f"  {s}\n") for s in order
    ]
    assert positions == sorted(positions), text
    assert "+08:00" in text and "void reason: door_jammed" in text
    assert "points returned: 800" in text
    assert "receipts waiting to print:\n  voucher queued" in text and "paper" in text
    assert "compartment 1 since" in text and "needs_check" in text
    assert f"TXN={txn_id} kiosk.services.txn_steps: txn {txn_id} HELD -> DOOR_OPENING" in text
    assert "idle again" not in text
    # Every line the kiosk logged while the flow ran carries the id, the drivers' too (they
    # do not name it); so the system log part shows exactly those lines.
    flow = journal.messages("kiosk", start, end)
    untagged = [m for m in flow if not m.startswith(f"TXN={txn_id} ")]
    assert len(flow) >= 10 and not untagged, untagged
    assert any("drivers.locker.gpio_locker: compartment 1: door did not" in m for m in flow)
    assert any("drivers.printer." in m for m in flow)
    assert shown(story) == flow
    # the loopback store server logs from its own threads: never with the kiosk's id
    server = journal.messages("storeserver", start, end)
    assert server and not [m for m in server if "TXN=" in m]


def test_a_reprint_outside_the_flow_carries_its_transactions_id(kiosk, journal):
    kiosk.printer.set_paper(PaperState.OUT)
    txn_id = str(uuid.uuid4())
    assert redeem_as(kiosk, txn_id).queued  # dispensed; the receipt waits for paper
    slip = RestockSlip(
        store_name_zh="测试门店", store_name_en="Test store", kiosk_id=KIOSK,
        printed_at=dt.datetime.now(TZ), staff_id="S001", lines=(RestockLine(1, None, 2, 0),),
    )  # fmt: skip
    kiosk.receipts.queue("restock:r1", slip, "paper out")  # no transaction's
    kiosk.printer.set_paper(PaperState.OK)
    assert current_txn_id() is None  # staff reprint from their screen: no transaction runs
    start = time.time()
    assert kiosk.receipts.reprint_all().printed == 2
    end = time.time()

    lines = journal.messages("kiosk", start, end)
    mine = [m for m in lines if m.startswith(f"TXN={txn_id} ")]
    assert f"TXN={txn_id} kiosk.services.receipt_queue: receipt {txn_id}:receipt reprinted" in mine
    assert any("drivers.printer." in m for m in mine)  # the printer's lines too
    assert [m for m in lines if "restock:r1 reprinted" in m] == [
        "kiosk.services.receipt_queue: receipt restock:r1 reprinted"
    ]
    assert current_txn_id() is None
    story = transaction_story(kiosk.folder / "state", txn_id, runner=FakeJournalctl(journal))
    assert story.receipts == {} and set(mine) <= set(shown(story))


def test_a_finished_redemption_by_prefix_through_the_command_line(kiosk, journal, capsys):
    txn_id = str(uuid.uuid4())
    assert redeem_as(kiosk, txn_id).outcome is Outcome.DISPENSED
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", type=Path, default=Path("/nonexistent/kiosk.toml"))
    add_subcommands(parser.add_subparsers(dest="command"))
    args = parser.parse_args(
        ["logs", txn_id[:8].upper(), "--state-dir", str(kiosk.folder / "state"), "--timezone", "Asia/Shanghai"]
    )  # fmt: skip
    assert args.func(args, runner=FakeJournalctl(journal)) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"transaction {txn_id}\n  redeem (online), member M0002")
    states = [ln.split()[2] for ln in out.split("states (Asia/Shanghai):\n")[1].splitlines()[:7]]
    assert states == ["NEW", "HELD", "DOOR_OPENING", "DISPENSED", "CAPTURED", "PRINTED", "DONE"]
    assert "hold id:" in out and "balance after capture: 1900" in out
    assert "receipts waiting" not in out  # it printed


def test_the_config_gives_the_state_folder_and_a_bad_one_says_what_to_pass(tmp_path):
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", type=Path, default=tmp_path / "missing.toml")
    add_subcommands(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["logs", "12345678"])
    with pytest.raises(KioskError, match="--state-dir"):
        args.func(args, runner=FakeJournalctl())


def test_unknown_ambiguous_and_malformed_ids(kiosk, capsys):
    state = kiosk.folder / "state"
    story = transaction_story(state, "0123abcd", runner=FakeJournalctl())
    assert not story.found and "kept 7 days" in format_story(story)
    with pytest.raises(KioskError, match="not a transaction id"):
        transaction_story(state, "M0002; rm -rf /", runner=FakeJournalctl())
    for n in range(2):
        kiosk.journal.put("txn", f"abcdef12-0000-4000-8000-00000000000{n}", {"state": "DONE"})
    with pytest.raises(KioskError, match="matches 2 transactions"):
        transaction_story(state, "abcdef12", runner=FakeJournalctl())


@pytest.mark.parametrize(
    ("result", "note"),
    [
        (CommandResult(127, "", "journalctl: command not found"), "journalctl not found"),
        (
            CommandResult(0, "-- No entries --\n", "Hint: You are currently not seeing messages from other users and the system.\n"),
            "systemd-journal group",
        ),
        (CommandResult(1, "", "Failed to open journal: Bad message\n"), "Bad message"),
        (CommandResult(1, "-- No entries --\n", ""), None),
    ],
)  # fmt: skip
def test_system_log_trouble_is_a_note(kiosk, result, note):
    txn_id = str(uuid.uuid4())
    redeem_as(kiosk, txn_id)
    story = transaction_story(kiosk.folder / "state", txn_id, runner=FakeJournalctl(result=result))
    assert story.found and story.log_lines == []
    if note is None:  # exit 1 alone: nothing matched, nothing wrong
        assert story.notes == []
    else:
        assert [n for n in story.notes if note in n] and f"note: {story.notes[0]}" in format_story(
            story
        )


def test_read_only_view_matches_the_journal_through_compactions_and_a_torn_tail(tmp_path):
    folder = tmp_path / "j"
    with Journal.open(folder, compact_min_bytes=2048) as j:
        for i in range(300):
            j.put("t", f"k{i % 37}", {"i": i, "pad": "x" * (i % 50)})
            if i % 7 == 0:
                j.delete("t", f"k{(i * 3) % 37}")
        j.put("u", "one", {"v": 1})
        assert j.stats().compactions > 0
        view = read_journal(folder)
        assert view.tables == {name: j.all(name) for name in j.tables()}
        assert view.seq == j.stats().seq
        with open(folder / "journal.log", "ab") as f:
            f.write(b'0000002a 1234abcd {"seq":')  # a step being written right now
        before = files(folder)
        assert read_journal(folder).tables == view.tables
        assert files(folder) == before


def test_a_compaction_between_the_two_file_reads_leaves_no_gap(tmp_path, monkeypatch):
    """The worst interleaving, on purpose: the kiosk compacts and writes on right after each
    file is read. Reading the snapshot first would apply the new log to the old snapshot."""
    folder = tmp_path / "j"
    with Journal.open(folder, compact_min_bytes=10**9) as j:
        for i in range(80):
            j.put("n", str(i), {"i": i})
            if i == 49:
                j.compact()
        counter = itertools.count(80)

        def kiosk_writes_on() -> None:
            j.compact()
            for _ in range(5):
                n = next(counter)
                j.put("n", str(n), {"i": n})

        def after(fn):
            def wrapped(*args):
                result = fn(*args)
                kiosk_writes_on()
                return result

            return wrapped

        monkeypatch.setattr(journal_reader, "read_snapshot", after(journal_reader.read_snapshot))
        monkeypatch.setattr(journal_reader, "scan_frames", after(journal_reader.scan_frames))
        view = read_journal(folder)
        assert view.seq >= 80
        assert set(view.tables["n"]) == {str(i) for i in range(view.seq)}


def test_reads_racing_compactions_are_always_consistent(tmp_path):
    """Every read, whenever it falls between the writer's appends and compactions, sees
    exactly the first ``seq`` puts: never a gap, never a half-applied compaction."""
    folder = tmp_path / "j"
    with Journal.open(folder, compact_min_bytes=1024) as j:
        writer = threading.Thread(
            target=lambda: [j.put("n", str(i), {"i": i}) for i in range(1500)]
        )
        writer.start()
        reads, compactions_seen = 0, set()
        try:
            while writer.is_alive():
                view = read_journal(folder)
                rows = view.tables.get("n", {})
                assert set(rows) == {str(i) for i in range(view.seq)}, view.seq
                compactions_seen.add(j.stats().compactions)
                reads += 1
        finally:
            writer.join()
        assert reads >= 3 and len(compactions_seen) >= 2, (reads, compactions_seen)


def test_a_quarantined_journal_still_tells_the_story(kiosk):
    txn_id = str(uuid.uuid4())
    redeem_as(kiosk, txn_id)
    kiosk.journal.put("later", "x", {"v": 1})
    kiosk.journal.close()
    log_path = kiosk.folder / "state" / "journal.log"
    data = bytearray(log_path.read_bytes())
    data[-5] ^= 0x01  # the last frame's payload: a bit flip, newline intact
    log_path.write_bytes(bytes(data))
    kiosk.reopen()
    assert kiosk.journal.safe_mode
    story = transaction_story(kiosk.folder / "state", txn_id, runner=FakeJournalctl())
    assert story.record is not None and story.record["state"] == "DONE"
    assert story.found_in.name.startswith("journal-corrupt-")
    assert "checksum mismatch" in format_story(story)


def test_a_corrupt_live_journal_is_an_error_that_points_at_the_doctor(tmp_path):
    with Journal.open(tmp_path) as j:
        for i in range(3):
            j.put("t", str(i), {"i": i})
    data = bytearray((tmp_path / "journal.log").read_bytes())
    data[30] ^= 0x01  # inside the first frame, with whole frames after it
    (tmp_path / "journal.log").write_bytes(bytes(data))
    with pytest.raises(JournalError, match=r"checksum mismatch.*kiosk doctor"):
        read_journal(tmp_path)
    assert read_journal(tmp_path, tolerant=True).problem == "checksum mismatch"


def test_a_missing_state_folder_says_which_setting(tmp_path):
    with pytest.raises(JournalError, match="--state-dir"):
        transaction_story(tmp_path / "nope", "12345678", runner=FakeJournalctl())


def test_unreadable_journal_says_how_to_run_it(tmp_path, monkeypatch):
    def denied(self):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "read_bytes", denied)
    with pytest.raises(JournalError, match="sudo kiosk logs"):
        read_journal(tmp_path)


# ---- kiosk.platform.logctx ---------------------------------------------------------------------------


def formatted(record_fn, fmt=None) -> str:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(fmt or JournaldFormatter())
    handler.addFilter(TxnFilter())
    log = logging.getLogger("kiosk.test.logctx")
    log.addHandler(handler)
    log.setLevel(logging.DEBUG)
    log.propagate = False
    try:
        record_fn(log)
    finally:
        log.removeHandler(handler)
    return stream.getvalue()


def test_txn_context_tags_lines_inside_only_and_nests():
    def run(log):
        log.info("before")
        with txn_context("aaaa"):
            log.warning("in a")
            with txn_context("bbbb"):
                log.error("in b")
            log.info("back in a")
        log.info("after")

    assert formatted(run).splitlines() == [
        "<6>kiosk.test.logctx: before",
        "<4>TXN=aaaa kiosk.test.logctx: in a",
        "<3>TXN=bbbb kiosk.test.logctx: in b",
        "<6>TXN=aaaa kiosk.test.logctx: back in a",
        "<6>kiosk.test.logctx: after",
    ]


def test_other_threads_do_not_inherit_the_transaction():
    def run(log):
        with txn_context("cccc"):
            t = threading.Thread(target=lambda: log.info("sync thread"))
            t.start()
            t.join()
            log.info("engine thread")

    out = formatted(run)
    assert (
        "<6>kiosk.test.logctx: sync thread" in out and "TXN=cccc kiosk.test.logctx: engine" in out
    )


def test_scope_binds_an_id_learnt_inside_and_forgets_it_after():
    def run(log):
        with txn_scope():
            log.info("taking the lock")
            bind_txn("dddd")
            log.info("saved NEW")
        log.info("next member")

    assert [ln.split(" ", 1)[0] for ln in formatted(run).splitlines()] == [
        "<6>kiosk.test.logctx:", "<6>TXN=dddd", "<6>kiosk.test.logctx:",
    ]  # fmt: skip
    bind_txn("eeee")  # outside a scope: nothing to bind
    assert current_txn_id() is None


def test_every_traceback_line_carries_the_prefix():
    def run(log):
        with txn_context("ffff"):
            try:
                raise ValueError("door sensor\nsecond line")
            except ValueError:
                log.exception("door failed")

    lines = formatted(run).splitlines()
    assert len(lines) > 4 and all(ln.startswith("<3>TXN=ffff kiosk.test.logctx: ") for ln in lines)
    assert any("ValueError: door sensor" in ln for ln in lines)


def test_configure_logging_for_journald_and_for_a_terminal(tmp_path):
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    try:
        with open(tmp_path / "stream", "w+") as stream:
            st = os.fstat(stream.fileno())
            env = {"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"}
            assert journal_stream_is(stream, env) and not journal_stream_is(stream, {})
            logging.basicConfig(level=logging.WARNING)  # what kiosk.__main__.main does first
            configure_logging("INFO", stream=stream, env=env, native=False)
            configure_logging("INFO", stream=stream, env=env, native=False)  # replaces, not adds
            assert [h.get_name() for h in root.handlers] == ["kiosk-logctx"]
            with txn_context("abab"):
                logging.getLogger("kiosk.x").warning("paper low")
            logging.getLogger("kiosk.x").debug("hidden at INFO")
            stream.seek(0)
            assert stream.read() == "<4>TXN=abab kiosk.x: paper low\n"
        terminal = io.StringIO()
        configure_logging("DEBUG", stream=terminal, env={})
        logging.getLogger("kiosk.x").debug("on a desk")
        line = terminal.getvalue()
        assert not line.startswith("<") and " DEBUG kiosk.x: on a desk" in line
    finally:
        for h in list(root.handlers):
            if h.get_name() == "kiosk-logctx":
                root.removeHandler(h)
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])


def test_python_systemd_is_used_when_present(tmp_path, monkeypatch):
    sent = []

    class JournalHandler(logging.Handler):
        def __init__(self, **fields):
            super().__init__()
            self.fields = fields

        def emit(self, record):
            sent.append((self.format(record), self.fields))

    fake = types.ModuleType("systemd.journal")
    fake.JournalHandler = JournalHandler
    monkeypatch.setitem(sys.modules, "systemd", types.ModuleType("systemd"))
    monkeypatch.setitem(sys.modules, "systemd.journal", fake)
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    try:
        with open(tmp_path / "stream", "w") as stream:
            st = os.fstat(stream.fileno())
            handler = configure_logging("INFO", stream=stream, env={"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"})  # fmt: skip
        assert isinstance(handler, JournalHandler)
        with txn_context("cdcd"):
            logging.getLogger("kiosk.y").info("captured")
        assert sent == [("TXN=cdcd kiosk.y: captured", {"SYSLOG_IDENTIFIER": "kiosk"})]
    finally:
        root.removeHandler(handler)
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
