"""``kiosk-provision update`` on a kiosk folder (--root) with the process service manager: the
real app offscreen on simulators, enrolled with the reference store server on loopback, real
release artifacts (tests/provisioning/update_rig.py). One kiosk for the module, in order:
busy -> nothing changes; a good release -> switched and READY; again -> nothing to change; a
broken release -> rolled back, the previous release READY again."""

from __future__ import annotations

import json

import pytest

from kiosk.services.activity import Activity, ActivityRecord
from provisioning.release import current_version, installed_versions, release_dir
from tests.provisioning.update_rig import (
    BAD,
    GOOD_1,
    GOOD_2,
    build_releases,
    make_kiosk,
    running_pid,
    stop_kiosk,
    store_server,
    update,
)


@pytest.fixture(scope="module")
def releases(tmp_path_factory):
    return build_releases(tmp_path_factory.mktemp("releases"))


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    with store_server(tmp_path_factory.mktemp("store")) as server:
        yield server


@pytest.fixture(scope="module")
def kiosk(tmp_path_factory, releases, store):
    root = tmp_path_factory.mktemp("kiosk") / "root"
    target = make_kiosk(root, releases.good_1, GOOD_1, store.url, store.enrollment_code())
    yield target
    stop_kiosk(target)


def said(done) -> str:
    return f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"


def test_a_busy_kiosk_is_left_alone(kiosk, releases):
    pid = running_pid(kiosk)
    activity = kiosk.path("/run/kiosk/activity.json")
    assert json.loads(activity.read_text())["activity"] == "attract"  # the app's own file
    saved = activity.read_text()
    activity.write_text(ActivityRecord(Activity.MEMBER, 1.0, pid).to_json())
    try:
        done = update(kiosk.root, releases.good_2, "--idle-timeout", "1")
    finally:
        activity.write_text(saved)
    assert done.returncode == 3, said(done)
    assert "kiosk busy, nothing changed: busy: a member session since" in done.stderr, said(done)
    assert current_version(kiosk) == GOOD_1 and running_pid(kiosk) == pid
    assert GOOD_2 not in installed_versions(kiosk)


def test_a_good_release_is_switched_to_and_ready(kiosk, releases):
    old_pid = running_pid(kiosk)
    done = update(kiosk.root, releases.good_2)
    assert done.returncode == 0, said(done)
    assert f"updated to {GOOD_2} (READY=1 after" in done.stdout, said(done)
    assert current_version(kiosk) == GOOD_2
    new_pid = running_pid(kiosk)
    assert new_pid is not None and new_pid != old_pid
    log = kiosk.path("/var/log/kiosk-update.log").read_text()
    assert f"current: {GOOD_1}" in log and f"updated to {GOOD_2}" in log

    again = update(kiosk.root, releases.good_2)
    assert again.returncode == 0, said(again)
    assert "nothing to change" in again.stdout
    assert running_pid(kiosk) == new_pid


def test_a_broken_release_is_rolled_back_and_the_previous_one_is_ready(kiosk, releases):
    done = update(kiosk.root, releases.bad)
    assert done.returncode == 1, said(done)
    assert f"rolled back to {GOOD_2}: the kiosk exited with status" in done.stderr, said(done)
    assert "KioskAppBroken" in done.stderr  # the broken release's last log lines
    assert current_version(kiosk) == GOOD_2
    assert running_pid(kiosk) is not None
    assert (release_dir(kiosk, BAD) / "bin/kiosk").exists()  # kept for inspection
    assert "ROLLBACK FAILED" not in done.stderr
