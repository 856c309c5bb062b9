"""The arm64 proof's pure parts (scripts/pi_check): the host's pip configuration planned into
the root, the host's Debian mirror, the wheel-tag classification, pip's source builds and the
report table. The proof itself (debootstrap, qemu) is too slow for CI: README "The arm64 proof"."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

import pytest

from provisioning.target import ProvisionError
from scripts.pi_check.pipconf import PIP_LOG_IN_ROOT, parse_config_list, plan_root_pip
from scripts.pi_check.report import StepRow, Steps, format_table
from scripts.pi_check.rootfs import FALLBACK_MIRROR, host_mirror, mounts_under
from scripts.pi_check.wheels import WheelKind, classify, installed_in, source_builds

# as `pip config list` prints them (this machine's, plus an install section and an override)
CONFIG_LIST = """\
:env:.cert='/etc/ssl/certs/ca-certificates.crt'
:env:.find-links='/opt/wheels'
global.cert='/etc/ssl/other.pem'
global.constraint='/etc/xdg/pip/constraints.txt'
global.extra-index-url='file:///opt/pypi/simple file:///opt/pypi-more/simple'
global.index-url='https://mirror.example/simple'
global.cache-dir='/home/me/.cache/pip'
install.trusted-host='mirror.example'
download.dest='/tmp/x'
"""


def test_the_environment_overrides_the_files_and_other_commands_are_left_out():
    options = parse_config_list(CONFIG_LIST)
    assert options["cert"] == "/etc/ssl/certs/ca-certificates.crt"  # PIP_CERT over global
    assert options["find-links"] == "/opt/wheels"
    assert options["trusted-host"] == "mirror.example"
    assert options["extra-index-url"] == "file:///opt/pypi/simple file:///opt/pypi-more/simple"
    assert "dest" not in options


def test_the_root_gets_the_indexes_copies_of_the_files_and_read_only_mounts(tmp_path):
    root_pip = plan_root_pip(parse_config_list(CONFIG_LIST))
    options = root_pip.options
    # the certificate bundle and the constraints are copied in, the options point at the copies
    assert root_pip.copies == {
        Path("/etc/ssl/certs/ca-certificates.crt"): PurePosixPath("/etc/pi-check/pip/cert-0.crt"),
        Path("/etc/xdg/pip/constraints.txt"): PurePosixPath("/etc/pi-check/pip/constraint-0.txt"),
    }
    assert options["cert"] == "/etc/pi-check/pip/cert-0.crt"
    assert options["constraint"] == "/etc/pi-check/pip/constraint-0.txt"
    # local indexes keep their URLs: their folders (a simple index's parent) are mounted there
    assert options["extra-index-url"] == "file:///opt/pypi/simple file:///opt/pypi-more/simple"
    assert root_pip.mounts == (Path("/opt/pypi"), Path("/opt/pypi-more"), Path("/opt/wheels"))
    # a remote index is used as it is; the host's own folders stay out; pip logs in the root
    assert options["index-url"] == "https://mirror.example/simple"
    assert options["trusted-host"] == "mirror.example"
    assert "cache-dir" not in options
    assert options["log"] == str(PIP_LOG_IN_ROOT)
    conf = root_pip.pip_conf()
    assert "[global]\n" in conf and "index-url = https://mirror.example/simple\n" in conf


def test_nothing_configured_is_nothing_but_the_log():
    root_pip = plan_root_pip(parse_config_list(""))
    assert root_pip.options == {"log": str(PIP_LOG_IN_ROOT)}
    assert root_pip.copies == {} and root_pip.mounts == ()


@pytest.mark.parametrize(
    ("tags", "kind"),
    [
        (["cp311-cp311-manylinux_2_17_aarch64.manylinux2014_aarch64"], WheelKind.AARCH64),
        (["cp311-cp311-musllinux_1_2_aarch64"], WheelKind.AARCH64),
        (["py3-none-any"], WheelKind.PURE),
        (["py2-none-any", "py3-none-any"], WheelKind.PURE),
        (["cp311-cp311-linux_aarch64"], WheelKind.BUILT_HERE),
        (["cp311-cp311-manylinux_2_17_x86_64"], WheelKind.FOREIGN),
        ([], WheelKind.UNKNOWN),
    ],
)
def test_wheel_tags_say_whether_a_distribution_fits_a_pi(tags, kind):
    assert classify(tags) is kind
    assert kind.fits_a_pi == (kind in (WheelKind.AARCH64, WheelKind.PURE))


def test_a_venvs_distributions_are_read_from_their_dist_info(tmp_path):
    site = tmp_path / "lib/python3.11/site-packages"
    for name, version, tags in [("numpy", "2.4.6", ["cp311-cp311-manylinux_2_17_aarch64"]),
                                ("Segno", "1.6.1", ["py3-none-any"])]:  # fmt: skip
        info = site / f"{name}-{version}.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        (info / "WHEEL").write_text("Wheel-Version: 1.0\n" + "".join(f"Tag: {t}\n" for t in tags))
    dists = installed_in(tmp_path)
    assert [(d.name, d.version, d.kind) for d in dists] == [
        ("numpy", "2.4.6", WheelKind.AARCH64),
        ("Segno", "1.6.1", WheelKind.PURE),
    ]


PIP_LOG = """\
2026-12-06T04:01:00,100 Collecting lgpio
2026-12-06T04:01:02,500   Building wheel for lgpio (pyproject.toml): started
2026-12-06T04:02:30,900   Building wheel for lgpio (pyproject.toml): finished with status 'done'
2026-12-06T04:02:31,000   Building wheel for odd (setup.py): started
"""


def test_pips_log_names_the_source_builds_and_how_long_each_took():
    builds = source_builds(PIP_LOG)
    assert [(b.name, b.seconds, b.status) for b in builds] == [
        ("lgpio", 88.0, "done"),
        ("odd", None, "unfinished"),
    ]
    assert source_builds("2026-12-06T04:01:00,100 Collecting numpy\n") == []


def test_the_report_is_a_markdown_table_with_a_verdict():
    rows = [StepRow("uname -m", 0.12, True, "aarch64"), StepRow("tour", 61.0, False, "a|b")]
    table = format_table(rows).splitlines()
    assert table[:2] == ["| step | seconds | result |", "|---|---:|---|"]
    assert table[2] == "| uname -m | 0.1 | ok: aarch64 |"
    assert table[3] == "| tour | 61.0 | FAILED: a/b |"  # a | in a detail cannot break the row
    assert table[4] == "| **total** | 61.1 | FAILED: tour |"


def test_the_steps_are_timed_and_stop_at_the_first_failure():
    ticks = iter([0.0, 2.0, 2.0, 5.5])
    steps = Steps(clock=lambda: next(ticks))

    def fails() -> str:
        raise ProvisionError("no aarch64")

    assert steps.run("one", lambda: "fine")
    assert not steps.run("two", fails)
    assert not steps.run("three", lambda: "never run")
    assert steps.rows == [
        StepRow("one", 2.0, True, "fine"),
        StepRow("two", 3.5, False, "no aarch64"),
    ]
    assert not steps.ok


def test_the_mirror_is_the_hosts_bookworm_source(tmp_path):
    listed = tmp_path / "sources.list.d"
    listed.mkdir()
    (tmp_path / "sources.list").write_text("# deb http://old.example/debian bookworm main\n")
    (listed / "cloud.list").write_text("deb [arch=amd64] https://cloud.example/apt cloud main\n")
    (listed / "debian.sources").write_text(
        "Types: deb\nURIs: http://mirror.example/debian/\nSuites: bookworm bookworm-updates\n"
        "Components: main\n\nTypes: deb\nURIs: http://mirror.example/security\n"
        "Suites: bookworm-security\n"
    )
    (listed / "off.list.disabled").write_text("deb http://disabled.example/debian bookworm main\n")
    assert host_mirror(tmp_path) == "http://mirror.example/debian"
    (tmp_path / "sources.list").write_text("deb [trusted=yes] http://one.example/d bookworm main\n")
    assert host_mirror(tmp_path) == "http://one.example/d"  # sources.list comes first


def test_without_a_bookworm_source_the_documented_fallback(tmp_path):
    (tmp_path / "sources.list").write_text("deb http://mirror.example/debian trixie main\n")
    assert host_mirror(tmp_path) == FALLBACK_MIRROR


def test_what_is_mounted_under_the_root_deepest_first():
    table = (
        "proc /proc proc rw 0 0\n"
        "proc /w/root/proc proc rw 0 0\n"
        "udev /w/root/dev devtmpfs rw 0 0\n"
        "devpts /w/root/dev/pts devpts rw 0 0\n"
        "tmp /w/rootless tmpfs rw 0 0\n"
    )
    found = mounts_under(Path("/w/root"), table)
    assert found[0] == Path("/w/root/dev/pts")  # before /dev, which holds it
    assert set(found) == {Path("/w/root/dev/pts"), Path("/w/root/proc"), Path("/w/root/dev")}
