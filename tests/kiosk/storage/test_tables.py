"""The journal's tables are named once, in kiosk/storage/tables.py: no other module of the
kiosk spells a table name where the journal gets one (a call's table argument, a ``*TABLE*``
constant, a ``table`` parameter's default), read from the source."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from kiosk.storage import tables

ROOT = Path(__file__).resolve().parents[3]
JOURNAL_CALLS = {"put", "get", "all", "find", "delete"}


def table_literals(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """(line, name) of every table name written where the journal is told a table."""

    def named(node: ast.AST | None) -> str | None:
        ok = isinstance(node, ast.Constant) and node.value in tables.ALL
        return node.value if ok else None  # type: ignore[union-attr]

    for node in ast.walk(tree):
        found: list[ast.AST | None] = []
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr in JOURNAL_CALLS and node.args:
                found.append(node.args[0])
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names = [n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)]
            if any("TABLE" in n or n.endswith("NONCES") for n in names):
                found += list(ast.walk(node.value)) if node.value is not None else []
        elif isinstance(node, ast.arguments):
            params = [*node.posonlyargs, *node.args]
            defaults = dict(
                zip(params[len(params) - len(node.defaults) :], node.defaults, strict=True)
            )
            defaults |= {a: d for a, d in zip(node.kwonlyargs, node.kw_defaults, strict=True) if d}
            found += [d for a, d in defaults.items() if "table" in a.arg]
        for value in found:
            name = named(value)
            if name is not None:
                yield getattr(value, "lineno", 0), name


def test_no_module_but_tables_py_names_a_journal_table():
    spelled = [
        f"{path.relative_to(ROOT)}:{line}: {name!r}"
        for path in sorted((ROOT / "kiosk").rglob("*.py"))
        if path != ROOT / "kiosk" / "storage" / "tables.py"
        for line, name in table_literals(ast.parse(path.read_text(encoding="utf-8")))
    ]
    assert spelled == [], "use kiosk.storage.tables instead:\n" + "\n".join(spelled)


def test_the_rule_sees_each_way_of_spelling_a_table():
    source = """
FLAG_TABLE = "compartment_flags"
A_TABLE, KEY = "staff_revoked", "list"
journal.get("txn", key)
def f(journal, table="nonces"): ...
journal.put(tables.TXN, key, {})  # fine
JOB = "restock"  # fine: not a table
"""
    assert [name for _, name in table_literals(ast.parse(source))] == [
        "compartment_flags", "staff_revoked", "txn", "nonces",
    ]  # fmt: skip


def test_every_table_name_is_distinct():
    assert len(set(tables.ALL)) == len(tables.ALL)
