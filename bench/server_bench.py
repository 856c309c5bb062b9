"""Store server throughput: holds per second and latency for 1, 4 and 16 concurrent kiosks.

Real HTTP on 127.0.0.1 (uvicorn + SQLite WAL, synchronous=FULL), each kiosk a thread with its
own keep-alive session and its own members, so contention is the server's, not the members'.

    .venv/bin/python bench/server_bench.py [--holds 300] [--clients 1,4,16]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
import uuid
from pathlib import Path

import requests

from storeserver import codes, demo, kiosks
from storeserver.runner import ServerThread
from storeserver.store import Store


def setup(store: Store, n_kiosks: int) -> list[str]:
    demo.seed(store, [])
    with store.db.transaction() as conn:
        conn.execute(
            "UPDATE items SET stock = NULL WHERE sku = 'CPN-10'"
        )  # no stock limit in the bench
        for k in range(n_kiosks):
            conn.execute(
                "INSERT INTO members(id, name, phone, tier, created_at) VALUES (?,?,?,?,?)",
                (f"B{k:03d}", f"bench {k}", "13800000000", "basic", "2026-01-01T00:00:00+00:00"),
            )
            store.ledger.earn(conn, f"B{k:03d}", 50_000_000, "purchase", "bench")
    tokens = []
    for k in range(n_kiosks):
        with store.db.transaction() as conn:
            code = kiosks.new_enrollment_code(conn, store.clock, f"bench-{k:02d}")
            tokens.append(kiosks.enroll(conn, store.clock, code, f"bench-{k:02d}"))
    return tokens


def member_code(store: Store, member_id: str) -> str:
    now = int(store.clock.now().timestamp())
    return codes.issue(store.signing_key, codes.CodeKind.MEMBER, member_id, now)


def run_level(store: Store, url: str, tokens: list[str], clients: int, holds: int) -> dict:
    latencies: list[float] = []
    lock = threading.Lock()
    per_client = holds // clients
    barrier = threading.Barrier(clients + 1)
    failures = []

    def client(k: int) -> None:
        http = requests.Session()
        http.headers["Authorization"] = f"Bearer {tokens[k]}"
        # the member scans their code first: the hold carries the session it opens
        resolved = http.post(
            f"{url}/v1/members/resolve", json={"code": member_code(store, f"B{k:03d}")}, timeout=30
        )
        http.headers["X-Member-Session"] = resolved.json()["member_session"]["token"]
        mine = []
        barrier.wait()
        for _ in range(per_client):
            body = {
                "txn_id": str(uuid.uuid4()),
                "member_id": f"B{k:03d}",
                "sku": "CPN-10",
                "compartment": None,
                "points": 500,
            }
            t0 = time.perf_counter()
            resp = http.post(f"{url}/v1/redemptions", json=body, timeout=30)
            mine.append(time.perf_counter() - t0)
            if resp.status_code != 200:
                failures.append(resp.text)
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    barrier.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    q = statistics.quantiles(latencies, n=100)
    return {
        "clients": clients,
        "holds": len(latencies),
        "per_s": len(latencies) / elapsed,
        "p50_ms": q[49] * 1000,
        "p95_ms": q[94] * 1000,
        "failures": len(failures),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--holds", type=int, default=320, help="holds per concurrency level")
    parser.add_argument("--clients", default="1,4,16")
    args = parser.parse_args()
    levels = [int(c) for c in args.clients.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "bench.db")
        tokens = setup(store, max(levels))
        with ServerThread(store) as server:
            run_level(store, server.url, tokens, 1, 20)  # warm-up
            print(
                f"{'clients':>7} {'holds':>6} {'holds/s':>8} {'p50 ms':>7} {'p95 ms':>7} {'failed':>6}"
            )
            for clients in levels:
                r = run_level(store, server.url, tokens, clients, args.holds)
                print(
                    f"{r['clients']:>7} {r['holds']:>6} {r['per_s']:>8.1f} {r['p50_ms']:>7.1f} "
                    f"{r['p95_ms']:>7.1f} {r['failures']:>6}"
                )
        store.close()


if __name__ == "__main__":
    main()
