"""``kiosk doctor`` on a healthy kiosk and on broken ones: the real store server on loopback,
a real enrolled state folder and simulated devices; systemctl, journalctl and coredumpctl are
a fake runner, disk usage an injected figure."""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import pytest

from kiosk.commands.doctor import CommandResult, Level, Probes, format_report, problems, run_doctor
from kiosk.commands.maintenance import add_subcommands
from kiosk.config import load_config
from kiosk.services.txn_steps import FLAG_TABLE
from kiosk.storage.journal import Journal
from kiosk.sync.client import StoreServerClient
from tests.kiosk.services.rig import KIOSK, ServerSide

GB = 2**30
ACTIVE = """LoadState=loaded
ActiveState=active
SubState=running
Result=success
NRestarts=0
ActiveEnterTimestamp=Mon 2026-11-23 10:00:00 CST
UnitFileState=enabled
"""


def config_text(state: Path, url: str, **extra: str) -> str:
    sections = {
        "kiosk": f'id = "{KIOSK}"\nstate_dir = "{state}"',
        "server": f'url = "{url}"\nconnect_timeout_s = 1\nread_timeout_s = 5',
        "scanner": 'kind = "sim"',
        "printer": 'kind = "sim"',
        "locker": 'kind = "sim"\n[[locker.compartments]]\nnumber = 1\nrelay_pin = 5\nsensor_pin = 6',
    }
    for name, text in extra.items():
        sections[name] = text
    return "\n".join(f"[{name}]\n{body}\n" for name, body in sections.items())


class FakeSystem:
    """systemctl, journalctl, coredumpctl and dmesg as a healthy Pi answers them."""

    def __init__(self) -> None:
        self.show = CommandResult(0, ACTIVE, "")
        self.unit_log = CommandResult(1, "-- No entries --\n", "")
        self.kernel = CommandResult(0, "2026-11-23T10:00:00+0800 kiosk kernel: Booting Linux\n", "")
        self.dmesg = CommandResult(0, "", "")
        self.cores = CommandResult(1, "", "No coredumps found.\n")
        self.calls: list[list[str]] = []

    def __call__(self, argv) -> CommandResult:
        argv = list(argv)
        self.calls.append(argv)
        if argv[0] == "systemctl":
            return self.show
        if argv[0] == "journalctl":
            return self.kernel if "_TRANSPORT=kernel" in argv else self.unit_log
        if argv[0] == "coredumpctl":
            return self.cores
        if argv[0] == "dmesg":
            return self.dmesg
        return CommandResult(127, "", f"{argv[0]}: command not found")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = ServerSide(tmp_path_factory.mktemp("server"))
    yield s
    s.stop()


@pytest.fixture
def site(tmp_path, server):
    """An enrolled kiosk: its config file, state folder and the fakes the doctor sees."""
    state = tmp_path / "state"
    path = tmp_path / "kiosk.toml"
    path.write_text(config_text(state, server.url))
    cfg = load_config(path)
    client = StoreServerClient.from_config(cfg.server)
    client.enroll(server.enrollment_code(), KIOSK)
    client.close()
    system = FakeSystem()
    probes = Probes(runner=system, disk_usage=lambda _p: (32 * GB, 4 * GB, 28 * GB))
    return argparse.Namespace(path=path, cfg=cfg, state=state, system=system, probes=probes)


def by_name(checks):
    return {c.name: c for c in checks}


def doctor(site):
    return by_name(run_doctor(site.path, site.probes))


def test_a_healthy_kiosk_has_no_problems(site, capsys):
    checks = run_doctor(site.path, site.probes)
    report = format_report(checks)
    assert problems(checks) == [], report
    found = by_name(checks)
    assert set(found) == {
        "config", "enrollment", "server", "clock", "server token", "camera", "printer",
        "locker", "disk space", "service", "crashes and restarts", "SD card", "power supply",
        "journal", "compartments",
    }  # fmt: skip
    assert found["server token"].level is Level.OK and "ms" in found["server"].detail
    # the same clock on both sides: within the warning bound, however slow the exchange was
    assert found["clock"].level is Level.OK and " s " in found["clock"].detail
    assert found["printer"].level is Level.INFO  # simulated: shown, not a problem
    assert report.endswith("no problems found")
    # the command line: exit 0
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", type=Path)
    add_subcommands(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["--config", str(site.path), "doctor"])
    assert args.func(args, site.probes) == 0
    assert "no problems found" in capsys.readouterr().out


