"""``kiosk demo``: the reference store server with demo data on loopback, and a walk-through.

Until the touch UI exists this is the demo: it seeds a store, serves it, plays one
redemption the way a kiosk will (enroll, scan a member code, hold, capture) and prints
how to try the API by hand.
"""

from __future__ import annotations

import logging
import tempfile
import textwrap
import uuid
from pathlib import Path

log = logging.getLogger(__name__)


def run_demo(state_dir: Path | None, port: int, once: bool) -> int:
    from storeserver import demo, kiosks, members
    from storeserver.runner import ServerThread
    from storeserver.store import Store

    from .sync.client import StoreServerClient

    state_dir = state_dir or Path(tempfile.mkdtemp(prefix="kiosk-demo-"))
    state_dir.mkdir(parents=True, exist_ok=True)
    store = Store(state_dir / "store.db")
    seeded = demo.seed(store, ["kiosk-01"])
    with store.db.transaction() as conn:
        enroll_code = kiosks.new_enrollment_code(conn, store.clock)
        staff_token = kiosks.new_staff_token(conn, store.clock, "demo-staff")
    server = ServerThread(store, "127.0.0.1", port).start()
    url = server.url
    try:
        kiosk = StoreServerClient(
            url, token_file=state_dir / "token", public_key_file=state_dir / "server_key.pub"
        )
        kiosk.enroll(enroll_code, "kiosk-01")
        print(f"Store server (demo data in {state_dir}) on {url}\n")
        print("Demo members:")
        for m in seeded:
            print(f"  {m['id']}  {m['tier']:<8} {m['balance']:>6} points  {m['name']}")
        with store.db.transaction() as conn:
            code = members.issue_code(store.ledger, conn, store.signing_key, "M0002")["code"]
        view = kiosk.resolve_member(code)
        print(
            f"\n1. kiosk-01 scans M0002's code: {view['name_masked']} {view['tier_zh']} {view['balance']} points"
        )
        txn = str(uuid.uuid4())
        hold = kiosk.create_redemption(txn, "M0002", "GIFT-MUG", 800, compartment=1)
        print(
            f"2. hold for a thermal mug in compartment 1: {hold.state}, balance now {hold.raw['balance']}"
        )
        done = kiosk.capture(txn)
        print(f"3. door sensor confirmed, capture: {done.state}")
        print(
            textwrap.dedent(
                f"""
                Try it yourself (kiosk token below; staff calls take the staff token):
                  export KIOSK="{kiosk.token}" STAFF="{staff_token}"
                  curl -s -H "Authorization: Bearer $KIOSK" {url}/v1/catalog
                  CODE=$(curl -s -X POST -H "Authorization: Bearer $STAFF" {url}/v1/members/M0003/code \\
                         | python3 -c 'import json,sys; print(json.load(sys.stdin)["code"])')
                  curl -s -H "Authorization: Bearer $KIOSK" -H 'Content-Type: application/json' \\
                       -d "{{\\"code\\": \\"$CODE\\"}}" {url}/v1/members/resolve
                API reference: {url}/docs (interactive) and docs/api/openapi.json
                """
            )
        )
        if once:
            return 0
        print("Serving until Ctrl-C.", flush=True)
        server.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
        store.close()
    return 0
