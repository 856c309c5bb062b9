"""The architecture's rules, read from the source so a change that breaks one fails here:

- only ``kiosk/app.py`` and ``kiosk/screens/`` import Kivy (tests/ and bench/ drive the UI
  and are exempt); services and the domain never reach the UI modules either;
- only ``drivers/`` imports the device libraries;
- ``kiosk/domain/`` imports no I/O library and no layer above it;
- no user-facing literal text: .kv files name catalog keys, no Chinese literal anywhere in
  ``kiosk/`` or ``drivers/`` outside ``kiosk/locale/`` (a short list of exceptions, each with
  its reason), services build their ``Bilingual`` messages from the catalog; every catalog
  key in the code exists, wherever it is written and when built from a value (a typo would
  show the key on screen).
"""

from __future__ import annotations

import ast
import functools
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from kiosk.i18n import load_catalog
from kiosk.ports import DoorState
from kiosk.storage.outbox import EVENT_KINDS

ROOT = Path(__file__).resolve().parents[2]
EXEMPT = {"tests", "bench", "docs", "systemd"}  # tests and benchmarks may drive Kivy directly
KIVY_ALLOWED = ("kiosk/app.py", "kiosk/screens/")
DEVICE_LIBS = {"cv2", "pyzbar", "serial", "escpos", "gpiozero", "zxingcpp"}
DOMAIN_FORBIDDEN = DEVICE_LIBS | {"requests", "urllib3", "tinydb", "kivy", "socket", "sqlite3"}
UPPER_LAYERS = ("kiosk.app", "kiosk.screens", "kiosk.services", "kiosk.storage", "kiosk.sync",
                "kiosk.wiring", "drivers")  # fmt: skip
CJK = re.compile(r"[\u3000-\u30ff\u3400-\u9fff\uff00-\uffef]")
LETTER = re.compile(r"[^\W\d_]")  # a letter of any script
KEY = re.compile(r"[a-z][a-z0-9_]*(\.[A-Za-z0-9_]+)+")
KEY_PREFIX = re.compile(r"[a-z][a-z0-9_]*(\.[A-Za-z0-9_]*)+")
LANGUAGE_CODES = {"zh", "en"}


def product_files() -> Iterator[Path]:
    """Every Python file of the product (not tests, benchmarks, caches or the venv)."""
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT)
        top = rel.parts[0]
        if top in EXEMPT or top.startswith(".") or top.endswith(".egg-info"):
            continue
        yield path


def rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _type_checking_only(tree: ast.AST) -> set[int]:
    """Ids of import nodes under ``if TYPE_CHECKING:`` (never run)."""
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    return skip