def assert_problem(check, *words):
    assert not check.ok, check
    text = f"{check.detail} {check.fix}"
    assert check.fix and all(w in text for w in words), check


def test_bad_config_value_is_named_and_the_rest_still_runs(site, capsys):
    site.path.write_text(site.path.read_text().replace('kind = "sim"', 'kind = "simm"', 1))
    found = doctor(site)
    assert_problem(found["config"], "scanner.kind", "'simm'", "kiosk check-config")
    assert "server" not in found and found["enrollment, server, devices"].ok
    assert {"disk space", "service", "journal"} <= found.keys()
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", type=Path)
    add_subcommands(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["--config", str(site.path), "doctor"])
    assert args.func(args, site.probes) == 1
    out = capsys.readouterr().out
    assert "1 problem:" in out and "fix: fix" in out and "scanner.kind" in out


def test_missing_token(site):
    site.cfg.server.token_file.unlink()
    found = doctor(site)
    assert_problem(found["enrollment"], "no kiosk token", "storeserver enroll-code")
    assert found["server token"].level is Level.INFO


def test_token_readable_by_others_and_token_refused(site):
    site.cfg.server.token_file.write_text("not-the-token\n")
    os.chmod(site.cfg.server.token_file, 0o644)
    found = doctor(site)
    assert_problem(found["enrollment"], "0644", "chmod 600")
    assert_problem(found["server token"], "refused", "enroll")


def test_missing_public_key(site):
    site.cfg.server.public_key_file.write_text("c2hvcnQ=\n")  # 5 bytes
    assert_problem(doctor(site)["enrollment"], "32-byte", "enroll-code")


def test_the_old_certificate_pin_is_a_warning_saying_write_pins(site, tmp_path):
    old = tmp_path / "old-pin.toml"
    old.write_text(
        site.path.read_text().replace("[server]\n", "[server]\npin_sha256 = '" + "ab" * 32 + "'\n")
    )
    found = by_name(run_doctor(old, site.probes))
    assert_problem(found["pinning"], "certificate renewal", "server.pins")
    assert "pinning" not in by_name(run_doctor(site.path, site.probes))


def test_server_down(site, tmp_path):
    dead = tmp_path / "dead.toml"
    dead.write_text(site.path.read_text().replace(site.cfg.server.url, "http://127.0.0.1:9"))
    found = by_name(run_doctor(dead, site.probes))
    assert_problem(found["server"], "127.0.0.1:9", "curl -v http://127.0.0.1:9/v1/health")
    assert found["clock"].level is Level.INFO and found["server token"].level is Level.INFO


def test_clock_skew(site, server):
    server.clock.advance(minutes=5)
    try:
        found = doctor(site)
    finally:
        server.clock.advance(minutes=-5)
    assert found["clock"].level is Level.FAIL
    assert_problem(found["clock"], "behind the store server", "timedatectl set-ntp true")
    assert 295 <= int(found["clock"].detail.split()[3]) <= 305


def test_small_skew_is_a_warning_the_other_way(site):
    site.probes.clock = lambda: time.time() + 15  # the kiosk runs ahead
    found = doctor(site)
    assert found["clock"].level is Level.WARN and "ahead of" in found["clock"].detail


def test_corrupt_journal_folder_and_safe_mode(site):
    folder = site.state / "journal-corrupt-20261123T020000Z"
    folder.mkdir()
    (folder / "REASON.txt").write_text("journal corrupt: checksum mismatch\n")
    check = doctor(site)["journal"]
    assert check.level is Level.WARN
    assert_problem(check, "journal-corrupt-20261123T020000Z", "REASON.txt")
    (site.state / "journal.safe-mode").write_text("journal corrupt: checksum mismatch in x\n")
    check = doctor(site)["journal"]
    assert check.level is Level.FAIL
    assert_problem(check, "safe mode", "checksum mismatch", "journal.safe-mode", "restart")


