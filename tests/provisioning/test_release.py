"""Release artifacts built from this checkout, verified, installed under --root side by side.

Two releases are built from the tree (``--version`` 1.0.0+t1 and 1.0.0+t2) and each is
installed once, for real (a venv, pip install -c constraints.txt from pip's cache): the
first by ``kiosk-provision --release`` (the first-install path), the second through the API.
The tests share those installs (module fixtures); a full install takes about 16 s here.
The folder has no Python of its own, so the venvs use this machine's Python. The chroot path
(a root with its own Python) runs with ``-m slow``, in an overlay of this machine's / (the
arm64 proof, scripts/pi-check.sh, does it in a Debian arm64 root).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from kiosk import __version__
from provisioning import cli
from provisioning.release import (
    build_release,
    current_version,
    default_version,
    install_release,
    installed_versions,
    read_release,
    release_dir,
    remove_release,
    switch_current,
)
from provisioning.release import main as release_main
from provisioning.release_install import system_site_packages
from provisioning.target import ProvisionError, Target

REPO = Path(__file__).parents[2]
V1, V2 = "1.0.0+t1", "1.0.0+t2"
BASE = ["--kiosk-id", "store1-k1", "--server-url", "http://127.0.0.1:9", "--sim"]
BASE += ["--compartment", "1:5:6", "--skip", "selftest"]
CLEAN_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # the release alone


def provision(*args: str | Path) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        try:
            status = cli.main([str(a) for a in args])
        except SystemExit as exc:
            status = exc.code
    return status, out.getvalue()


def results(out: str) -> dict[str, str]:
    """step name -> result word, from the report table."""
    rows = re.findall(
        r"^(\w+)\s+(changed|unchanged|skipped|FAILED|will change|not run)\s", out, re.M
    )
    return dict(rows)


def in_release(root: Path, *argv: str) -> str:
    result = subprocess.run(
        [str(root / "opt/kiosk/current/bin" / argv[0]), *argv[1:]],
        capture_output=True,
        text=True,
        timeout=120,
        env=CLEAN_ENV,
        cwd="/",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout.strip()


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory) -> dict[str, Path]:
    """V1 built through the API, V2 by the command (it prints the artifact's path)."""
    out = tmp_path_factory.mktemp("releases")
    status, printed = provision("build-release", "--out", out, "--version", V2)
    assert status == 0 and printed.strip() == str(out / f"kiosk-{V2}.tar"), printed
    return {V1: build_release(REPO, out, V1), V2: Path(printed.strip())}


@pytest.fixture(scope="module")
def kiosk_root(tmp_path_factory, artifacts) -> tuple[Path, int, str]:
    """An image folder provisioned with --release V1: (root, exit status, report)."""
    root = tmp_path_factory.mktemp("image")
    status, out = provision("--root", root, "--release", artifacts[V1], *BASE)
    return root, status, out


@pytest.fixture(scope="module")
def both(kiosk_root, artifacts) -> Path:
    """kiosk_root with V2 installed beside V1 (not switched)."""
    root = kiosk_root[0]
    install_release(root, artifacts[V2])
    return root


def test_the_artifact_holds_the_stamped_wheel_with_the_units_constraints_and_manifest(artifacts):
    artifact = artifacts[V1]
    assert artifact.name == f"kiosk-{V1}.tar"
    with tarfile.open(artifact) as tar:
        names = sorted(tar.getnames())
        body = json.load(tar.extractfile("release.json"))
        wheel_bytes = tar.extractfile(body["wheel"]).read()
    assert names == sorted(["release.json", "constraints.txt", body["wheel"]])
    assert body["wheel"] == f"loyalty_kiosk-{V1}-py3-none-any.whl"
    manifest = read_release(artifact)
    assert (manifest.version, manifest.wheel) == (V1, body["wheel"])
    head = subprocess.run(["git", "-C", REPO, "rev-parse", "HEAD"], capture_output=True, text=True)
    assert manifest.commit == head.stdout.strip()
    with zipfile.ZipFile(io.BytesIO(wheel_bytes)) as wheel:
        assert f'__version__ = "{V1}"' in wheel.read("kiosk/__init__.py").decode()
        data = f"loyalty_kiosk-{V1}.data/data/share/kiosk/systemd"
        for unit in ("kiosk.service", "kiosk-doctor.service", "kiosk-doctor.timer"):
            assert wheel.read(f"{data}/{unit}") == (REPO / "systemd" / unit).read_bytes()
        assert wheel.read(f"{data}/journald.conf.d/kiosk.conf")
        assert not [n for n in wheel.namelist() if n.startswith("tests/")]
    assert f'__version__ = "{__version__}"' in (REPO / "kiosk/__init__.py").read_text()


def test_the_default_version_is_the_package_version_plus_git(tmp_path):
    tree = tmp_path / "tree"
    tree.mkdir()
    assert default_version(tree) == __version__  # no git: no local part
    git = ["git", "-C", str(tree), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    (tree / "a.txt").write_text("a\n")
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "a.txt"], check=True)
    subprocess.run([*git, "commit", "-qm", "a"], check=True)
    sha = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True).stdout
    assert default_version(tree) == f"{__version__}+g{sha[:7]}"
    (tree / "a.txt").write_text("b\n")
    assert default_version(tree) == f"{__version__}+g{sha[:7]}.dirty"


