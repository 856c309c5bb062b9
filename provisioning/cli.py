"""``kiosk-provision``: set up a Raspberry Pi as a kiosk (not implemented yet)."""

from __future__ import annotations

import argparse
import sys

NOT_YET = (
    "kiosk-provision is not implemented yet. Until it is, enroll by hand: "
    "'storeserver enroll-code' on the server, then see README 'Store server'."
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kiosk-provision", description=NOT_YET)
    parser.parse_args(argv)
    print(NOT_YET, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
