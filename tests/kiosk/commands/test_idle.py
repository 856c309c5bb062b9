"""`kiosk idle`: exit 0 idle, 1 busy, from the activity file and the journal (read-only)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from kiosk.commands.idle import check_idle, pid_alive
from kiosk.domain.transaction import TxnKind, TxnState, advance, new_transaction, to_record
from kiosk.services.activity import Activity, ActivityRecord
from kiosk.storage import tables
from kiosk.storage.journal import Journal

REPO = Path(__file__).parents[3]


@pytest.fixture
def site(tmp_path):
    state, run = tmp_path / "state", tmp_path / "run"
    state.mkdir()
    run.mkdir()
    config = tmp_path / "kiosk.toml"
    config.write_text(
        textwrap.dedent(f"""\
        [kiosk]
        id = "k1"
        state_dir = "{state}"
        [server]
        url = "http://127.0.0.1:9"
        [scanner]
        kind = "sim"
        [printer]
        kind = "sim"
        [locker]
        kind = "sim"
        [[locker.compartments]]
        number = 1
        relay_pin = 5
        sensor_pin = 6
        """)
    )
    return config, state, run


def idle(config: Path, run: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("RUNTIME_DIRECTORY", None)
    argv = [sys.executable, "-m", "kiosk", "--config", str(config), "idle", "--runtime-dir", str(run)]  # fmt: skip
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env)


def write_activity(run: Path, activity: Activity, pid: int, txn_id: str | None = None) -> None:
    record = ActivityRecord(activity, 1_000.0, pid, txn_id)
    (run / "activity.json").write_text(record.to_json())


def put_txn(state: Path, *states: TxnState) -> str:
    txn = new_transaction("7e1a9c2e-0000-4000-8000-000000000001", TxnKind.REDEEM, "m1",
                          points=10, at=1.0, sku="gift", compartment=1)  # fmt: skip
    for n, s in enumerate(states, start=2):
        txn = advance(txn, s, at=float(n))
    with Journal.open(state) as journal:
        journal.put(tables.TXN, txn.txn_id, to_record(txn))
    return txn.txn_id


def test_no_app_and_an_empty_journal_is_idle(site):
    config, _state, run = site
    done = idle(config, run)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("idle: app not running")


def test_a_member_on_screen_of_a_live_app_is_busy_a_dead_pid_is_stale(site):
    config, _state, run = site
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "kiosk"])
    try:
        write_activity(run, Activity.MEMBER, sleeper.pid)
        busy = idle(config, run)
        assert busy.returncode == 1, busy.stdout
        assert busy.stdout.startswith("busy: a member session since ")
        assert f"(pid {sleeper.pid})" in busy.stdout
        write_activity(run, Activity.ATTRACT, sleeper.pid)
        assert idle(config, run).stdout.startswith("idle: attract screen, since ")
        write_activity(run, Activity.MEMBER, sleeper.pid)
    finally:
        sleeper.kill()
        sleeper.wait()
    stale = idle(config, run)
    assert stale.returncode == 0, stale.stdout
    assert f"stale activity file {run / 'activity.json'}: pid {sleeper.pid} is gone" in stale.stdout


def test_an_unfinished_transaction_in_the_journal_is_busy_and_nothing_is_written(site):
    config, state, run = site
    txn_id = put_txn(state, TxnState.HELD, TxnState.DOOR_OPENING)
    before = {p.name: p.read_bytes() for p in state.iterdir()}
    busy = idle(config, run)
    assert busy.returncode == 1
    assert f"busy: transaction {txn_id} in DOOR_OPENING" in busy.stdout
    assert {p.name: p.read_bytes() for p in state.iterdir()} == before  # read-only


def test_finished_transactions_are_not_busy(site):
    _config, state, run = site
    put_txn(state, TxnState.HELD, TxnState.DOOR_OPENING, TxnState.DISPENSED,
            TxnState.CAPTURED, TxnState.PRINTED, TxnState.DONE)  # fmt: skip
    assert check_idle(state, [run], alive=lambda _pid: False).idle


def test_a_restock_session_is_busy_only_while_the_app_runs(site):
    _config, state, run = site
    with Journal.open(state) as journal:
        journal.put(tables.RESTOCK, "r1", {"staff_id": "s7", "state": "active"})
    write_activity(run, Activity.ATTRACT, 77)
    running = check_idle(state, [run], alive=lambda pid: pid == 77)
    assert running.busy == ["restock session r1 of staff s7 (active)"]
    gone = check_idle(state, [run], alive=lambda _pid: False)
    assert gone.idle and any("left from before" in n for n in gone.notes)


def test_pid_alive_knows_itself_and_not_a_reaped_child():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert pid_alive(os.getpid()) is (b"kiosk" in Path("/proc/self/cmdline").read_bytes())
    assert pid_alive(child.pid) is False
