"""``scripts/dev.sh`` (the README's two commands), through its ``--print-packages`` mode: what
each command would install on a PC and on a Pi, without running apt or pip."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from provisioning.packages import KIOSK_PACKAGES

DEV_SH = Path(__file__).parents[2] / "scripts/dev.sh"
TEST_TOOLS = {"openssh-server", "systemd", "sudo"}  # the units' and the fleet playbook's tests


def planned(command: str, machine: str) -> dict[str, str]:
    env = {**os.environ, "KIOSK_MACHINE": machine}
    run = subprocess.run(
        ["bash", str(DEV_SH), "--print-packages", command],
        env=env, capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    return dict(line.split(": ", 1) for line in run.stdout.splitlines())


@pytest.mark.parametrize("machine", ["x86_64", "aarch64"])
def test_the_demo_gets_the_kiosks_packages_and_no_test_tools(machine):
    plan = planned("demo", machine)
    assert plan["machine"] == machine
    assert set(plan["apt"].split()) == set(KIOSK_PACKAGES)  # as provisioning installs them


@pytest.mark.parametrize("machine", ["x86_64", "aarch64"])
def test_the_tests_also_get_sshd_systemd_and_sudo(machine):
    assert set(planned("test", machine)["apt"].split()) == set(KIOSK_PACKAGES) | TEST_TOOLS


@pytest.mark.parametrize("command", ["demo", "test"])
def test_a_pi_gets_the_pi_extra_and_a_pc_does_not(command):
    assert planned(command, "aarch64")["pip"] == "-c constraints.txt -e .[dev,pi]"
    assert planned(command, "x86_64")["pip"] == "-c constraints.txt -e .[dev]"


def test_an_unknown_command_says_how_to_call_it_and_installs_nothing():
    run = subprocess.run(
        ["bash", str(DEV_SH), "--print-packages", "tset"], capture_output=True, text=True
    )
    assert (
        run.returncode == 2 and "usage: scripts/dev.sh [--print-packages] demo|test" in run.stderr
    )
    assert run.stdout == ""
