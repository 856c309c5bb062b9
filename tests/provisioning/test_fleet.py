"""The fleet playbook over real SSH: an OpenSSH server on 127.0.0.1 (unprivileged port,
throwaway host and client keys in a temp folder), ansible-playbook with two inventory hosts
that both point at it, each with its own kiosk id, one-time code and --root folder, and
the real store server on loopback to enroll with. Run twice: the second run changes nothing.

Skipped only when sshd (apt-get install openssh-server) or ansible-playbook (the [dev]
extra's ansible-core) is missing, and with CI set not even then: a failure (``needs_tool``,
tests/conftest.py). As root, sshd needs its privilege separation folder /run/sshd, which
ssh.service normally makes; the test makes it if missing.

As root, the first kiosk runs the way real Pis do, with the playbook's default
``become: true``: Ansible wraps each task in ``sudo -n`` (root needs no password, but sudo
must be installed: apt-get install sudo), the one-time code crossing sudo's environment
reset; a wrapper around the real sudo notes each call, proof that it ran. The second kiosk
logs in as root without sudo (``kiosk_become: false``). An unprivileged login with
passwordless sudo would need a throwaway user and sudoers entry on the test machine, which
the tests do not make. Not as root, there is no passwordless sudo: both go without.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import re
import shutil
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kiosk.config import load_config
from provisioning.accounts import read_accounts
from provisioning.target import Target, which

REPO = Path(__file__).parents[2]
PLAYBOOK = REPO / "provisioning/fleet/playbook.yml"
VENV_BIN = Path(sys.executable).parent
SSHD = which("sshd")
ANSIBLE = shutil.which("ansible-playbook", path=f"{VENV_BIN}:{os.environ.get('PATH', '')}")
PLAYBOOK_TIMEOUT_S = 300

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


@pytest.fixture
def sshd(tmp_path) -> Iterator[dict[str, object]]:
    """A private sshd on 127.0.0.1 accepting the test's own key for the current user."""
    folder = tmp_path / "ssh"
    folder.mkdir()
    host_pub = keygen(folder / "host_key")
    (folder / "authorized_keys").write_text(keygen(folder / "client_key") + "\n")
    if IS_ROOT and not Path("/run/sshd").is_dir():
        Path("/run/sshd").mkdir(mode=0o755)
    log = folder / "sshd.log"
    for _attempt in range(3):  # another process may take the port between choosing and binding
        port = free_port()
        config = folder / "sshd_config"
        config.write_text(
            f"Port {port}\nListenAddress 127.0.0.1\nHostKey {folder}/host_key\n"
            f"PidFile {folder}/sshd.pid\nAuthorizedKeysFile {folder}/authorized_keys\n"
            "UsePAM no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
            "PubkeyAuthentication yes\nPermitRootLogin prohibit-password\nStrictModes no\n"
            "Subsystem sftp internal-sftp\nLogLevel VERBOSE\n"
        )
        with log.open("ab") as out:
            proc = subprocess.Popen(
                [SSHD, "-D", "-e", "-f", str(config)], stdout=out, stderr=subprocess.STDOUT
            )
        if _wait_for_banner(port, proc):
            break
        _stop(proc)
    else:
        pytest.fail(f"sshd did not start on 127.0.0.1: {log.read_text()[-2000:]}")
    (folder / "known_hosts").write_text(f"[127.0.0.1]:{port} {host_pub}\n")
    try:
        yield {"port": port, "folder": folder, "log": log}
    finally:
        _stop(proc)


def _wait_for_banner(port: int, proc: subprocess.Popen, timeout_s: float = 10) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and proc.poll() is None:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1) as s:
            s.settimeout(2)
            if s.recv(64).startswith(b"SSH-2.0-"):
                return True
        time.sleep(0.1)
    return False


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture
def store(tmp_path):
    from tests.kiosk.services.rig import ServerSide

    server = ServerSide(tmp_path / "server")
    yield server
    server.stop()


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


