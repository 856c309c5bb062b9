"""The activity file the running app keeps for `kiosk idle` (kiosk/services/activity.py)."""

from __future__ import annotations

import json

from kiosk.domain.transaction import TxnState
from kiosk.services.activity import (
    Activity,
    ActivityFile,
    ActivityRecord,
    activity_path,
    classify,
)
from kiosk.services.txn_steps import Progress
from kiosk.services.ui_state import Screen, UiState


def test_screens_map_to_what_a_restart_would_cut_off():
    progress = Progress("t-1", TxnState.HELD)
    assert classify(UiState()) == (Activity.ATTRACT, None)
    assert classify(UiState(screen=Screen.MAINTENANCE)) == (Activity.ATTRACT, None)
    assert classify(UiState(screen=Screen.MEMBER)) == (Activity.MEMBER, None)
    assert classify(UiState(screen=Screen.CATALOG)) == (Activity.MEMBER, None)
    assert classify(UiState(screen=Screen.CONFIRM)) == (Activity.MEMBER, None)
    assert classify(UiState(screen=Screen.CONFIRM, busy=True)) == (Activity.TRANSACTION, None)
    assert classify(UiState(screen=Screen.PAYMENT, progress=progress)) == (
        Activity.TRANSACTION,
        "t-1",
    )
    assert classify(UiState(screen=Screen.STAFF)) == (Activity.STAFF, None)
    assert classify(UiState(screen=Screen.DIAGNOSTICS)) == (Activity.STAFF, None)


def test_the_file_is_written_only_when_the_activity_changes(tmp_path):
    clock = iter(range(100, 200)).__next__
    f = ActivityFile(tmp_path / "run" / "activity.json", clock=clock, pid=4242)
    f.start()
    assert json.loads(f.path.read_text()) == {"activity": "attract", "since": 100, "pid": 4242}
    member = UiState(screen=Screen.MEMBER)
    for left in (60.0, 59.0, 58.0):  # the logout countdown ticks: no write
        f.show(UiState(screen=Screen.MEMBER, idle_left_s=left))
    f.show(UiState(screen=Screen.CATALOG))
    assert f.writes == 2
    assert ActivityRecord.from_json(f.path.read_text()).activity is Activity.MEMBER
    f.show(UiState(screen=Screen.CONFIRM, busy=True))
    progress = Progress("t-9", TxnState.DOOR_OPENING)
    f.show(UiState(screen=Screen.RESULT, busy=True, progress=progress))
    f.show(UiState(screen=Screen.RESULT, busy=True, progress=progress))
    record = ActivityRecord.from_json(f.path.read_text())
    assert (record.activity, record.txn_id, record.pid) == (Activity.TRANSACTION, "t-9", 4242)
    assert f.writes == 4
    f.show(member)
    f.show(UiState())
    assert f.writes == 6 and f.current.activity is Activity.ATTRACT
    assert sorted(p.name for p in f.path.parent.iterdir()) == ["activity.json"]  # no temp left
    f.stop()
    assert not f.path.exists()


def test_it_lives_in_the_runtime_folder_when_systemd_gives_one(tmp_path):
    assert activity_path(tmp_path, {}) == tmp_path / "activity.json"
    env = {"RUNTIME_DIRECTORY": "/run/kiosk"}
    assert activity_path(tmp_path, env) == tmp_path.joinpath("/run/kiosk/activity.json")


def test_a_folder_that_cannot_be_written_does_not_stop_the_kiosk(tmp_path, caplog):
    blocker = tmp_path / "file"
    blocker.write_text("")
    f = ActivityFile(blocker / "activity.json", pid=1)
    f.start()
    assert f.writes == 0 and "cannot write the activity file" in caplog.text