def _repack(src: Path, dest: Path, change) -> Path:
    with tarfile.open(src) as tar:
        files = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}
    change(files)
    with tarfile.open(dest, "w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return dest


@pytest.mark.parametrize(
    ("change", "says"),
    [
        (lambda f: f.update({"constraints.txt": f["constraints.txt"] + b"evil==1\n"}), "sha256"),
        (lambda f: f.update({"extra.sh": b"#!/bin/sh\n"}), "damaged or altered"),
        (lambda f: f.pop("constraints.txt"), "damaged or altered"),
        (lambda f: f.pop("release.json"), "no release.json"),
    ],
    ids=["altered", "added", "missing", "no-manifest"],
)
def test_an_altered_artifact_is_refused_and_nothing_is_installed(tmp_path, artifacts, change, says):
    bad = _repack(artifacts[V1], tmp_path / f"kiosk-{V1}.tar", change)
    with pytest.raises(ProvisionError, match=says):
        read_release(bad)
    root = tmp_path / "image"
    with pytest.raises(ProvisionError, match=says):
        install_release(root, bad)
    assert not (root / "opt/kiosk").exists()
    status, out = provision("--root", root, "--release", bad, *BASE)
    assert status == 2 and says in out, out  # refused before any step: nothing changed
    assert not root.exists()


def test_not_a_tar_is_refused(tmp_path):
    junk = tmp_path / "kiosk-1.0.0.tar"
    junk.write_bytes(b"not a tar at all" * 100)
    with pytest.raises(ProvisionError, match="not a readable release tar"):
        read_release(junk)


def test_a_dry_run_with_a_release_plans_it_and_changes_nothing(tmp_path, artifacts):
    root = tmp_path / "image"
    status, out = provision("--root", root, "--release", artifacts[V1], *BASE, "--dry-run")
    assert status == 0 and results(out)["release"] == "will change", out
    assert f"install release {V1} in /opt/kiosk/releases/{V1}" in out
    assert not root.exists()


def test_the_first_install_makes_the_release_current_and_a_second_run_changes_nothing(
    kiosk_root, artifacts
):
    root, status, out = kiosk_root
    assert status == 0, out
    assert results(out)["release"] == "changed" and results(out)["units"] == "changed"
    assert f"installed release {V1} using this machine's" in out
    assert "/opt/kiosk/current -> releases/1.0.0+t1 (was none)" in out
    assert "not in" not in out  # the units' and links' binaries are there now: no notes
    assert os.readlink(root / "opt/kiosk/current") == f"releases/{V1}"
    assert os.readlink(root / "usr/local/bin/kiosk") == "/opt/kiosk/current/bin/kiosk"
    assert installed_versions(root)[:1] == [V1]

    status, out = provision("--root", root, "--release", artifacts[V1], *BASE)
    assert status == 0 and "nothing to change" in out, out
    assert results(out)["release"] == "unchanged"
    assert f"release {V1} installed, /opt/kiosk/current -> releases/{V1}" in out


def test_the_installed_release_runs_and_carries_its_units(kiosk_root):
    root = kiosk_root[0]
    assert in_release(root, "kiosk", "--version") == f"kiosk {V1}"
    units = root / "opt/kiosk/current/share/kiosk/systemd"
    for unit in (REPO / "systemd").glob("*.service"):
        assert (units / unit.name).read_bytes() == unit.read_bytes()
        for doc in re.findall(r"^Documentation=file:(\S+)", unit.read_text(), re.M):
            assert (root / doc.lstrip("/")).is_file(), doc  # the guide travels with the release
    said = in_release(root, "python", "-c", "import provisioning.units as u; print(u.default_units_dir())")  # fmt: skip
    assert Path(said) == units  # sys.prefix, through the current link


def test_two_releases_side_by_side_switch_and_back(both, artifacts):
    root = both
    assert installed_versions(root) == [V1, V2]
    assert current_version(root) == V1  # installing does not switch
    assert switch_current(root, V2) == V1
    assert current_version(root) == V2
    assert in_release(root, "kiosk", "--version") == f"kiosk {V2}"
    assert switch_current(root, V1) == V2
    assert in_release(root, "kiosk", "--version") == f"kiosk {V1}"
    assert not [p for p in (root / "opt/kiosk").iterdir() if p.name.startswith(".")]

    mark = release_dir(root, V2) / "release.json"
    before = mark.stat().st_mtime_ns
    assert install_release(root, artifacts[V2]) == release_dir(root, V2)  # already there
    assert mark.stat().st_mtime_ns == before


def test_the_units_installed_are_the_current_releases(both):
    root = both
    timer = release_dir(root, V2) / "share/kiosk/systemd/kiosk-doctor.timer"
    original = timer.read_bytes()
    switch_current(root, V2)
    try:
        timer.write_bytes(original + b"# as release 1.0.0+t2 has it\n")
        status, out = provision("--root", root, "--skip", "selftest")
        assert status == 0 and results(out)["units"] == "changed", out
        assert (root / "etc/systemd/system/kiosk-doctor.timer").read_bytes() == timer.read_bytes()
    finally:
        timer.write_bytes(original)
        switch_current(root, V1)


def test_only_complete_releases_count_and_can_be_switched_to(both):
    root = both
    half = release_dir(root, "9.9.9")  # an interrupted install: no release.json
    (half / "bin").mkdir(parents=True)
    try:
        assert "9.9.9" not in installed_versions(root)
        with pytest.raises(ProvisionError, match=r"release 9\.9\.9 is not installed"):
            switch_current(root, "9.9.9")
        assert current_version(root) == V1
    finally:
        half.joinpath("bin").rmdir()
        half.rmdir()


def test_a_different_build_with_an_installed_version_is_refused(tmp_path, both, artifacts):
    def rebuilt(files: dict[str, bytes]) -> None:  # same version, other constraints
        files["constraints.txt"] += b"# rebuilt\n"
        body = json.loads(files["release.json"])
        body["files"]["constraints.txt"] = hashlib.sha256(files["constraints.txt"]).hexdigest()
        files["release.json"] = json.dumps(body).encode()

    other = _repack(artifacts[V2], tmp_path / f"kiosk-{V2}.tar", rebuilt)
    assert read_release(other).version == V2  # a valid artifact
    with pytest.raises(ProvisionError, match="already installed from a different build"):
        install_release(both, other)


def test_system_site_packages_is_set_on_the_installed_release(both, artifacts):
    root = both
    assert system_site_packages(root, V2) is False
    install_release(Target.make(root, False), artifacts[V2], system_site_packages=True)
    assert system_site_packages(root, V2) is True
    install_release(root, artifacts[V2])
    assert system_site_packages(root, V2) is False
    flags = ("--root", root, "--release", artifacts[V1], "--skip", "selftest")
    status, out = provision(*flags, "--system-site-packages")  # V1 is current
    assert status == 0 and results(out)["release"] == "changed", out
    assert system_site_packages(root, V1) is True
    assert results(provision(*flags, "--system-site-packages")[1])["release"] == "unchanged"
    assert provision(*flags)[0] == 0 and system_site_packages(root, V1) is False


def test_bad_build_and_release_arguments_are_refused(tmp_path):
    status, out = provision("build-release", "--out", tmp_path, "--version", "2.0 beta")
    assert status == 1 and "not a PEP 440 version" in out
    status, out = provision("--root", tmp_path / "x", "--system-site-packages", *BASE)
    assert status == 2 and "--system-site-packages goes with --release" in out


CHROOT_CHECK = """set -e
mount -t overlay overlay -o "lowerdir=/,upperdir=$1/upper,workdir=$1/work" "$1/root" || exit 3
mount --bind /proc "$1/root/proc" && mount --rbind /dev "$1/root/dev"
"$PYTHON" -m provisioning.release install "$2" --root "$1/root"
env -u PYTHONPATH chroot "$1/root" /opt/kiosk/current/bin/kiosk --version
cp "$1/root/opt/kiosk/current/pyvenv.cfg" "$1/pyvenv.cfg"
"""


@pytest.mark.slow  # a third full install (~20 s): out of CI's budget; -m slow runs it
@pytest.mark.skipif(os.geteuid() != 0, reason="chroot and mount need root")
@pytest.mark.needs_tool("unshare", install="apt-get install util-linux")
def test_a_root_with_its_own_python_gets_its_venv_made_inside_by_chroot(tmp_path, artifacts):
    """The image path (scripts/pi-check.sh does it in a Debian arm64 root): here the root is
    an overlay of this machine's own /, so its /usr/bin/python3 makes the venv, in a private
    mount namespace; nothing lands outside tmp_path."""
    if not Path("/usr/bin/python3").exists():
        pytest.skip("no /usr/bin/python3 here to stand for the image's Python")
    for name in ("upper", "work", "root"):
        (tmp_path / name).mkdir()
    result = subprocess.run(
        ["unshare", "-m", "sh", "-c", CHROOT_CHECK, "check", str(tmp_path), artifacts[V1]],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PYTHONPATH": str(REPO), "PYTHON": sys.executable},
        cwd=REPO,
    )
    if result.returncode == 3:
        pytest.skip(f"no overlay mount here (a container without it?): {result.stderr.strip()}")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{tmp_path}/root's own /usr/bin/python3 through chroot" in result.stdout
    assert result.stdout.strip().endswith(f"kiosk {V1}")  # run inside the root
    cfg = (tmp_path / "pyvenv.cfg").read_text()
    assert "home = /usr/bin" in cfg and f"-m venv /opt/kiosk/releases/{V1}" in cfg
    assert os.readlink(tmp_path / "upper/opt/kiosk/current") == f"releases/{V1}"


def test_a_release_is_removed_but_never_the_current_one(both, capsys):
    root = both
    assert current_version(root) == V1
    with pytest.raises(ProvisionError, match="is current"):
        remove_release(root, V1)
    assert release_main(["list", "--root", str(root)]) == 0
    assert capsys.readouterr().out == f"* {V1}\n  {V2}\n"
    assert release_main(["remove", V2, "--root", str(root)]) == 0
    assert installed_versions(root) == [V1] and not release_dir(root, V2).exists()
    assert in_release(root, "kiosk", "--version") == f"kiosk {V1}"


@pytest.mark.skipif(os.geteuid() != 0, reason="the chroot path is taken as root only")
def test_the_hosts_ca_bundle_variables_do_not_reach_pip_in_a_root(tmp_path, monkeypatch):
    """REQUESTS_CA_BUNDLE and its kind name this machine's files; inside DIR they would name
    DIR's and override the root pip's cert (CERTIFICATE_VERIFY_FAILED, seen by pi-check)."""
    from provisioning import release_install

    root = tmp_path / "image"
    (root / "usr/bin").mkdir(parents=True)
    (root / "usr/bin/python3").write_text("")  # a root with its own Python: the chroot path
    asked = []

    def probe(argv, **kw):
        asked.append(list(argv))
        return subprocess.CompletedProcess(argv, 0, "aarch64\n", "")

    monkeypatch.setattr(release_install, "run", probe)
    interp = release_install.interpreter(Target.make(root, False))
    assert interp.prefix[:2] == (interp.prefix[0], str(root)) and interp.machine == "aarch64"
    assert asked and asked[0][: len(interp.prefix)] == list(interp.prefix)
    # what the prefix does after chroot, run here: the variables are gone, PIP_* stays
    after_chroot = list(interp.prefix[2:])
    env = {
        **os.environ,
        "REQUESTS_CA_BUNDLE": "/host/ca.pem",
        "CURL_CA_BUNDLE": "/host/ca.pem",
        "SSL_CERT_FILE": "/host/ca.pem",
        "PIP_INDEX_URL": "https://mirror.example/simple",
    }
    shown = subprocess.run(
        [
            *after_chroot,
            "sh",
            "-c",
            'echo "${REQUESTS_CA_BUNDLE-unset} ${CURL_CA_BUNDLE-unset} '
            '${SSL_CERT_FILE-unset} $PIP_INDEX_URL"',
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=10,
    )
    assert shown.stdout.split() == ["unset", "unset", "unset", "https://mirror.example/simple"]
