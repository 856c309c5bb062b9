"""Every error class of the kiosk and its drivers is in the one ``KioskError`` tree
(kiosk/errors.py, documented in docs/errors.md), read from the source: a class whose bases lead
to an exception outside the tree fails here. Kivy modules are read, not imported."""

from __future__ import annotations

import ast
import builtins
import importlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("kiosk", "drivers")
TREE_ROOT = "kiosk.errors.KioskError"
NOT_IMPORTED = ("kivy",)  # widget bases: importing them would start Kivy, and none is an error
DOCS = ROOT / "docs" / "errors.md"

# Exceptions that must stay outside the tree, and why (none today: keep it that way).
ALLOWED: dict[str, str] = {}


@dataclass(frozen=True)
class ClassDef:
    name: str  # module.Class
    bases: tuple[str, ...]  # dotted names the bases resolve to
    where: str  # path:line


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        inner = _dotted(node.value)
        return None if inner is None else f"{inner}.{node.attr}"
    return None


def classes(path: Path, root: Path) -> Iterator[ClassDef]:
    """Every class in ``path``, its bases resolved through the module's imports."""
    module = module_name(path, root)
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    names: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                names[alias.asname or alias.name.split(".")[0]] = alias.name if alias.asname else alias.name.split(".")[0]  # fmt: skip
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                names[alias.asname or alias.name] = f"{node.module}.{alias.name}"
        elif isinstance(node, ast.ClassDef):
            names.setdefault(node.name, f"{module}.{node.name}")
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            bases = []
            for base in node.bases:
                dotted = _dotted(base)
                if dotted is None:
                    continue
                head, _, rest = dotted.partition(".")
                resolved = names.get(head, f"builtins.{head}" if hasattr(builtins, head) else f"{module}.{head}")  # fmt: skip
                bases.append(f"{resolved}.{rest}" if rest else resolved)
            where = f"{path.relative_to(root)}:{node.lineno}"
            yield ClassDef(f"{module}.{node.name}", tuple(bases), where)


def _external_is_exception(dotted: str) -> bool:
    if dotted.split(".")[0] in NOT_IMPORTED:
        return False
    module, _, attr = dotted.rpartition(".")
    while module:
        try:
            obj = importlib.import_module(module)
            break
        except ImportError:
            module, _, first = module.rpartition(".")
            attr = f"{first}.{attr}"
    else:
        return False
    for part in attr.split("."):
        obj = getattr(obj, part, None)
    return isinstance(obj, type) and issubclass(obj, BaseException)


class Index:
    """The classes under ``packages``, and which are exceptions, in or outside the tree."""

    def __init__(self, root: Path, packages: tuple[str, ...] = PACKAGES) -> None:
        files = (f for p in packages for f in sorted((root / p).rglob("*.py")))
        self.found = {c.name: c for f in files for c in classes(f, root)}

    def in_tree(self, name: str, seen: frozenset[str] = frozenset()) -> bool:
        if name == TREE_ROOT:
            return True
        c = self.found.get(name)
        return c is not None and name not in seen and any(self.in_tree(b, seen | {name}) for b in c.bases)  # fmt: skip

    def is_exception(self, name: str, seen: frozenset[str] = frozenset()) -> bool:
        c = self.found.get(name)
        if c is None:
            return _external_is_exception(name)
        return name not in seen and any(self.is_exception(b, seen | {name}) for b in c.bases)

    def outside_the_tree(self) -> list[str]:
        """``where: name`` of each exception class that is not a KioskError."""
        return [
            f"{c.where}: {c.name}"
            for c in self.found.values()
            if c.name not in ALLOWED and self.is_exception(c.name) and not self.in_tree(c.name)
        ]


def test_every_error_class_is_a_kiosk_error():
    assert Index(ROOT).outside_the_tree() == []


def test_the_walk_finds_an_error_outside_the_tree(tmp_path):
    pkg = tmp_path / "kiosk"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "errors.py").write_text(
        "class KioskError(Exception): ...\nclass Mine(KioskError): ...\n"
    )
    (pkg / "sub" / "a.py").write_text(
        "import urllib3\nfrom kiosk.errors import Mine\n"
        "class Fine(Mine): ...\n"
        "class Loose(ValueError): ...\n"
        "class Wrapped(urllib3.exceptions.SSLError): ...\n"
        "class Both(urllib3.exceptions.SSLError, Mine): ...\n"
        "class NoError: ...\n"
    )
    assert Index(tmp_path, ("kiosk",)).outside_the_tree() == [
        "kiosk/sub/a.py:4: kiosk.sub.a.Loose",
        "kiosk/sub/a.py:5: kiosk.sub.a.Wrapped",
    ]


def test_every_error_class_is_documented():
    """docs/errors.md names each class of the tree (as `Name`)."""
    text = DOCS.read_text(encoding="utf-8")
    index = Index(ROOT)
    errors = sorted(n for n in index.found if index.in_tree(n))
    missing = [n for n in errors if f"`{n.rpartition('.')[2]}`" not in text]
    assert len(errors) > 10 and missing == []
