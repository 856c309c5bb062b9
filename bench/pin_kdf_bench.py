"""Cost of one staff PIN hash (scrypt, r = 8, p = 1) at candidate costs, and what it means.

For each candidate n: the memory scrypt needs (128 * r * n bytes), the best of ``--repeat``
hashes in ms on this machine, that figure scaled to a Raspberry Pi 4 (Cortex-A72) by
``--pi-factor`` (default 5: scrypt is memory-bound and a Pi 4 core runs it about 4-6x slower
than a current x86_64 server core), and the time one such core needs for all 10^6 six-digit
PINs: what a stolen SD card costs an attacker with the kiosk's cache. The kiosk's choice
(kiosk/domain/staff.py ScryptParams) is marked.

    PYTHONPATH=. python bench/pin_kdf_bench.py [--repeat 5] [--pi-factor 5]

Run it on the Pi itself with ``--pi-factor 1``. Goal (issue 11): one sign-in <= about 1 s on a
Pi 4 and <= 64 MiB of memory. Figures measured on a shared 2-core AMD EPYC (quietest run):
2^14 37 ms, 2^15 93 ms, 2^16 187 ms; under load up to 59 / 105 / 194 ms.
"""

from __future__ import annotations

import argparse
import hashlib
import secrets
import time

from kiosk.domain.staff import ScryptParams

CANDIDATES = (2**14, 2**15, 2**16)
R, P = 8, 1
GOAL_S, GOAL_MIB = 1.0, 64
SIX_DIGITS = 10**6


def ms_per_hash(n: int, repeat: int) -> float:
    """The best of ``repeat`` hashes (the least disturbed by other work on the machine)."""
    salt = secrets.token_bytes(16)
    best = float("inf")
    for i in range(repeat):
        start = time.perf_counter()
        hashlib.scrypt(f"{i:06d}".encode(), salt=salt, n=n, r=R, p=P, dklen=32, maxmem=2**30)
        best = min(best, time.perf_counter() - start)
    return best * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--pi-factor", type=float, default=5.0)
    args = parser.parse_args()
    chosen = ScryptParams().n
    print(f"scrypt r={R} p={P}; Pi 4 = this machine x {args.pi_factor:g}")
    print(f"{'n':>8} {'MiB':>5} {'ms here':>8} {'ms Pi 4':>8} {'1e6 PINs here':>17}  goal")
    for n in CANDIDATES:
        mib = 128 * R * n / 2**20
        here = ms_per_hash(n, args.repeat)
        pi = here * args.pi_factor
        days = here / 1000 * SIX_DIGITS / 86400
        ok = "ok" if pi / 1000 <= GOAL_S and mib <= GOAL_MIB else "too slow/big"
        mark = "  <- kiosk" if n == chosen else ""
        print(f"{'2^' + str(n.bit_length() - 1):>8} {mib:5.0f} {here:8.1f} {pi:8.0f} "
              f"{days:13.1f} days  {ok}{mark}")  # fmt: skip


if __name__ == "__main__":
    main()
