"""A release artifact: one tar holding the project wheel, constraints.txt and release.json.

``build_release`` copies the source tree (the files git knows, tracked or not ignored) to a
temporary folder, writes the release version into that copy's ``kiosk/__init__.py`` (so the
installed ``kiosk --version`` and the wheel's metadata say it), builds the wheel there with
``pip wheel --no-deps`` and packs ``kiosk-<version>.tar``. The checkout is not touched.

``read_release`` opens an artifact and checks every file against release.json's sha256; an
artifact that does not match (tampered, truncated, a file added or missing) is refused.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import re
import shutil
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from kiosk import __version__
from provisioning.target import ProvisionError, run

log = logging.getLogger(__name__)

MANIFEST_NAME = "release.json"
CONSTRAINTS_NAME = "constraints.txt"
FORMAT = 1
BUILD_TIMEOUT_S = 600
_VERSION_LINE = re.compile(r'^__version__ = "[^"]*"$', re.MULTILINE)
# PEP 440: public part, optional local part of letters, digits and dots
_VERSION_RE = re.compile(
    r"^\d+(\.\d+)*((a|b|rc)\d+)?(\.post\d+)?(\.dev\d+)?(\+[a-z0-9]+(\.[a-z0-9]+)*)?$"
)
_SKIP_COPY = shutil.ignore_patterns(
    ".git", ".venv", "__pycache__", "*.egg-info", "build", "dist", ".*_cache", ".hypothesis"
)


@dataclass(frozen=True)
class ReleaseManifest:
    """release.json of a verified artifact."""

    version: str
    commit: str | None
    built_at: str
    wheel: str  # the wheel's file name inside the artifact
    files: dict[str, str]  # file name -> sha256 (hex)
    artifact: Path

    def to_json(self) -> str:
        body = {
            "format": FORMAT,
            "version": self.version,
            "commit": self.commit,
            "built_at": self.built_at,
            "wheel": self.wheel,
            "files": self.files,
        }
        return json.dumps(body, indent=2, sort_keys=True) + "\n"


def check_version(version: str) -> str:
    """``version`` if it is a PEP 440 version (lower case), else a ProvisionError."""
    if not _VERSION_RE.match(version):
        raise ProvisionError(
            f"release version {version!r} is not a PEP 440 version such as 0.1.0 or "
            "0.1.0+g161a356 (lower-case letters, digits and dots after the +)"
        )
    return version


def _git(source: Path, *args: str) -> str | None:
    if shutil.which("git") is None or not (source / ".git").exists():
        return None
    result = run(["git", "-C", str(source), *args], what="reading git", check=False)
    return result.stdout if result.returncode == 0 else None


def git_state(source: Path) -> tuple[str | None, bool]:
    """(commit, dirty) of the checkout at ``source``; (None, False) without git."""
    commit = _git(source, "rev-parse", "HEAD")
    if commit is None:
        return None, False
    status = _git(source, "status", "--porcelain", "--untracked-files=normal") or ""
    return commit.strip(), bool(status.strip())


def default_version(source: Path) -> str:
    """kiosk.__version__ with a git local part: 0.1.0+g161a356, 0.1.0+g161a356.dirty."""
    commit, dirty = git_state(source)
    if commit is None:
        return __version__
    return f"{__version__}+g{commit[:7]}" + (".dirty" if dirty else "")


def _copy_source(source: Path, dest: Path) -> None:
    listed = _git(source, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
    if listed is None:
        shutil.copytree(source, dest, ignore=_SKIP_COPY, symlinks=True)
        return
    for name in filter(None, listed.split("\0")):
        src = source / name
        if not src.is_file() or src.is_symlink():  # deleted in the work tree, or a link
            continue
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, target)


def _stamp_version(tree: Path, version: str) -> None:
    init = tree / "kiosk" / "__init__.py"
    text = init.read_text(encoding="utf-8")
    if not _VERSION_LINE.search(text):
        raise ProvisionError(f'{init}: no __version__ = "..." line to set the release version in')
    init.write_text(_VERSION_LINE.sub(f'__version__ = "{version}"', text), encoding="utf-8")


def _build_wheel(tree: Path, out: Path) -> Path:
    argv = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-input", "-w", str(out)]
    run([*argv, str(tree)], what="building the wheel", timeout_s=BUILD_TIMEOUT_S)
    wheels = list(out.glob("*.whl"))
    if len(wheels) != 1:
        raise ProvisionError(f"building the wheel: expected one wheel in {out}, found {wheels}")
    return wheels[0]


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), 0o644, int(datetime.now(UTC).timestamp())
    tar.addfile(info, io.BytesIO(data))


def build_release(source: Path, out_dir: Path, version: str | None = None) -> Path:
    """Build ``out_dir/kiosk-<version>.tar`` from the checkout at ``source``; its path."""
    source = source.resolve()
    if not (source / "setup.cfg").is_file() or not (source / "kiosk" / "__init__.py").is_file():
        raise ProvisionError(f"{source} is not a kiosk checkout (no setup.cfg, kiosk/)")
    version = check_version(version or default_version(source))
    commit, _ = git_state(source)
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="kiosk-release-") as tmp:
        tree = Path(tmp) / "src"
        _copy_source(source, tree)
        _stamp_version(tree, version)
        wheel = _build_wheel(tree, Path(tmp) / "wheel")
        contents = {
            wheel.name: wheel.read_bytes(),
            CONSTRAINTS_NAME: (source / CONSTRAINTS_NAME).read_bytes(),
        }
    manifest = ReleaseManifest(
        version=version,
        commit=commit,
        built_at=datetime.now(UTC).isoformat(timespec="seconds"),
        wheel=wheel.name,
        files={name: sha256_of(data) for name, data in contents.items()},
        artifact=out_dir / f"kiosk-{version}.tar",
    )
    partial = manifest.artifact.with_name(manifest.artifact.name + ".partial")
    with tarfile.open(partial, "w") as tar:
        _add(tar, MANIFEST_NAME, manifest.to_json().encode())
        for name, data in contents.items():
            _add(tar, name, data)
    partial.replace(manifest.artifact)
    log.info("built %s (%s)", manifest.artifact, manifest.wheel)
    return manifest.artifact


def _members(artifact: Path) -> dict[str, bytes]:
    try:
        with tarfile.open(artifact, "r:") as tar:
            found = {}
            for member in tar.getmembers():
                if not member.isfile() or "/" in member.name or member.name.startswith("."):
                    raise ProvisionError(f"{artifact}: unexpected entry {member.name!r}")
                found[member.name] = tar.extractfile(member).read()  # type: ignore[union-attr]
            return found
    except (tarfile.TarError, EOFError) as exc:
        raise ProvisionError(f"{artifact}: not a readable release tar ({exc})") from None
    except FileNotFoundError:
        raise ProvisionError(f"{artifact}: no such file") from None


def _parse_manifest(artifact: Path, raw: bytes | None) -> ReleaseManifest:
    if raw is None:
        raise ProvisionError(f"{artifact}: no {MANIFEST_NAME}: not a kiosk release")
    try:
        body = json.loads(raw)
        manifest = ReleaseManifest(
            version=check_version(body["version"]),
            commit=body.get("commit"),
            built_at=body["built_at"],
            wheel=body["wheel"],
            files=dict(body["files"]),
            artifact=artifact,
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise ProvisionError(f"{artifact}: {MANIFEST_NAME} is unreadable ({exc!r})") from None
    if body.get("format") != FORMAT:
        raise ProvisionError(f"{artifact}: release format {body.get('format')}, expected {FORMAT}")
    return manifest


def read_release(artifact: Path) -> ReleaseManifest:
    """The manifest of ``artifact`` after checking every file's sha256 against it."""
    members = _members(artifact)
    manifest = _parse_manifest(artifact, members.pop(MANIFEST_NAME, None))
    if set(members) != set(manifest.files) or manifest.wheel not in members:
        raise ProvisionError(
            f"{artifact}: holds {sorted(members)} but {MANIFEST_NAME} lists "
            f"{sorted(manifest.files)}: a damaged or altered release, do not install it"
        )
    if CONSTRAINTS_NAME not in members:
        raise ProvisionError(f"{artifact}: no {CONSTRAINTS_NAME}: not a kiosk release")
    for name, data in members.items():
        if sha256_of(data) != manifest.files[name]:
            raise ProvisionError(
                f"{artifact}: {name} does not match its sha256 in {MANIFEST_NAME}: a damaged "
                "or altered release, do not install it (build or copy it again)"
            )
    return manifest


def extract_release(artifact: Path, dest: Path) -> ReleaseManifest:
    """Verify ``artifact`` and write its files (and release.json) into ``dest``."""
    manifest = read_release(artifact)
    dest.mkdir(parents=True, exist_ok=True)
    for name, data in _members(artifact).items():
        (dest / name).write_bytes(data)
    if any(sha256_of((dest / n).read_bytes()) != h for n, h in manifest.files.items()):
        raise ProvisionError(f"{artifact}: changed while being unpacked to {dest}")
    return manifest


__all__ = [
    "ReleaseManifest",
    "build_release",
    "check_version",
    "default_version",
    "extract_release",
    "read_release",
]