def playbook(tmp_path: Path, hosts: dict[str, dict]) -> subprocess.CompletedProcess[str]:
    """ansible-playbook on an inventory of ``hosts`` (host vars beat the playbook's group_vars)."""
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(json.dumps({"kiosks": {"hosts": hosts}}, indent=2))  # JSON is YAML
    return subprocess.run(
        [ANSIBLE, "-i", str(inventory), str(PLAYBOOK)],
        capture_output=True,
        text=True,
        timeout=PLAYBOOK_TIMEOUT_S,
        env=ansible_env(tmp_path),
    )


def recap(host: str, changed: int, output: str) -> bool:
    pattern = rf"^{host}\s+: ok=\d+\s+changed={changed}\s+unreachable=0\s+failed=0\s"
    return re.search(pattern, output, re.M) is not None


@needs_ansible
@needs_sshd
@needs_sudo_as_root
def test_playbook_provisions_two_kiosks_over_ssh(tmp_path, sshd, store):
    kiosks = {"store1-k1": tmp_path / "root-k1", "store1-k2": tmp_path / "root-k2"}
    client_pub = (sshd["folder"] / "client_key.pub").read_text()
    for root in kiosks.values():  # the technician's key is in the image: --harden-ssh may go on
        (root / "root/.ssh").mkdir(parents=True)
        (root / "root/.ssh/authorized_keys").write_text(client_pub)
    hosts = {
        f"kiosk-{n}": {
            **connection(sshd, store.url),
            "kiosk_id": kiosk_id,
            "kiosk_root": str(root),
            "enroll_code": store.enrollment_code(kiosk_id),
        }
        for n, (kiosk_id, root) in enumerate(kiosks.items(), start=1)
    }
    sudo_log = tmp_path / "sudo.log"
    if IS_ROOT:  # kiosk-1 as on a real Pi: group_vars' kiosk_become: true, through sudo
        del hosts["kiosk-1"]["kiosk_become"]
        # the real sudo, through a wrapper that notes each call: proof that it ran
        wrapper = tmp_path / "sudo-noting"
        wrapper.write_text(f'#!/bin/sh\necho "$*" >>{sudo_log}\nexec sudo "$@"\n')
        wrapper.chmod(0o755)
        hosts["kiosk-1"]["ansible_become_exe"] = str(wrapper)

    first = playbook(tmp_path, hosts)
    report = f"{first.stdout}\n{first.stderr}\nsshd log:\n{sshd['log'].read_text()[-3000:]}"
    assert first.returncode == 0, report
    assert all(recap(host, 1, first.stdout) for host in hosts), report
    # the Report task shows each kiosk's own report
    assert first.stdout.count("self-test passed") == 2, report
    if IS_ROOT:  # both tasks on the kiosk (the check and kiosk-provision), as sudo -n
        calls = sudo_log.read_text().splitlines()
        assert len(calls) == 2 and all(c.startswith("-H -S -n -u root ") for c in calls), calls
        code = hosts["kiosk-1"]["enroll_code"]  # on standard input: not in what ps shows
        assert code not in calls[1] and "KIOSK_ENROLL_CODE" not in calls[1], calls[1]
        assert code not in first.stdout, report
        checked = "key-only logins, root with a key only; checked with sshd -T"
        assert first.stdout.count(checked) == 2, report

    for kiosk_id, root in kiosks.items():
        cfg = load_config(root / "etc/kiosk/kiosk.toml")
        assert (cfg.kiosk.id, cfg.server.url) == (kiosk_id, store.url)
        # from group_vars/kiosks.yml
        assert cfg.kiosk.store_name_en == "Demo Store"
        assert [c.number for c in cfg.locker.compartments] == [1, 2, 3]
        modes = {
            p: stat.S_IMODE((root / p).stat().st_mode)
            for p in ("etc/kiosk", "var/lib/kiosk", "etc/kiosk/kiosk.toml", "var/lib/kiosk/token")
        }
        assert modes == {
            "etc/kiosk": 0o750,
            "var/lib/kiosk": 0o700,
            "etc/kiosk/kiosk.toml": 0o640,
            "var/lib/kiosk/token": 0o600,
        }
        assert (root / "var/lib/kiosk/token").read_text().strip()
        dropin = (root / "etc/ssh/sshd_config.d/10-kiosk.conf").read_text()
        assert "PasswordAuthentication no" in dropin.splitlines()
        assert (root / "etc/systemd/system/timers.target.wants/kiosk-doctor.timer").is_symlink()
        assert os.readlink(root / "usr/local/bin/kiosk") == "/opt/kiosk/current/bin/kiosk"
        if IS_ROOT:
            kiosk = read_accounts(Target(root)).users["kiosk"]
            assert (root / "var/lib/kiosk/token").stat().st_uid == kiosk.uid
    rows = store.store.db.connection().execute("SELECT id FROM kiosks").fetchall()
    assert set(kiosks) <= {r["id"] for r in rows}

    second = playbook(tmp_path, hosts)  # the codes are spent: the tokens must be kept
    assert second.returncode == 0, second.stdout + second.stderr
    assert all(recap(host, 0, second.stdout) for host in hosts), second.stdout
    assert second.stdout.count("kiosk-provision: nothing to change") == 2
    if IS_ROOT:
        assert len(sudo_log.read_text().splitlines()) == 4


