"""The loopback SSH rig of the fleet tests (test_fleet.py, test_update.py): tool lookups and
their skip markers, throwaway keys, Ansible kept inside the temp folder, and one host's
connection variables. The sshd and store fixtures are in conftest.py.
"""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from provisioning.target import which

REPO = Path(__file__).parents[2]
VENV_BIN = Path(sys.executable).parent
SSHD = which("sshd")
ANSIBLE = shutil.which("ansible-playbook", path=f"{VENV_BIN}:{os.environ.get('PATH', '')}")

IS_ROOT = os.geteuid() == 0

# skipped without the tool, a failure when CI is set (tests/conftest.py)
needs_ansible = pytest.mark.needs_tool("ansible-playbook", install="pip install -e '.[dev]'")
needs_sshd = pytest.mark.needs_tool("sshd", install="apt-get install openssh-server")
# as root the playbook's default become: true (sudo) is used for one kiosk
needs_sudo_as_root = (
    pytest.mark.needs_tool("sudo", install="apt-get install sudo")
    if IS_ROOT
    else pytest.mark.usefixtures()
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def keygen(path: Path) -> str:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "kiosk-fleet-test", "-f", str(path)],
        check=True,
        timeout=30,
    )
    return path.with_suffix(".pub").read_text().strip()


def ansible_env(tmp_path: Path) -> dict[str, str]:
    """Ansible kept inside the temp folder: no user config, no persistent SSH masters."""
    home = tmp_path / "ansible-home"
    home.mkdir(exist_ok=True)
    cfg = tmp_path / "ansible.cfg"
    cfg.write_text(
        f"[defaults]\nlocal_tmp = {home}/tmp\nremote_tmp = {tmp_path}/remote-tmp\n"
        "retry_files_enabled = false\nnocolor = true\n"
        "[ssh_connection]\npipelining = true\nssh_args = -o ControlMaster=no\n"
        # Logged in as root, become root: Ansible would skip sudo as a no-op. Run it anyway,
        # so the become host goes through sudo as a real Pi's "pi" login does.
        "[privilege_escalation]\nbecome_allow_same_user = true\n"
    )
    return {
        **os.environ,
        "ANSIBLE_CONFIG": str(cfg),
        "ANSIBLE_HOME": str(home),
        "LC_ALL": "C.UTF-8",
        "PATH": f"{VENV_BIN}:{os.environ.get('PATH', '')}",
    }


def this_trees_provision(folder: Path) -> Path:
    """kiosk-provision of the tree under test (the venv's may be another checkout's)."""
    wrapper = folder / "kiosk-provision"
    wrapper.write_text(
        f'#!/bin/sh\nPYTHONPATH="{REPO}" exec "{sys.executable}" -m provisioning.cli "$@"\n'
    )
    wrapper.chmod(0o755)
    return wrapper


def connection(sshd: dict[str, object], server_url: str) -> dict[str, object]:
    """Host variables for 127.0.0.1 through the test's sshd, known host key checked."""
    folder = sshd["folder"]
    return {
        "ansible_host": "127.0.0.1",
        "ansible_port": sshd["port"],
        "ansible_user": getpass.getuser(),
        "ansible_ssh_private_key_file": str(folder / "client_key"),
        "ansible_ssh_common_args": f"-F /dev/null -o UserKnownHostsFile={folder}/known_hosts "
        "-o StrictHostKeyChecking=yes -o IdentitiesOnly=yes",
        "ansible_python_interpreter": sys.executable,
        "kiosk_become": False,  # logged in as root (or as ourselves): no sudo needed
        "kiosk_provision": str(this_trees_provision(folder)),
        "server_url": server_url,
        "kiosk_sim": True,
    }