def test_a_compartment_waiting_for_a_staff_check_is_named_until_staff_count_it(site):
    with Journal.open(site.state) as journal:  # what a jammed door leaves (txn_steps)
        journal.put(FLAG_TABLE, "3", {"txn_id": "t-3f9a", "reason": "door never opened"})
    check = doctor(site)["compartments"]
    assert check.level is Level.WARN
    assert_problem(check, "3 (txn t-3f9a)", "staff", "count")
    with Journal.open(site.state) as journal:  # a restock count clears it
        assert journal.delete(FLAG_TABLE, "3")
    assert doctor(site)["compartments"].ok


@pytest.mark.parametrize(("free_mb", "level"), [(120, Level.WARN), (20, Level.FAIL)])
def test_low_disk(site, free_mb, level):
    seen = []
    site.probes.disk_usage = lambda p: seen.append(p) or (GB, GB, free_mb * 2**20)
    check = doctor(site)["disk space"]
    assert check.level is level and seen == [site.state]
    assert_problem(check, f"{free_mb} MB free", "journalctl --vacuum-size")


def test_missing_devices(site, tmp_path):
    dev = tmp_path / "dev"
    dev.mkdir()
    (dev / "gpiochip0").touch()
    site.path.write_text(
        config_text(
            site.state, site.cfg.server.url,
            scanner='kind = "camera"\ndevice = 0',
            printer=f'kind = "serial"\nport = "{dev}/ttyUSB0"',
            locker='kind = "gpio"\n[[locker.compartments]]\nnumber = 1\nrelay_pin = 5\nsensor_pin = 6',
        )
    )  # fmt: skip
    site.probes.dev_dir = dev
    found = doctor(site)
    assert_problem(found["camera"], f"{dev}/video0 not found", "scanner.device")
    assert_problem(found["printer"], f"{dev}/ttyUSB0 not found", "printer.port")
    assert found["locker"].level is Level.OK and "gpiochip0" in found["locker"].detail
    (dev / "video0").touch()
    (dev / "ttyUSB0").touch()
    found = doctor(site)
    assert found["camera"].level is Level.OK and found["printer"].level is Level.OK


def test_missing_sim_source(site, tmp_path):
    site.path.write_text(
        config_text(
            site.state,
            site.cfg.server.url,
            scanner=f'kind = "sim"\nsim_source = "{tmp_path}/nope.avi"',
        )
    )
    assert_problem(doctor(site)["camera"], "nope.avi", "scanner.sim_source")


def test_service_gave_up_and_is_disabled(site):
    site.system.show = CommandResult(
        0,
        ACTIVE.replace("ActiveState=active", "ActiveState=failed")
        .replace("Result=success", "Result=start-limit-hit")
        .replace("UnitFileState=enabled", "UnitFileState=disabled"),
        "",
    )
    found = doctor(site)
    assert_problem(found["service"], "failed", "start-limit-hit", "systemctl reset-failed kiosk")
    assert_problem(found["service enabled"], "disabled", "systemctl enable kiosk")
    assert site.system.calls[0][:2] == ["systemctl", "show"]


def test_service_not_installed(site):
    site.system.show = CommandResult(0, "LoadState=not-found\nActiveState=inactive\n", "")
    assert_problem(doctor(site)["service"], "not installed", "daemon-reload")


def test_watchdog_kills_crashes_and_core_dumps(site):
    site.system.show = CommandResult(0, ACTIVE.replace("NRestarts=0", "NRestarts=3"), "")
    site.system.unit_log = CommandResult(
        0,
        "2026-11-23T10:00:00+0800 pi systemd[1]: kiosk.service: Watchdog timeout (limit 20s)!\n"
        "2026-11-23T10:00:00+0800 pi systemd[1]: kiosk.service: Main process exited, code=killed, status=6/ABRT\n"
        "2026-11-23T10:30:00+0800 pi systemd[1]: kiosk.service: Main process exited, code=exited, status=1/FAILURE\n"
        "2026-11-23T11:00:00+0800 pi systemd[1]: kiosk.service: Watchdog timeout (limit 20s)!\n"
        "2026-11-23T11:00:00+0800 pi systemd[1]: kiosk.service: Main process exited, code=killed, status=6/ABRT\n",
        "",
    )
    site.system.cores = CommandResult(
        0, "Mon 2026-11-23 10:00:00 CST 512 999 999 SIGSEGV present /opt/kiosk/.venv/bin/python3 9M\n", ""
    )  # fmt: skip
    found = doctor(site)
    assert "3 automatic restart(s)" in found["service"].detail and found["service"].ok
    check = found["crashes and restarts"]
    assert_problem(check, "2 watchdog kill(s): the UI froze", "1 crash(es)", "1 core dump(s)")
    assert "coredumpctl info" in check.fix and "kiosk logs" in check.fix
    grep = next(c for c in site.system.calls if c[0] == "journalctl" and "-u" in c)
    assert grep[grep.index("-u") + 1] == "kiosk" and "--grep" in grep