@functools.cache
def imports(path: Path) -> list[str]:
    """Module names ``path`` imports at run time, top level or inside functions."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    skip = _type_checking_only(tree)
    out: list[str] = []
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            out.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.append(node.module)
    return out


def top(module: str) -> str:
    return module.split(".")[0]


def under(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def test_the_scan_sees_the_product():
    files = {rel(p) for p in product_files()}
    assert {"kiosk/app.py", "kiosk/screens/base.py", "kiosk/domain/receipts.py",
            "drivers/camera/scanner.py", "storeserver/api/app.py"} <= files  # fmt: skip
    assert not any(f.startswith(("tests/", "bench/")) for f in files)


def test_only_the_app_and_the_screens_import_kivy():
    offenders = [
        f"{rel(p)} imports {m}"
        for p in product_files()
        for m in imports(p)
        if top(m) == "kivy" and not rel(p).startswith(KIVY_ALLOWED)
    ]
    assert offenders == [], "Kivy belongs in kiosk/app.py and kiosk/screens/ only"


def test_services_and_the_domain_never_reach_the_ui_modules():
    offenders = [
        f"{rel(p)} imports {m}"
        for p in product_files()
        if rel(p).startswith(("kiosk/services/", "kiosk/domain/"))
        for m in imports(p)
        if under(m, "kiosk.app") or under(m, "kiosk.screens")
    ]
    assert offenders == []


def test_only_drivers_import_the_device_libraries():
    offenders = [
        f"{rel(p)} imports {m}"
        for p in product_files()
        for m in imports(p)
        if top(m) in DEVICE_LIBS and not rel(p).startswith("drivers/")
    ]
    assert offenders == []


def test_the_domain_does_no_io_and_imports_no_layer_above_it():
    domain = sorted((ROOT / "kiosk" / "domain").rglob("*.py"))
    assert domain
    offenders = [
        f"{rel(p)} imports {m}"
        for p in domain
        for m in imports(p)
        if top(m) in DOMAIN_FORBIDDEN or any(under(m, layer) for layer in UPPER_LAYERS)
    ]
    assert offenders == []


# ---- texts ------------------------------------------------------------------------------------------

KV_TEXT = re.compile(r"^\s*(text|hint_text|title)\s*:\s*(?P<expr>.+?)\s*$")


def kv_literals(path: Path) -> Iterator[tuple[int, str]]:
    """(line, string) for every string literal in a text-like kv property."""
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        match = KV_TEXT.match(line)
        if not match:
            continue
        expr = match["expr"].split("  #")[0]
        try:
            tree = ast.parse(expr, mode="eval")
        except SyntaxError:
            pytest.fail(f"{rel(path)}:{number}: cannot read the kv expression {expr!r}")
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                yield number, node.value


def user_text(value: str, catalog: dict) -> bool:
    """A literal a person would read: letters or CJK, and neither a catalog key nor a
    language code (digits, symbols, "" and "\\n" are fine)."""
    if value in LANGUAGE_CODES or (KEY.fullmatch(value) and value in catalog):
        return False
    if KEY_PREFIX.fullmatch(value) and any(key.startswith(value) for key in catalog):
        return False  # the fixed part of f"alerts.kind_{kind}"
    return bool(LETTER.search(value) or CJK.search(value))


def test_kv_files_hold_no_user_facing_text():
    catalog = load_catalog()
    kv_files = sorted((ROOT / "kiosk" / "screens").glob("*.kv"))
    assert len(kv_files) >= 10
    offenders = [
        f"{rel(p)}:{n}: {value!r}"
        for p in kv_files
        for n, value in kv_literals(p)
        if user_text(value, catalog)
    ]
    assert offenders == [], "put the text in kiosk/locale/*.toml and use root.t(key, root.lang)"


def string_constants(path: Path) -> Iterator[ast.Constant]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }  # fmt: skip
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in docstrings
        ):
            yield node


def ui_python_files() -> list[Path]:
    return [ROOT / "kiosk" / "app.py", *sorted((ROOT / "kiosk" / "screens").glob("*.py"))]


# Chinese outside kiosk/locale/, each with its reason; keep this tiny. Docstrings and comments
# are not text anyone reads on the kiosk and are not scanned.
CJK_ALLOWED = {  # (file, the Chinese in the literal): why
    ("kiosk/config.py", "会员积分兑换"): "the default [store] name_zh: the store's own name, data",
    ("kiosk/demo/rig.py", "示范门店"): "the demo store's name in the demo's config, data",
    ("drivers/printer/escpos_text.py", "？"): "the full-width glyph printed for an unprintable one",
}
CJK_ALLOWED_FILES = {  # printed receipts keep their labels here, pinned by the golden files
    "drivers/printer/templates.py": "receipt labels, always both languages",
    "drivers/printer/samples.py": "the fixed receipts the golden files and the test page print",
}


def cjk_literals(path: Path) -> Iterator[tuple[int, str]]:
    """(line, text) of every literal with Chinese: string constants (f-string parts too) of a
    .py file, the code part of each line of a .kv file."""
    if path.suffix == ".kv":
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            code = line.split("#", 1)[0]
            if CJK.search(code):
                yield number, code.strip()
        return
    for node in string_constants(path):
        if CJK.search(node.value):
            yield node.lineno, node.value


def text_sources(folder: Path) -> list[Path]:
    """The .py and .kv files a text could hide in, outside the catalogs."""
    return [
        p
        for p in sorted([*folder.rglob("*.py"), *folder.rglob("*.kv")])
        if not rel(p).startswith("kiosk/locale/") and rel(p) not in CJK_ALLOWED_FILES
    ]


CJK_RUN = re.compile(f"{CJK.pattern}+")


def chinese_outside_the_catalogs(files: list[Path]) -> list[str]:
    return [
        f"{rel(p)}:{n}: {text!r}"
        for p in files
        for n, text in cjk_literals(p)
        if not all((rel(p), run) in CJK_ALLOWED for run in CJK_RUN.findall(text))
    ]


def test_no_chinese_literal_outside_the_catalogs():
    """Every text a person reads is a key of kiosk/locale/*.toml, with zh and en side by side;
    a Chinese literal in the code would skip the catalog (and its English)."""
    files = text_sources(ROOT / "kiosk") + text_sources(ROOT / "drivers")
    assert {"kiosk/services/restock.py", "kiosk/screens/staff.kv"} <= {rel(p) for p in files}
    assert chinese_outside_the_catalogs(files) == [], "move these to kiosk/locale/*.toml"


def test_the_chinese_literal_scan_finds_a_planted_one(tmp_path, monkeypatch):
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    (tmp_path / "kiosk" / "services").mkdir(parents=True)
    (tmp_path / "kiosk" / "services" / "x.py").write_text(
        '"""说明 (a docstring: fine)."""\nOK = "ok"  # 注释\nMSG = f"剩 {n} 个"\n', encoding="utf-8"
    )
    (tmp_path / "kiosk" / "x.kv").write_text('# 注释\nLabel:\n    text: "你好"\n', "utf-8")
    found = chinese_outside_the_catalogs(text_sources(tmp_path / "kiosk"))
    assert found == ["kiosk/services/x.py:3: '剩 '", "kiosk/services/x.py:3: ' 个'",
                     "kiosk/x.kv:3: 'text: \"你好\"'"]  # fmt: skip


def test_screens_set_no_literal_text_on_a_widget():
    """``widget.text = "Paid"`` would show English to a Chinese reader."""
    catalog = load_catalog()
    offenders = []
    for p in ui_python_files():
        for node in ast.walk(ast.parse(p.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
                names = [t.attr for t in node.targets if isinstance(t, ast.Attribute)]
                value = node.value.value
                if "text" in names and isinstance(value, str) and user_text(value, catalog):
                    offenders.append(f"{rel(p)}:{node.lineno}: {value!r}")
    assert offenders == []


def test_services_build_no_bilingual_from_literals():
    """A service's message comes from the catalog (``kiosk.i18n.bilingual``); a literal
    ``Bilingual("...", "...")`` would skip the catalog's checks."""
    catalog, offenders = load_catalog(), []
    for p in sorted((ROOT / "kiosk" / "services").glob("*.py")):
        for node in ast.walk(ast.parse(p.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.Call) and ast.unparse(node.func) == "Bilingual"):
                continue
            for sub in (s for arg in node.args for s in ast.walk(arg)):
                text = sub.value if isinstance(sub, ast.Constant) else None
                if isinstance(text, str) and user_text(text, catalog):
                    offenders.append(f"{rel(p)}:{node.lineno}: {text!r}")
    assert offenders == []


TEXT_CALLS = {"bilingual", "say", "t", "tr", "text", "both"}


def named_keys(path: Path) -> Iterator[tuple[int, str]]:
    """Catalog keys named as the first argument of a text call (``tr("member.logout")``)."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
        first = node.args[0].value if isinstance(node.args[0], ast.Constant) else None
        if name in TEXT_CALLS and isinstance(first, str) and KEY.fullmatch(first):
            yield node.lineno, first


def kv_keys(path: Path) -> Iterator[tuple[int, str]]:
    for number, value in kv_literals(path):
        if KEY.fullmatch(value):
            yield number, value


NOT_KEYS = {"catalog.json"}  # strings shaped like a key that are not (a file name)


def key_literals(path: Path, namespaces: set[str]) -> Iterator[tuple[int, str, bool]]:
    """(line, key, whole) for every string in ``path`` shaped like a key of one of the catalog's
    ``namespaces``, wherever it stands (a refusal table, a conditional, a default argument);
    ``whole`` is False for the fixed start of an f-string key (``f"alerts.kind_{kind}"``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    parts = {id(v) for n in ast.walk(tree) if isinstance(n, ast.JoinedStr) for v in n.values}
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Constant) and isinstance(node.value, str)):
            continue
        value = node.value
        if value in NOT_KEYS or value.split(".")[0] not in namespaces:
            continue
        if id(node) in parts and KEY_PREFIX.fullmatch(value):
            yield node.lineno, value, False
        elif KEY.fullmatch(value):
            yield node.lineno, value, True


def test_every_key_shaped_string_in_the_code_is_in_the_catalog():
    """Keys chosen in tables or conditionals (``"staff.auth.wrong_pin_last" if left == 1 else
    ...``) are not the first argument of a text call: any string shaped like a key of the
    catalog's namespaces must be a key, and the fixed start of an f-string key must start one."""
    catalog = load_catalog()
    namespaces = {key.split(".")[0] for key in catalog}
    files = [p for p in product_files() if rel(p).startswith("kiosk/")]
    found = [(p, n, key, whole) for p in files for n, key, whole in key_literals(p, namespaces)]
    assert len(found) > 200 and any(not whole for *_, whole in found)
    missing = [
        f"{rel(p)}:{n}: {key}"
        for p, n, key, whole in found
        if (key not in catalog if whole else not any(k.startswith(key) for k in catalog))
    ]
    assert missing == [], "add these keys to kiosk/locale/*.toml"


def test_keys_built_from_a_value_exist_for_every_value():
    """The f-string keys: one text per outbox event kind and per door state."""
    catalog = load_catalog()
    wanted = {f"alerts.kind_{kind}" for kind in EVENT_KINDS}
    wanted |= {f"diagnostics.door_{state.value}" for state in DoorState}
    assert sorted(wanted - set(catalog)) == []


def test_every_catalog_key_named_in_the_code_exists():
    catalog = load_catalog()
    files = [p for p in product_files() if rel(p).startswith("kiosk/")]
    named = [(p, n, key) for p in files for n, key in named_keys(p)]
    named += [(p, n, key) for p in sorted((ROOT / "kiosk" / "screens").glob("*.kv"))
              for n, key in kv_keys(p)]  # fmt: skip
    assert len(named) > 100  # the scan finds the texts at all
    missing = [f"{rel(p)}:{n}: {key}" for p, n, key in named if key not in catalog]
    assert missing == [], "add these keys to kiosk/locale/*.toml"


# ---- one composition root --------------------------------------------------------------------------

CONTAINER_MODULES = ("kiosk.wiring", "kiosk.core")  # the composition root (and its old name)
NO_CONTAINER = ("kiosk/screens/", "kiosk/services/")


def container_parameters(path: Path) -> Iterator[str]:
    """``function(parameter)`` for every function or method of ``path`` that takes the
    container (a parameter named ``core``) or builds itself from it (``from_core``)."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        args = node.args
        names = [a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs)]
        if "core" in names or node.name == "from_core":
            yield f"{node.name}(core) at line {node.lineno}"


def test_screens_and_services_never_import_the_composition_root():
    files = [p for p in product_files() if rel(p).startswith(NO_CONTAINER)]
    assert len(files) > 20  # the scan sees the screens and the services
    offenders = [
        f"{rel(p)} imports {m}"
        for p in files
        for m in imports(p)
        if any(under(m, root) for root in CONTAINER_MODULES)
    ]
    assert offenders == [], "screens and services get their ports and flows from kiosk/wiring.py"


def test_screens_and_services_never_receive_the_container():
    offenders = [
        f"{rel(p)}: {found}"
        for p in product_files()
        if rel(p).startswith(NO_CONTAINER)
        for found in container_parameters(p)
    ]
    assert offenders == [], "pass the ports (or a narrow callable) the code needs, not the core"


# ---- the store server seen from the kiosk --------------------------------------------------------

STORE_FACADE = "storeserver.embedded"  # the store server's public entry points
STORE_FACADE_USERS = ("kiosk/demo/",)  # the kiosk reaches its server over HTTP, the demo runs one


def storeserver_imports(path: Path) -> Iterator[tuple[int, str]]:
    """(line, full dotted name) of every store server module or name ``path`` imports at run
    time: ``from storeserver import kiosks`` is ``storeserver.kiosks``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    skip = _type_checking_only(tree)
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        yield from ((node.lineno, name) for name in names if top(name) == "storeserver")


def store_server_reaches(files: list[Path]) -> list[str]:
    return [
        f"{rel(p)}:{line} imports {name}"
        for p in files
        for line, name in storeserver_imports(p)
        if not (rel(p).startswith(STORE_FACADE_USERS) and under(name, STORE_FACADE))
    ]


def kiosk_files() -> list[Path]:
    return [p for p in product_files() if rel(p).startswith(("kiosk/", "drivers/"))]


def test_the_kiosk_uses_the_store_server_only_through_its_facade_and_only_in_the_demo():
    files = kiosk_files()
    offenders = store_server_reaches(files)
    assert offenders == [], (
        f"the kiosk talks to its store server over HTTP (kiosk/sync/); only {STORE_FACADE_USERS} "
        f"may run one, through {STORE_FACADE} (the store server's public entry points)"
    )
    assert any(
        name == f"{STORE_FACADE}.EmbeddedStoreServer"
        for p in files
        for _, name in storeserver_imports(p)
    )  # the scan sees the demo's


def test_the_facade_rule_flags_a_module_behind_it_and_a_use_outside_the_demo(tmp_path, monkeypatch):
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    (tmp_path / "kiosk" / "demo").mkdir(parents=True)
    (tmp_path / "kiosk" / "demo" / "ok.py").write_text(
        "def f():\n    from storeserver.embedded import EmbeddedStoreServer\n"
    )
    (tmp_path / "kiosk" / "demo" / "deep.py").write_text("from storeserver import kiosks\n")
    (tmp_path / "kiosk" / "sync.py").write_text("import storeserver.embedded\n")
    files = sorted((tmp_path / "kiosk").rglob("*.py"))
    assert store_server_reaches(files) == [
        "kiosk/demo/deep.py:1 imports storeserver.kiosks",
        "kiosk/sync.py:1 imports storeserver.embedded",
    ]
