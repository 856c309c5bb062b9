"""Write (or check) the store server's OpenAPI document, committed as docs/api/openapi.json.

python -m storeserver.openapi            # regenerate docs/api/openapi.json
python -m storeserver.openapi --check    # exit 1 if the committed file is out of date
python -m storeserver.openapi PATH       # write (or check) another file
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

DEFAULT_PATH = Path("docs/api/openapi.json")
REGENERATE = "python -m storeserver.openapi"


def document() -> dict:
    """The app's OpenAPI document, built on a throwaway store in a temporary directory."""
    from .api import create_app
    from .store import Store

    with tempfile.TemporaryDirectory(prefix="storeserver-openapi-") as tmp:
        store = Store(Path(tmp) / "openapi.db")
        try:
            return create_app(store).openapi()
        finally:
            store.close()


def render(doc: dict | None = None) -> str:
    """The document as committed: sorted keys, two-space indent, UTF-8 text, final newline."""
    doc = document() if doc is None else doc
    return json.dumps(doc, indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m storeserver.openapi",
        description="Write the store server's OpenAPI document.",
    )
    parser.add_argument(
        "path", nargs="?", type=Path, default=DEFAULT_PATH, help=f"default {DEFAULT_PATH}"
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="do not write; exit 1 if PATH differs from the app's document",
    )
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        try:
            current = args.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            current = None
        if current != text:
            what = "is missing" if current is None else "is out of date"
            regen = REGENERATE if args.path == DEFAULT_PATH else f"{REGENERATE} {args.path}"
            print(f"{args.path} {what}: regenerate it with '{regen}'", file=sys.stderr)
            return 1
        print(f"{args.path} is up to date")
        return 0
    args.path.parent.mkdir(parents=True, exist_ok=True)
    args.path.write_text(text, encoding="utf-8")
    print(f"wrote {args.path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
