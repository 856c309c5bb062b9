"""``kiosk-provision update`` on a kiosk folder (--root) with the process service manager: the
real app offscreen on simulators, enrolled with the reference store server on loopback, real
release artifacts (tests/provisioning/update_rig.py). One kiosk for the module, in order:
busy -> nothing changes; a good release -> switched and READY; again -> nothing to change; a
broken release -> rolled back, the previous release READY again."""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

import pytest

from kiosk.services.activity import Activity, ActivityRecord
from provisioning.release import current_version, installed_versions, release_dir
from provisioning.target import Target
from tests.provisioning.ssh_rig import (  # the loopback SSH rig of the fleet tests
    ANSIBLE,
    ansible_env,
    connection,
    needs_ansible,
    needs_sshd,
)
from tests.provisioning.update_rig import (
    BAD,
    GOOD_1,
    GOOD_2,
    READY_TIMEOUT_S,
    REPO,
    build_releases,
    make_kiosk,
    running_pid,
    service_args,
    stop_kiosk,
    store_server,
    update,
)

UPDATE_PLAYBOOK = REPO / "provisioning/fleet/update.yml"


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
    target = make_kiosk(root, releases.good_1, GOOD_1, store)
    yield target
    stop_kiosk(target)


def wait_for(condition, bound_s: float) -> bool:
    deadline = time.monotonic() + bound_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def said(done) -> str:
    return f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"


def test_a_folder_without_a_current_release_is_refused(tmp_path, releases):
    done = update(tmp_path, releases.good_1)
    assert done.returncode == 2, said(done)
    assert "no current release" in done.stderr and "kiosk-provision --release" in done.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_busy_kiosk_is_left_alone(kiosk, releases):
    pid = running_pid(kiosk)
    activity = kiosk.path("/run/kiosk/activity.json")
    # the app's own file, written as the UI starts serving, right after READY=1
    assert wait_for(activity.exists, 60), "the running app wrote no activity file"
    assert json.loads(activity.read_text())["activity"] == "attract"
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
    assert GOOD_1 in installed_versions(kiosk)
    done = update(kiosk.root, releases.bad, "--keep", "2")
    assert done.returncode == 1, said(done)
    assert f"rolled back to {GOOD_2}: the kiosk exited with status" in done.stderr, said(done)
    assert "KioskAppBroken" in done.stderr  # the broken release's last log lines
    assert current_version(kiosk) == GOOD_2
    assert running_pid(kiosk) is not None
    assert (release_dir(kiosk, BAD) / "bin/kiosk").exists()  # kept for inspection
    # --keep 2: the current release and the failed one stay, the oldest goes
    assert installed_versions(kiosk) == [GOOD_2, BAD]
    assert "ROLLBACK FAILED" not in done.stderr


# ---- the fleet: provisioning/fleet/update.yml over SSH on loopback ---------------------------


def fleet_update(
    tmp_path,
    sshd,
    store,
    artifact: Path,
    hosts: dict[str, Target],
    *extra: str,
):
    """ansible-playbook update.yml, hosts in this order (the first is the canary)."""
    args = [*service_args(), "--health-timeout", str(READY_TIMEOUT_S), *extra]
    common = {**connection(sshd, store.url), "kiosk_update_args": args}
    del common["kiosk_provision"]  # the playbook's default: the current release's own
    inventory = {
        name: {**common, "kiosk_root": str(t.root), "kiosk_home": str(t.path("/opt/kiosk"))}
        for name, t in hosts.items()
    }
    path = tmp_path / "inventory.yml"
    path.write_text(json.dumps({"kiosks": {"hosts": inventory}}))
    argv = [ANSIBLE, "-i", str(path), str(UPDATE_PLAYBOOK), "-e", f"release_artifact={artifact}"]
    return subprocess.run(
        argv, capture_output=True, text=True, timeout=900, env=ansible_env(tmp_path)
    )


@needs_ansible
@needs_sshd
def test_the_fleet_rollout_stops_at_a_failed_canary_and_goes_on_after_a_good_one(
    tmp_path,
    sshd,
    store,
    kiosk,
    releases,
):
    # the module's kiosk is on GOOD_2 with BAD installed (the tests above); a second kiosk
    assert current_version(kiosk) == GOOD_2 and BAD in installed_versions(kiosk)
    second = make_kiosk(tmp_path / "root-2", releases.good_1, GOOD_1, store, "store9-k2")
    try:
        bad = fleet_update(tmp_path, sshd, store, releases.bad, {"canary": kiosk, "k2": second})
        out = bad.stdout + bad.stderr
        assert bad.returncode != 0, out
        assert f"rolled back to {GOOD_2}" in out, out
        assert "kiosk-provision update failed on canary (exit 1: rolled back" in out, out
        assert "k2" not in re.findall(r"^(\S+)\s+: ok=", bad.stdout, re.M), out  # never reached
        assert current_version(second) == GOOD_1 and BAD not in installed_versions(second)
        assert current_version(kiosk) == GOOD_2 and running_pid(kiosk) is not None

        good = fleet_update(tmp_path, sshd, store, releases.good_2, {"k2": second, "canary": kiosk})
        out = good.stdout + good.stderr
        assert good.returncode == 0, out
        assert re.search(r"^k2\s+: ok=\d+\s+changed=[1-9]", good.stdout, re.M), out
        assert re.search(r"^canary\s+: ok=\d+\s+changed=1\s", good.stdout, re.M), out  # the copy
        assert f"updated to {GOOD_2}" in out and "nothing to change" in out, out
        assert current_version(second) == GOOD_2 and running_pid(second) is not None

        # a busy kiosk keeps its release, is reported, and is no failure
        pid = running_pid(second)
        activity = second.path("/run/kiosk/activity.json")
        assert wait_for(activity.exists, 60)
        activity.write_text(ActivityRecord(Activity.STAFF, 1.0, pid).to_json())
        busy = fleet_update(tmp_path, sshd, store, releases.good_1, {"k2": second},
                            "--idle-timeout", "1")  # fmt: skip
        out = busy.stdout + busy.stderr
        assert busy.returncode == 0, out
        assert "BUSY: k2 stayed busy and keeps its release" in out, out
        assert "busy: staff on screen" in out, out
        assert current_version(second) == GOOD_2 and running_pid(second) == pid
    finally:
        stop_kiosk(second)