@needs_ansible
@needs_sshd
def test_a_host_without_the_software_fails_alone_with_what_to_do(tmp_path, sshd, store):
    common = {
        **connection(sshd, store.url),
        "kiosk_harden_ssh": False,
        "kiosk_extra_args": ["--skip", "selftest"],
    }
    hosts = {
        "good": {**common, "kiosk_id": "store2-k1", "kiosk_root": str(tmp_path / "good")},
        "bare": {**common, "kiosk_id": "store2-k2", "kiosk_root": str(tmp_path / "bare")},
    }
    del hosts["bare"]["kiosk_provision"]
    hosts["bare"]["kiosk_home"] = str(tmp_path / "nothing-here")

    result = playbook(tmp_path, hosts)
    assert result.returncode != 0
    assert f"{tmp_path}/nothing-here/current/bin/kiosk-provision not found on bare" in result.stdout
    assert recap("good", 1, result.stdout), result.stdout
    assert (tmp_path / "good/etc/kiosk/kiosk.toml").exists()
    assert not (tmp_path / "bare").exists()


@needs_ansible
def test_the_example_inventory_and_group_vars_parse(tmp_path):
    fleet = PLAYBOOK.parent
    env = ansible_env(tmp_path)
    inventory = ["-i", str(fleet / "inventory.example.ini")]
    check = subprocess.run(
        [ANSIBLE, *inventory, "--syntax-check", str(PLAYBOOK)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    inventory_cmd = str(Path(ANSIBLE).with_name("ansible-inventory"))
    show = subprocess.run(
        [inventory_cmd, *inventory, "--playbook-dir", str(fleet), "--host", "store15-k1"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert show.returncode == 0, show.stderr
    host = json.loads(show.stdout)
    assert host["kiosk_compartments"] == ["1:5:6", "2:13:19"]  # the host line wins
    assert host["kiosk_harden_ssh"] is True and host["server_url"].startswith("https://")


def test_the_task_that_passes_the_enrollment_code_logs_nothing():
    import yaml

    tasks = yaml.safe_load(PLAYBOOK.read_text())[0]["tasks"]
    with_code = [t for t in tasks if "enroll_code" in str(t.get("ansible.builtin.command", ""))]
    assert len(with_code) == 1 and with_code[0].get("no_log") is True, with_code


@needs_ansible
@needs_sshd
def test_a_code_for_another_kiosk_fails_that_host_with_its_report_and_no_code(
    tmp_path, sshd, store
):
    code = store.enrollment_code("store3-k9")
    hosts = {
        "k1": {
            **connection(sshd, store.url),
            "kiosk_harden_ssh": False,
            "kiosk_extra_args": ["--skip", "selftest"],
            "kiosk_id": "store3-k1",
            "kiosk_root": str(tmp_path / "k1"),
            "enroll_code": code,
        }
    }
    result = playbook(tmp_path, hosts)
    assert result.returncode != 0
    assert "this enrollment code is not for kiosk store3-k1" in result.stdout, result.stdout
    assert "kiosk-provision failed on k1" in result.stdout
    assert code not in result.stdout + result.stderr
    assert not (tmp_path / "k1/var/lib/kiosk/token").exists()
