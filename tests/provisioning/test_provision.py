"""kiosk-provision into a temporary --root: twice (the second run changes nothing), the modes
and owners, the dry run (the tree is byte-for-byte and mtime-for-mtime the same), bad
answers, SSH hardening, and enrollment against the real store server on loopback.

As root (CI) the accounts are made by useradd/groupadd --prefix and files are chown'ed; the
same tests also run the non-root path (accounts written directly, owners not set) by making
the provisioner believe it is not root.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
import subprocess
import tomllib
from pathlib import Path

import pytest

from kiosk.config import load_config
from provisioning import accounts, cli, packages
from provisioning.accounts import KIOSK_GROUPS, AccountsStep, read_accounts
from provisioning.answers import render_toml
from provisioning.packages import KIOSK_PACKAGES, PackagesStep
from provisioning.steps import Finding, Outcome, Step, run_plan, todo
from provisioning.target import ProvisionError, Target, which

REPO = Path(__file__).parents[2]
BASE = ["--kiosk-id", "store1-k1", "--server-url", "http://127.0.0.1:9", "--sim"]
BASE += ["--compartment", "1:5:6", "--compartment", "2:13:19"]
IS_ROOT = os.geteuid() == 0


@pytest.fixture(params=["root", "not-root"] if IS_ROOT else ["not-root"])
def as_root(request, monkeypatch) -> bool:
    """Run as what we are, and (when root) again as if not root."""
    if request.param == "not-root":
        monkeypatch.setattr(os, "geteuid", lambda: 1000)
    return request.param == "root"


@pytest.fixture
def provision(capsys):
    """Run kiosk-provision in-process: (exit status, stdout, stderr)."""

    def call(*args: str | Path) -> tuple[int, str, str]:
        try:
            status = cli.main([str(a) for a in args])
        except SystemExit as exc:  # argparse errors
            status = exc.code
        out = capsys.readouterr()
        return status, out.out, out.err

    return call


def results(out: str) -> dict[str, str]:
    """step name -> result word, from the report table."""
    rows = re.findall(
        r"^(\w+)\s+(changed|unchanged|skipped|FAILED|will change|not run)\s", out, re.M
    )
    return dict(rows)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def snapshot(root: Path) -> dict[str, tuple] | None:
    """Every entry under root: mode, owner, mtime and content (or link target)."""
    if not root.exists():
        return None
    tree = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(folder) / name
            st = path.lstat()
            if path.is_symlink():
                what = os.readlink(path)
            elif path.is_file():
                what = hashlib.sha256(path.read_bytes()).hexdigest()
            else:
                what = "dir"
            tree[str(path.relative_to(root))] = (
                st.st_mode,
                st.st_uid,
                st.st_gid,
                st.st_mtime_ns,
                what,
            )
    return tree


def test_twice_into_a_root(tmp_path, provision, as_root):
    root = tmp_path / "image"
    status, out, err = provision("--root", root, *BASE)
    assert status == 0, out + err
    steps = results(out)
    assert {s for s, r in steps.items() if r == "changed"} == {
        "accounts",
        "folders",
        "config",
        "units",
        "commands",
    }, out
    assert steps["enroll"] == steps["ssh"] == steps["packages"] == steps["release"] == "skipped"
    assert "self-test passed" in out

    status, out, err = provision("--root", root, *BASE)
    assert status == 0, out + err
    assert set(results(out).values()) <= {"unchanged", "skipped"}, out
    assert "kiosk-provision: nothing to change (5 unchanged, 4 skipped)" in out
    assert re.search(
        r"^commands +unchanged +kiosk, kiosk-provision in /usr/local/bin ->", out, re.M
    )
    for command in ("kiosk", "kiosk-provision"):  # sudo kiosk doctor: on sudo's secure_path
        assert os.readlink(root / "usr/local/bin" / command) == f"/opt/kiosk/current/bin/{command}"

    cfg = load_config(root / "etc/kiosk/kiosk.toml")
    assert (cfg.kiosk.id, cfg.server.url, cfg.locker.kind) == (
        "store1-k1",
        "http://127.0.0.1:9",
        "sim",
    )
    assert [c.relay_pin for c in cfg.locker.compartments] == [5, 13]
    assert mode(root / "etc/kiosk") == 0o750
    assert mode(root / "var/lib/kiosk") == 0o700
    assert mode(root / "etc/kiosk/kiosk.toml") == 0o640
    assert mode(root / "etc/systemd/system/kiosk.service") == 0o644
    for unit in (REPO / "systemd").glob("*.service"):
        assert (root / "etc/systemd/system" / unit.name).read_bytes() == unit.read_bytes()
    wants = root / "etc/systemd/system/multi-user.target.wants/kiosk.service"
    assert os.readlink(wants) == "/etc/systemd/system/kiosk.service"

    accounts = read_accounts(Target(root))
    kiosk = accounts.users["kiosk"]
    assert kiosk.home == "/var/lib/kiosk" and kiosk.shell == "/usr/sbin/nologin"
    assert all(accounts.in_group("kiosk", g) for g in KIOSK_GROUPS)
    if as_root:
        owners = {
            p: (root / p).stat() for p in ("etc/kiosk", "etc/kiosk/kiosk.toml", "var/lib/kiosk")
        }
        assert (owners["etc/kiosk"].st_uid, owners["etc/kiosk"].st_gid) == (0, kiosk.gid)
        assert (owners["etc/kiosk/kiosk.toml"].st_uid, owners["etc/kiosk/kiosk.toml"].st_gid) == (
            0,
            kiosk.gid,
        )
        assert (owners["var/lib/kiosk"].st_uid, owners["var/lib/kiosk"].st_gid) == (
            kiosk.uid,
            kiosk.gid,
        )
    else:
        assert "owners not set: not running as root" in out


def test_drift_is_repaired_then_stable(tmp_path, provision):
    root = tmp_path / "image"
    assert provision("--root", root, *BASE, "--skip", "selftest")[0] == 0
    (root / "etc/kiosk/kiosk.toml").chmod(0o644)
    (root / "var/lib/kiosk").chmod(0o755)
    (root / "etc/systemd/system/kiosk.service").write_text("[Service]\n")

    status, out, _ = provision("--root", root, "--skip", "selftest")  # flags not needed again
    assert status == 0
    assert {s for s, r in results(out).items() if r == "changed"} == {"folders", "config", "units"}
    assert mode(root / "etc/kiosk/kiosk.toml") == 0o640
    assert (root / "etc/systemd/system/kiosk.service").read_bytes() == (
        REPO / "systemd/kiosk.service"
    ).read_bytes()
    assert "nothing to change" in provision("--root", root, "--skip", "selftest")[1]


def test_command_links_are_repaired_and_a_foreign_file_is_left_alone(tmp_path, provision):
    root = tmp_path / "image"
    assert provision("--root", root, *BASE, "--skip", "selftest")[0] == 0
    bin_dir = root / "usr/local/bin"
    (bin_dir / "kiosk").unlink()
    (bin_dir / "kiosk").symlink_to("/usr/lib/somewhere-else/kiosk")
    status, out, _ = provision("--root", root, "--skip", "selftest")
    assert status == 0 and {s for s, r in results(out).items() if r == "changed"} == {"commands"}
    assert os.readlink(bin_dir / "kiosk") == "/opt/kiosk/current/bin/kiosk"
    assert os.readlink(bin_dir / "kiosk-provision") == "/opt/kiosk/current/bin/kiosk-provision"
    assert "/opt/kiosk/current/bin/kiosk" in out and f"not in {root} yet" in out  # no venv there
    assert not list(bin_dir.glob(".*"))  # no temporary link left behind

    venv_bin = root / "opt/kiosk/current/bin"  # the project installed in the image: no note
    venv_bin.mkdir(parents=True)
    for command in ("kiosk", "kiosk-provision"):
        (venv_bin / command).write_text("#!/bin/sh\n")
    status, out, _ = provision("--root", root, "--skip", "selftest")
    assert "nothing to change" in out and "commands" in results(out)
    assert "kiosk-provision in /usr/local/bin -> /opt/kiosk/current/bin (on sudo's PATH)\n" in out

    (bin_dir / "kiosk-provision").unlink()
    (bin_dir / "kiosk-provision").write_text("#!/bin/sh\necho mine\n")
    status, out, _ = provision("--root", root, "--skip", "selftest")
    assert status == 1 and results(out)["commands"] == "FAILED"
    assert "/usr/local/bin/kiosk-provision is in the way and is not a link" in out
    assert (bin_dir / "kiosk-provision").read_text() == "#!/bin/sh\necho mine\n"


def test_the_links_point_where_the_units_run_the_kiosk_and_sudo_finds_them():
    from provisioning.commands import LINK_DIR, VENV_BIN

    unit = (REPO / "systemd/kiosk.service").read_text()
    assert re.search(rf"^ExecStart={re.escape(VENV_BIN)}/kiosk ", unit, re.M)
    sudoers = Path("/etc/sudoers")
    if not os.access(sudoers, os.R_OK):
        pytest.skip("no readable /etc/sudoers here: secure_path not checked")
    found = re.search(r"^Defaults\s+secure_path\s*=\s*\"?([^\"\n]+)", sudoers.read_text(), re.M)
    assert found is None or LINK_DIR in found[1].split(":"), found[1]


def test_a_changed_flag_changes_only_that_key_and_keeps_the_old_file(tmp_path, provision):
    root = tmp_path / "image"
    assert provision("--root", root, *BASE, "--skip", "selftest")[0] == 0
    status, out, _ = provision(
        "--root", root, "--server-url", "https://store.example.com", "--skip", "selftest"
    )
    assert status == 0 and results(out)["config"] == "changed"
    cfg = load_config(root / "etc/kiosk/kiosk.toml")
    assert (cfg.kiosk.id, cfg.server.url) == ("store1-k1", "https://store.example.com")
    assert load_config(root / "etc/kiosk/kiosk.toml.bak").server.url == "http://127.0.0.1:9"


def test_server_pins_are_written_and_replace_an_old_certificate_pin(tmp_path, provision):
    pins = ["sha256/" + "A" * 43 + "=", "sha256/" + "B" * 43 + "="]
    root = tmp_path / "image"
    assert provision("--root", root, *BASE, "--skip", "selftest")[0] == 0
    path = root / "etc/kiosk/kiosk.toml"
    path.write_text(
        path.read_text().replace("[server]\n", '[server]\npin_sha256 = "' + "ab" * 32 + '"\n')
    )
    assert load_config(path).server.pin_sha256 == "ab" * 32
    flags = ("--server-pin", pins[0], "--server-pin", pins[1])
    status, out, _ = provision("--root", root, *flags, "--skip", "selftest")
    assert status == 0 and results(out)["config"] == "changed", out
    cfg = load_config(path)
    assert cfg.server.pins == tuple(pins) and cfg.server.pin_sha256 is None


def test_dry_run_prints_the_plan_and_changes_nothing(tmp_path, provision):
    fresh = tmp_path / "fresh"
    status, out, _ = provision("--root", fresh, *BASE, "--dry-run")
    assert status == 0
    assert not fresh.exists()
    assert "dry run, nothing is changed: plan for" in out
    steps = results(out)
    assert {s for s, r in steps.items() if r == "will change"} == {
        "accounts",
        "folders",
        "config",
        "units",
        "commands",
    }
    assert "create system user kiosk" in out and "enable kiosk-doctor.timer, kiosk.service" in out
    assert "link /usr/local/bin/kiosk -> /opt/kiosk/current/bin/kiosk" in out
    assert "5 step(s) would change; nothing was changed; then: self-test" in out

    root = tmp_path / "image"
    assert provision("--root", root, *BASE, "--skip", "selftest")[0] == 0
    (root / "var/lib/kiosk").chmod(0o755)
    before = snapshot(root)
    status, out, _ = provision(
        "--root", root, "--server-url", "https://other.example.com", "--dry-run"
    )
    assert status == 0
    assert snapshot(root) == before
    steps = results(out)
    assert steps["config"] == steps["folders"] == "will change"
    assert steps["accounts"] == steps["units"] == steps["commands"] == "unchanged"
    assert "/var/lib/kiosk has mode 0755, not 0700" in out


@pytest.mark.parametrize(
    ("answers", "named"),
    [
        (
            '[kiosk]\nid = "store1-k1"\n[server]\nurl = "http://127.0.0.1:9"\n[printer]\nbaudrate = 1234\n',
            "printer.baudrate = 1234",
        ),
        ('[kiosk]\nidd = "store1-k1"\n', "kiosk.idd: unknown key (did you mean 'id'?)"),
        ('[kiosk]\nid = "store1-k1"\n[server]\nurl = "http://store.example.com"\n', "server.url"),
        ("[kiosk\n", "TOML syntax error"),
    ],
)
def test_a_bad_answers_file_is_refused_with_the_key_named(tmp_path, provision, answers, named):
    path = tmp_path / "answers.toml"
    path.write_text(answers)
    status, _, err = provision("--root", tmp_path / "image", "--answers", path)
    assert status == 2
    assert named in err and str(path) in err
    assert not (tmp_path / "image").exists()


def test_missing_configuration_and_bad_flags_are_usage_errors(tmp_path, provision):
    status, _, err = provision("--root", tmp_path / "image")
    assert status == 2 and "no configuration: pass --kiosk-id" in err
    status, _, err = provision(
        "--root", tmp_path / "image", "--kiosk-id", "k1", "--server-url", "http://127.0.0.1:9"
    )
    assert status == 2 and "locker.compartments is missing" in err
    status, _, err = provision("--root", tmp_path / "image", *BASE, "--compartment", "1-5-6")
    assert status == 2 and "NUMBER:RELAY_PIN:SENSOR_PIN" in err
    status, _, err = provision("--root", tmp_path / "image", *BASE, "--re-enroll")
    assert status == 2 and "--re-enroll needs --enroll-code" in err
    assert not (tmp_path / "image").exists()


def test_answers_file_is_kept_verbatim_and_flags_override_it(tmp_path, provision):
    answers = tmp_path / "answers.toml"
    text = (REPO / "kiosk/kiosk.example.toml").read_text()
    answers.write_text(text)
    root = tmp_path / "image"
    assert provision("--root", root, "--answers", answers, "--skip", "selftest")[0] == 0
    assert (root / "etc/kiosk/kiosk.toml").read_text() == text  # comments and all

    status, out, _ = provision(
        "--root", root, "--answers", answers, "--kiosk-id", "store9-k2", "--skip", "selftest"
    )
    assert status == 0 and results(out)["config"] == "changed"
    cfg = load_config(root / "etc/kiosk/kiosk.toml")
    assert cfg.kiosk.id == "store9-k2" and cfg.kiosk.store_name_zh == "示范门店"


def test_rendered_toml_says_exactly_what_was_given():
    data = {
        "kiosk": {
            "id": "k1",
            "store_name_zh": '示范"门店"\\ \t\x7f',
            "safe_mode_on_corrupt_journal": False,
        },
        "server": {"url": "http://127.0.0.1:9", "read_timeout_s": 2.5, "connect_timeout_s": 3},
        "locker": {"kind": "sim", "compartments": [{"number": 1, "relay_pin": 5, "sensor_pin": 6}]},
    }
    assert tomllib.loads(render_toml(data)) == data


def test_units_dir_without_units_fails_with_what_to_do(tmp_path, provision):
    empty = tmp_path / "units"
    empty.mkdir()
    status, out, _ = provision("--root", tmp_path / "image", *BASE, "--units-dir", empty)
    assert status == 1
    assert results(out)["units"] == "FAILED" and "no unit files (*.service, *.timer)" in out
    assert results(out)["ssh"] == "not run" and "self-test not run" in out


def test_packages_are_checked_in_the_roots_dpkg_database(tmp_path, provision):
    status_file = tmp_path / "image/var/lib/dpkg/status"
    status_file.parent.mkdir(parents=True)
    status_file.write_text(
        "".join(
            f"Package: {p}\nStatus: install ok installed\nArchitecture: arm64\nVersion: 1\n"
            f"Maintainer: x\nDescription: x\n\n"
            for p in KIOSK_PACKAGES[1:]
        )
    )
    status, out, _ = provision("--root", tmp_path / "image", *BASE, "--dry-run")
    assert status == 0 and results(out)["packages"] == "skipped"
    assert f"not installed under --root: {KIOSK_PACKAGES[0]};" in out
    assert f"chroot {tmp_path / 'image'} apt-get install -y {KIOSK_PACKAGES[0]}" in out


def test_harden_ssh_needs_a_key_then_writes_the_drop_in(tmp_path, provision):
    root = tmp_path / "image"
    status, out, _ = provision("--root", root, *BASE, "--harden-ssh", "--skip", "selftest")
    assert status == 1 and "nobody could log in" in out
    dropin = root / "etc/ssh/sshd_config.d/10-kiosk.conf"
    assert not dropin.exists()

    keys = root / "root/.ssh/authorized_keys"
    keys.parent.mkdir(parents=True)
    keys.write_text("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIH7eb0u7 technician\n")
    status, out, _ = provision("--root", root, *BASE, "--harden-ssh", "--skip", "selftest")
    assert status == 0 and results(out)["ssh"] == "changed", out
    text = dropin.read_text()
    for line in (
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "PermitRootLogin prohibit-password",
    ):
        assert line in text.splitlines()
    assert mode(dropin) == 0o644
    if which("sshd") and Path("/run/sshd").is_dir():
        assert "checked with sshd -T" in out
    status, out, _ = provision("--root", root, "--harden-ssh", "--skip", "selftest")
    assert results(out)["ssh"] == "unchanged" and "nothing to change" in out


def test_enrollment_against_the_loopback_store_server(tmp_path, provision):
    from kiosk.sync.client import StoreServerClient
    from tests.kiosk.services.rig import KIOSK, ServerSide

    server = ServerSide(tmp_path / "server")
    try:
        root = tmp_path / "image"
        flags = [*BASE, "--kiosk-id", KIOSK, "--server-url", server.url, "--skip", "selftest"]
        code = server.enrollment_code()
        spare = server.enrollment_code()  # made before the kiosk enrolled: no --replace
        status, out, _ = provision("--root", root, *flags, "--enroll-code", code)
        assert status == 0 and results(out)["enroll"] == "changed", out
        token_file = root / "var/lib/kiosk/token"
        token = token_file.read_text().strip()
        assert mode(token_file) == 0o600
        assert len((root / "var/lib/kiosk/server_key.pub").read_text().strip()) == 44
        if IS_ROOT:
            kiosk = read_accounts(Target(root)).users["kiosk"]
            assert (token_file.stat().st_uid, token_file.stat().st_gid) == (kiosk.uid, kiosk.gid)
        with StoreServerClient(server.url, token=token) as client:
            assert client.catalog()  # the token works

        # a second run does not spend another code
        status, out, _ = provision("--root", root, *flags, "--enroll-code", code)
        assert status == 0 and results(out)["enroll"] == "unchanged" and "nothing to change" in out

        # re-enrolling with a spent code fails, says why, and keeps the working token
        status, out, _ = provision("--root", root, *flags, "--re-enroll", "--enroll-code", code)
        assert status == 1 and results(out)["enroll"] == "FAILED"
        assert "this enrollment code was already used: make a new one" in out
        assert token_file.read_text().strip() == token

        # a code made for another kiosk id cannot take this one over
        other = server.enrollment_code("kiosk-99")
        status, out, _ = provision("--root", root, *flags, "--re-enroll", "--enroll-code", other)
        assert status == 1 and results(out)["enroll"] == "FAILED"
        assert f"this enrollment code is not for kiosk {KIOSK}" in out
        assert token_file.read_text().strip() == token
        with StoreServerClient(server.url, token=token) as client:
            assert client.catalog()  # the real kiosk is not locked out

        # nor a spare code made for this id before it enrolled: that takes an admin's --replace
        status, out, _ = provision("--root", root, *flags, "--re-enroll", "--enroll-code", spare)
        assert status == 1 and f"kiosk {KIOSK} is already enrolled" in out and "--replace" in out
        assert token_file.read_text().strip() == token

        status, out, _ = provision(
            "--root", root, *flags, "--re-enroll", "--enroll-code",
            server.enrollment_code(replace=True),
        )  # fmt: skip
        assert status == 0 and results(out)["enroll"] == "changed"
        assert token_file.read_text().strip() != token
    finally:
        server.stop()


def test_the_enrollment_code_can_come_on_standard_input(tmp_path, provision, monkeypatch):
    import io

    from tests.kiosk.services.rig import KIOSK, ServerSide

    flags = ["--kiosk-id", KIOSK, "--skip", "selftest", "--enroll-code", "-"]
    monkeypatch.setattr("sys.stdin", io.StringIO("\n"))
    status, _, err = provision("--root", tmp_path / "empty", *BASE, *flags)
    assert status == 2 and "standard input held no code" in err
    server = ServerSide(tmp_path / "server")
    try:
        monkeypatch.setattr("sys.stdin", io.StringIO(server.enrollment_code() + "\n"))
        root = tmp_path / "image"
        status, out, _ = provision("--root", root, *BASE, "--server-url", server.url, *flags)
        assert status == 0 and results(out)["enroll"] == "changed", out
        assert (root / "var/lib/kiosk/token").read_text().strip()
    finally:
        server.stop()


def test_enrollment_with_an_unreachable_server_fails_with_what_to_do(tmp_path, provision):
    flags = [*BASE, "--server-url", "http://127.0.0.1:9", "--skip", "selftest"]
    status, out, _ = provision(
        "--root", tmp_path / "image", *flags, "--enroll-code", "ABCD-EFGH-JKLM"
    )
    assert status == 1 and results(out)["enroll"] == "FAILED"
    assert "enrollment with http://127.0.0.1:9 failed" in out
    assert not (tmp_path / "image/var/lib/kiosk/token").exists()


class _NeverDone(Step):
    name = "broken"

    def check(self) -> Finding:
        return todo("still wrong")

    def apply(self) -> str:
        return "did something"


def test_a_step_whose_change_does_not_stick_fails_and_stops_the_plan():
    first, second = run_plan([_NeverDone(), _NeverDone()], dry_run=False)
    assert first.outcome is Outcome.FAILED and "the check still finds: still wrong" in first.detail
    assert second.outcome is Outcome.NOT_RUN


def test_live_run_without_root_is_refused(provision, monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    status, _, err = provision(*BASE)
    assert status == 2 and "run it as root" in err


def test_a_dry_run_checks_every_step_even_after_a_failure():
    class Broken(_NeverDone):
        def check(self) -> Finding:
            raise ProvisionError("cannot tell: fix X")

    first, second = run_plan([Broken(), _NeverDone()], dry_run=True)
    assert (first.outcome, first.detail) == (Outcome.FAILED, "cannot tell: fix X")
    assert second.outcome is Outcome.PLANNED


def test_on_the_machine_itself_the_tools_act_on_it(monkeypatch):
    """No --root: useradd and apt-get get no --prefix/--root (run is recorded, not executed:
    this must not add a user to the test machine)."""
    calls: list[list[str]] = []

    def record(argv, **_kw):
        calls.append(list(argv))
        return subprocess.CompletedProcess(argv, 0, "", "")

    monkeypatch.setattr(accounts, "run", record)
    monkeypatch.setattr(packages, "run", record)
    live = Target(Path("/"), as_root=True)
    if "kiosk" not in read_accounts(live).users:
        AccountsStep(live, "/var/lib/kiosk").apply()
        useradd = calls[-1]
        assert Path(useradd[0]).name == "useradd" and "--prefix" not in useradd
        assert useradd[-3:] == ["--groups", ",".join(KIOSK_GROUPS), "kiosk"]
        assert "--system" in useradd and "/usr/sbin/nologin" in useradd
    calls.clear()
    PackagesStep(live).apply()  # the recorded dpkg-query answers nothing: all missing
    assert [Path(c[0]).name for c in calls] == ["dpkg-query", "apt-get", "apt-get"]
    assert calls[0][1] == "--admindir=/var/lib/dpkg"
    assert calls[2][1:5] == ["install", "-y", "-q", "--no-install-recommends"]
    assert calls[2][5:] == list(KIOSK_PACKAGES)


def test_a_failing_self_test_fails_the_run(tmp_path, provision, monkeypatch):
    monkeypatch.setattr(cli, "run_selftest", lambda _t: (False, "printer  FAIL  paper out"))
    status, out, _ = provision("--root", tmp_path / "image", *BASE)
    assert status == 1
    assert "printer  FAIL  paper out" in out and out.rstrip().endswith("; self-test FAILED")
