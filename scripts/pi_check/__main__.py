"""``scripts/pi-check.sh [--work DIR] [--rebuild-root] [--slow-factor N] [--tests PATH ...]``:
the arm64 proof, step by step (see the package docstring). Exit 0 only if every step passed."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import subprocess
import sys
import tarfile
from pathlib import Path

from provisioning.packages import KIOSK_PACKAGES
from provisioning.release import read_release
from provisioning.release_build import MANIFEST_NAME
from provisioning.target import ProvisionError
from scripts.pi_check.pipconf import PIP_LOG_IN_ROOT, parse_config_list, plan_root_pip
from scripts.pi_check.report import Steps, format_table
from scripts.pi_check.rootfs import ArmRoot, Runner, host_mirror
from scripts.pi_check.wheels import format_installed, installed_in, source_builds

REPO = Path(__file__).resolve().parents[2]
DEFAULT_WORK = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "kiosk-pi-check"
BOOTSTRAP_INCLUDE = ("python3", "python3-venv", "ca-certificates")
CURRENT = "/opt/kiosk/current"
IN_ROOT = "/opt/pi-check"  # the wheel, the constraints and the tests copied in
# the demo's store server, and the tests' runner (versions from constraints.txt)
TEST_REQUIREMENTS = ("pytest", "hypothesis")
DEFAULT_TESTS = (
    "tests/drivers",  # the decoders (zxing-cpp, pyzbar), printer, locker
    "tests/kiosk/storage",  # the journal: fsync, sqlite
    "tests/kiosk/test_member_codes.py",  # HMAC member codes
    "tests/kiosk/test_receipt_codec.py",
    "tests/kiosk/test_staff.py",  # PIN hashing
)
HOST_CA_ENV = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR")
TOUR_ENV = {"KIVY_NO_ARGS": "1", "KIVY_HOME": "/tmp/pi-check-kivy", "SDL_VIDEODRIVER": "offscreen"}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="scripts/pi-check.sh", description=__doc__)
    p.add_argument("--work", type=Path, default=DEFAULT_WORK, metavar="DIR",
                   help=f"the root, release and logs (default {DEFAULT_WORK}; never in the repo)")  # fmt: skip
    p.add_argument("--rebuild-root", action="store_true", help="debootstrap the root anew")
    p.add_argument("--slow-factor", type=float, default=6.0, metavar="N",
                   help="KIOSK_SLOW_FACTOR for the tour and the tests under emulation (default 6)")  # fmt: skip
    p.add_argument("--tests", nargs="+", default=list(DEFAULT_TESTS), metavar="PATH",
                   help="the test subset run in the root")  # fmt: skip
    return p


class Proof:
    """The steps, in order; each returns its one-line detail or raises ProvisionError."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args, self.work = args, args.work.resolve()
        self.runner = Runner(self.work / "logs")
        self.root = ArmRoot(self.work / "root", self.runner)
        self.artifact: Path | None = None

    # ---- helpers
    def in_root(self, command: str, *, what: str, log: str, timeout_s: float = 1800,
                env: dict[str, str] | None = None) -> str:  # fmt: skip
        result = self.root.run(["/bin/sh", "-c", command], what=what, log_name=log,
                               timeout_s=timeout_s, env=env)  # fmt: skip
        return result.stdout

    def host_python(self, *argv: str, what: str, log: str, into_root: bool = False) -> str:
        """This checkout's Python module on the host; ``into_root``: it chroots into the root
        (as root), without the host's pip and CA settings, which name host files: the root's
        pip reads its own /etc/pip.conf (REQUESTS_CA_BUNDLE would override its cert)."""
        env = dict(os.environ, PYTHONPATH=str(REPO))  # this checkout's code, not an installed one
        if into_root:
            env = {
                k: v for k, v in env.items() if not k.startswith("PIP_") and k not in HOST_CA_ENV
            }
        result = self.runner.run([sys.executable, *argv], what=what, log_name=log, env=env,
                                 timeout_s=3600, privileged=into_root, clean_env=into_root)  # fmt: skip
        return result.stdout

    # ---- the steps
    def pip_config(self) -> str:
        listing = subprocess.run([sys.executable, "-m", "pip", "config", "list"],
                                 capture_output=True, text=True, check=True).stdout  # fmt: skip
        self.pip = plan_root_pip(parse_config_list(listing))
        for host_file, inside in self.pip.copies.items():
            self.root.put(str(inside), host_file.read_bytes())
        self.root.put("/etc/pip.conf", self.pip.pip_conf().encode())
        self.root.put("/etc/resolv.conf", Path("/etc/resolv.conf").read_bytes())
        keys = ", ".join(sorted(self.pip.options))
        mounts = ", ".join(map(str, self.pip.mounts)) or "none"
        return f"/etc/pip.conf: {keys}; read-only mounts: {mounts}"

    def mounts(self) -> str:
        self.root.mount_all(self.pip.mounts)
        return "/proc /sys /dev /dev/pts" + "".join(f" {m}(ro)" for m in self.pip.mounts)

    def machine(self) -> str:
        said = self.in_root("uname -m", what="uname -m", log="uname").strip()
        if said != "aarch64":
            raise ProvisionError(f"uname -m in the root said {said!r}, not aarch64")
        return said

    def apt(self) -> str:
        packages = " ".join(KIOSK_PACKAGES)
        env = {"DEBIAN_FRONTEND": "noninteractive"}
        self.in_root(f"apt-get update -q && apt-get install -y -q --no-install-recommends "
                     f"{packages}", what="apt-get install", log="apt", timeout_s=3600, env=env)  # fmt: skip
        return f"installed {packages}"

    def build_release(self) -> str:
        out = self.work / "release"
        said = self.host_python("-m", "provisioning.release", "build", "--out", str(out),
                                what="building the release", log="release")  # fmt: skip
        self.artifact = Path(said.strip().splitlines()[-1])
        if not self.artifact.is_file():
            raise ProvisionError(f"the release build printed {self.artifact}, not a file")
        return f"{self.artifact.name} ({self.artifact.stat().st_size / 1e6:.1f} MB)"

    def _drop_other_build(self) -> str:
        """A dirty tree builds the same version with other files each time: in this scratch
        root the older build goes, as kiosk-provision refuses to overwrite a release."""
        assert self.artifact is not None
        manifest = read_release(self.artifact)
        folder = self.root.path / f"opt/kiosk/releases/{manifest.version}"
        mark = folder / MANIFEST_NAME
        if not mark.is_file() or json.loads(mark.read_text()).get("files") == manifest.files:
            return ""
        self.runner.run(["rm", "-rf", "--one-file-system", str(folder)], privileged=True,
                        what="removing an older build", log_name="provision")  # fmt: skip
        return f" (replaced an older build of {manifest.version})"

    def provision(self) -> str:
        dropped = self._drop_other_build()
        said = self.host_python(
            "-m", "provisioning.cli", "--root", str(self.root.path), "--release",
            str(self.artifact), "--sim", "--kiosk-id", "pi-check-1", "--server-url",
            "http://127.0.0.1:8080", "--compartment", "1:5:6", "--compartment", "2:13:19",
            "--skip", "enroll", "--skip", "selftest",
            what="kiosk-provision --root --release", log="provision", into_root=True,
        )  # fmt: skip
        return said.strip().splitlines()[-1] + dropped

    def extras(self) -> str:
        """The demo's store server ([server]) and the tests' runner, into the release venv."""
        assert self.artifact is not None
        with tarfile.open(self.artifact) as tar:
            for member in tar.getmembers():
                if member.name.endswith((".whl", "constraints.txt")):
                    data = tar.extractfile(member)
                    assert data is not None
                    self.root.put(f"{IN_ROOT}/{Path(member.name).name}", data.read())
                    if member.name.endswith(".whl"):
                        wheel = Path(member.name).name
        extra = [f"{IN_ROOT}/{wheel}[server]", *TEST_REQUIREMENTS]
        self.in_root(f"{CURRENT}/bin/python -m pip install --no-input -c "
                     f"{IN_ROOT}/constraints.txt {shlex.join(extra)}",
                     what="pip install [server] pytest hypothesis", log="extras")  # fmt: skip
        return f"{wheel}[server] {' '.join(TEST_REQUIREMENTS)}"

    def kiosk(self, *argv: str, log: str, env: dict[str, str] | None = None,
              last_line: bool = True) -> str:  # fmt: skip
        said = self.in_root(f"{CURRENT}/bin/kiosk {shlex.join(argv)}", what=f"kiosk {argv[0]}",
                            log=log, env=env, timeout_s=3600)  # fmt: skip
        if not last_line:
            return said
        return said.strip().splitlines()[-1] if said.strip() else "exit 0"

    def selftest(self) -> str:
        said = self.kiosk("selftest", "--sim", log="selftest", last_line=False)
        passed = [line.partition(" PASS")[0].strip() for line in said.splitlines()
                  if " PASS " in f"{line} "]  # fmt: skip
        return f"{len(passed)} PASS: {', '.join(passed)}"

    def tour(self) -> str:
        env = TOUR_ENV | {"KIOSK_SLOW_FACTOR": f"{self.args.slow_factor:g}"}
        self.in_root("rm -rf /tmp/pi-check-tour /tmp/pi-check-demo /tmp/pi-check-kivy",
                     what="clearing the last tour", log="tour")  # fmt: skip
        return self.kiosk("demo", "--tour", "/tmp/pi-check-tour", "--state-dir",
                          "/tmp/pi-check-demo", log="tour", env=env)  # fmt: skip

    def tests(self) -> str:
        src = self.root.path / IN_ROOT.lstrip("/") / "src"
        self.runner.run(["rm", "-rf", str(src)], what="clearing the tests", log_name="tests",
                        privileged=True)  # fmt: skip
        self.runner.run(["mkdir", "-p", str(src)], what="mkdir", log_name="tests", privileged=True)
        # setup.cfg holds pytest's settings; some storage tests run a bench/ script
        copied = [str(REPO / name) for name in ("tests", "bench", "setup.cfg")]
        self.runner.run(["cp", "-r", *copied, str(src)],
                        what="copying the tests in", log_name="tests", privileged=True)  # fmt: skip
        env = TOUR_ENV | {"KIOSK_SLOW_FACTOR": f"{self.args.slow_factor:g}"}
        said = self.in_root(f"cd {IN_ROOT}/src && {CURRENT}/bin/python -m pytest -q -p "
                            f"no:cacheprovider {shlex.join(self.args.tests)}",
                            what="the test subset", log="tests", env=env, timeout_s=3600)  # fmt: skip
        return said.strip().splitlines()[-1]

    def wheels(self) -> str:
        venv = (self.root.path / CURRENT.lstrip("/")).resolve()
        dists = installed_in(venv)
        print(format_installed(dists))
        pip_log = self.root.path / str(PIP_LOG_IN_ROOT).lstrip("/")
        builds = source_builds(pip_log.read_text(errors="replace")) if pip_log.exists() else []
        for b in builds:
            took = f"{b.seconds:.0f} s" if b.seconds is not None else "unfinished"
            print(f"built from source: {b.name} ({took}, {b.status})")
        wrong = [f"{d.name} ({d.kind.value})" for d in dists if not d.kind.fits_a_pi]
        kinds = {k: sum(d.kind is k for d in dists) for k in {d.kind for d in dists}}
        counted = ", ".join(f"{n} {k.value}" for k, n in sorted(kinds.items(), key=str))
        size = sum(f.stat().st_size for f in venv.rglob("*") if f.is_file() and not f.is_symlink())
        detail = f"{len(dists)} distributions: {counted}; venv {size / 1e6:.0f} MB"
        detail += f"; built from source: {', '.join(b.name for b in builds) or 'none'}"
        if wrong:
            raise ProvisionError(f"{detail}; not an aarch64 or pure-Python wheel: {wrong}")
        return detail


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    work = args.work.resolve()
    if work == REPO or REPO in work.parents:
        raise SystemExit(f"--work {work}: not inside the repository")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unmount on the way out
    signal.signal(signal.SIGHUP, lambda *_: sys.exit(129))
    proof, steps = Proof(args), Steps()
    try:
        steps.run("binfmt aarch64", proof.root.ensure_binfmt)
        mirror = host_mirror()
        steps.run("debootstrap bookworm arm64",
                  lambda: proof.root.build(mirror, BOOTSTRAP_INCLUDE, args.rebuild_root))  # fmt: skip
        steps.run("host pip config into the root", proof.pip_config)
        steps.run("mounts", proof.mounts)
        steps.run("uname -m", proof.machine)
        steps.run("apt: the kiosk's packages", proof.apt)
        steps.run("build the release (host)", proof.build_release)
        steps.run("kiosk-provision --root --release", proof.provision)
        steps.run("[server] + pytest into the release", proof.extras)
        steps.run("installed wheels", proof.wheels)
        steps.run("kiosk check-config", lambda: proof.kiosk("check-config", log="check-config"))
        steps.run("kiosk selftest --sim", proof.selftest)
        steps.run(f"kiosk demo --tour (x{args.slow_factor:g})", proof.tour)
        steps.run("test subset", proof.tests)
    finally:
        proof.root.unmount_all()
    print(f"\narm64 proof, logs in {proof.runner.logs}:\n")
    print(format_table(steps.rows))
    return 0 if steps.ok else 1


if __name__ == "__main__":
    sys.exit(main())
