"""The shape of a SQLite schema, read back from the file: tables, their columns, keys, foreign
keys and indexes, to compare two databases (revision 0001's check, the head snapshot test)."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field

# Tables that are the migration tool's or SQLite's own, not the store's.
NOT_SCHEMA = ("alembic_version",)

Column = tuple[str, str, int, str | None, int]  # name, type, not null, default, key position
Index = tuple[str, int, tuple[str, ...], int]  # name (or origin), unique, columns, partial


@dataclass
class TableShape:
    columns: tuple[Column, ...]
    foreign_keys: tuple[tuple, ...]
    indexes: tuple[Index, ...]

    def by_name(self) -> TableShape:
        """The same table, columns in name order (ALTER TABLE ADD COLUMN appends)."""
        return TableShape(tuple(sorted(self.columns)), self.foreign_keys, self.indexes)


@dataclass
class Shape:
    tables: dict[str, TableShape] = field(default_factory=dict)

    def differences(self, got: Shape) -> list[str]:
        """How ``got`` departs from this shape for this shape's tables (columns by name)."""
        out = []
        for name, want in sorted(self.tables.items()):
            have = got.tables.get(name)
            if have is None:
                out.append(f"table {name} missing")
                continue
            want, have = want.by_name(), have.by_name()
            for part in ("columns", "foreign_keys", "indexes"):
                if getattr(want, part) != getattr(have, part):
                    out.append(f"{name} {part}: want {getattr(want, part)}, got {getattr(have, part)}")  # fmt: skip
        return out


def _indexes(conn: sqlite3.Connection, table: str) -> tuple[Index, ...]:
    out = []
    for _seq, name, unique, origin, partial in conn.execute(f"PRAGMA index_list('{table}')"):
        cols = tuple(r[2] for r in conn.execute(f"PRAGMA index_info('{name}')"))
        out.append((name if origin == "c" else origin, unique, cols, partial))
    return tuple(sorted(out))


def shape_of(conn: sqlite3.Connection) -> Shape:
    names = [
        r[0]
        for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        )
        if r[0] not in NOT_SCHEMA
    ]
    shape = Shape()
    for name in sorted(names):
        columns = tuple(
            (r[1], r[2].upper(), r[3], r[4], r[5])
            for r in conn.execute(f"PRAGMA table_info('{name}')")
        )
        keys = tuple(
            sorted(tuple(r[2:]) for r in conn.execute(f"PRAGMA foreign_key_list('{name}')"))
        )
        shape.tables[name] = TableShape(columns, keys, _indexes(conn, name))
    return shape