def test_not_under_systemd_is_information_not_a_problem(site):
    gone = CommandResult(
        1, "", "System has not been booted with systemd as init system (PID 1). Can't operate.\n"
    )
    site.system.show = site.system.unit_log = gone
    found = doctor(site)
    assert (
        found["service"].level is Level.INFO and "not run under systemd" in found["service"].detail
    )
    assert found["crashes and restarts"].level is Level.INFO
    assert problems(found.values()) == []


def test_sd_card_errors_and_under_voltage(site):
    site.system.kernel = CommandResult(
        0,
        "2026-11-23T09:00:00+0800 pi kernel: hwmon hwmon1: Undervoltage detected!\n"
        "2026-11-23T09:00:01+0800 pi kernel: mmc0: timeout waiting for hardware interrupt.\n"
        "2026-11-23T09:00:02+0800 pi kernel: I/O error, dev mmcblk0, sector 1234 op 0x1:(WRITE)\n",
        "",
    )
    found = doctor(site)
    assert_problem(found["SD card"], "2 SD-card error(s)", "mmcblk0", "replace the SD card")
    assert found["power supply"].level is Level.WARN
    assert_problem(found["power supply"], "under-voltage 1 time(s)", "5.1 V")


def test_kernel_log_not_readable_falls_back_to_dmesg_then_says_so(site):
    hint = "Hint: You are currently not seeing messages from other users and the system.\n"
    mmc = "[ 1.0] mmc0: error -110 whilst initialising SD card\n"
    site.system.dmesg = CommandResult(0, mmc, "")
    for kernel in (hint, "No journal files were found.\n"):  # no permission; no stored log
        site.system.kernel = CommandResult(0, "-- No entries --\n", kernel)
        assert doctor(site)["SD card"].level is Level.FAIL
        assert site.system.calls[-1][0] == "dmesg"
    site.system.dmesg = CommandResult(1, "", "dmesg: read kernel buffer failed: Operation not permitted\n")  # fmt: skip
    found = doctor(site)
    assert found["SD card"].level is Level.INFO and "sudo kiosk doctor" in found["SD card"].fix
    assert "Operation not permitted" in found["SD card"].detail


def test_every_problem_has_a_fix_in_the_report(site, server):
    site.cfg.server.token_file.unlink()
    site.probes.disk_usage = lambda _p: (GB, GB, 10 * 2**20)
    (site.state / "journal-corrupt-x").mkdir()
    checks = run_doctor(site.path, site.probes)
    report = format_report(checks)
    bad = problems(checks)
    assert {c.name for c in bad} == {"enrollment", "disk space", "journal"}
    assert f"{len(bad)} problems:" in report
    for n, c in enumerate(bad, 1):
        assert f"{n}. {c.name}: {c.detail}\n     fix: {c.fix}" in report


def test_no_service_leaves_out_the_systemd_checks(site, capsys):
    """`kiosk doctor --no-service` (kiosk-provision update's process manager): a kiosk not run
    by systemd is not failed for a unit systemd says is failed."""
    site.probes.runner.show = CommandResult(0, ACTIVE.replace("ActiveState=active", "ActiveState=failed"), "")  # fmt: skip
    assert "service" in {c.name for c in problems(run_doctor(site.path, site.probes))}
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", type=Path)
    add_subcommands(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["--config", str(site.path), "doctor", "--no-service"])
    calls = len(site.probes.runner.calls)
    assert args.func(args, site.probes) == 0
    out = capsys.readouterr().out
    assert "left out (--no-service)" in out and out.rstrip().endswith("no problems found")
    called = site.probes.runner.calls[calls:]
    assert not any(c[0] == "systemctl" or "-u" in c for c in called), called
