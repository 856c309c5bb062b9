"""Item pictures: ``GET /v1/pictures/{name}`` from the store's pictures folder, their hashes in
the catalog, and the demo's drawn pictures."""

from __future__ import annotations

import hashlib
import http.client
import io
import os

import pytest
from PIL import Image

from storeserver import demo, demo_pictures
from storeserver.pictures import MAX_PICTURE_BYTES, PictureFolder
from storeserver.store import Store, StoreSettings

from .conftest import db_snapshot


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def catalog_item(kiosk, sku: str) -> dict:
    return next(i for i in kiosk.get("/v1/catalog").json()["items"] if i["sku"] == sku)


def test_a_picture_is_served_with_its_type_and_etag(store, kiosk):
    data = (store.pictures.folder / "mug.png").read_bytes()
    resp = kiosk.get("/v1/pictures/mug.png")
    assert resp.status_code == 200
    assert resp.headers["Content-Type"] == "image/png"
    assert resp.content == data
    assert resp.headers["ETag"] == f'"{sha(data)}"'
    assert resp.headers["Cache-Control"] == "no-cache"
    item = catalog_item(kiosk, "GIFT-MUG")
    assert (item["picture"], item["picture_sha256"]) == ("mug.png", sha(data))


def test_a_jpeg_is_served_as_jpeg(store, kiosk):
    out = io.BytesIO()
    Image.new("RGB", (32, 32), (200, 40, 40)).save(out, "JPEG")
    (store.pictures.folder / "red.jpg").write_bytes(out.getvalue())
    resp = kiosk.get("/v1/pictures/red.jpg")
    assert resp.status_code == 200, resp.text
    assert resp.headers["Content-Type"] == "image/jpeg"
    assert resp.content == out.getvalue()


@pytest.mark.parametrize("tag", ["{etag}", "W/{etag}", '"other", {etag}', "*"])
def test_if_none_match_with_the_current_etag_is_304(kiosk, tag):
    etag = kiosk.get("/v1/pictures/tote.png").headers["ETag"]
    resp = kiosk.get("/v1/pictures/tote.png", headers={"If-None-Match": tag.format(etag=etag)})
    assert resp.status_code == 304
    assert resp.content == b""
    assert resp.headers["ETag"] == etag
    stale = kiosk.get("/v1/pictures/tote.png", headers={"If-None-Match": '"stale"'})
    assert stale.status_code == 200 and stale.content


def test_a_replaced_picture_gets_a_new_etag_and_catalog_version(store, kiosk):
    before = kiosk.get("/v1/catalog").json()["version"]
    path = store.pictures.folder / "mug.png"
    new = demo_pictures.png("GIFT-TEA")  # another valid PNG, same name
    tmp = path.with_name(".mug.tmp")
    tmp.write_bytes(new)
    os.replace(tmp, path)
    resp = kiosk.get("/v1/pictures/mug.png")
    assert resp.content == new and resp.headers["ETag"] == f'"{sha(new)}"'
    after = kiosk.get("/v1/catalog").json()
    assert after["version"] != before
    assert catalog_item(kiosk, "GIFT-MUG")["picture_sha256"] == sha(new)


def test_an_unknown_picture_is_404(store, kiosk):
    before = db_snapshot(store)
    resp = kiosk.get("/v1/pictures/nope.png")
    assert resp.status_code == 404
    assert resp.json()["error"] == "unknown_picture"
    assert db_snapshot(store) == before


@pytest.mark.parametrize(
    ("path", "status", "error"),
    [
        ("/v1/pictures/store.db", 400, "bad_picture_name"),  # not a picture's name
        ("/v1/pictures/.hidden.png", 400, "bad_picture_name"),
        ("/v1/pictures/..", 400, "bad_picture_name"),
        ("/v1/pictures/..%2Fstore.db", 404, "not_found"),  # a slash is never a name
        ("/v1/pictures/%2E%2E%2Fsecret.png", 404, "not_found"),
        ("/v1/pictures/../secret.png", 404, "not_found"),
        ("/v1/pictures/..%5Csecret.png", 400, "bad_picture_name"),
        ("/v1/pictures/mug.png%00.png", 400, "bad_picture_name"),
        ("/v1/pictures/sub%2Fmug.png", 404, "not_found"),
    ],
)
def test_no_path_leads_out_of_the_pictures_folder(store, server, kiosk, path, status, error):
    secret = store.pictures.folder.parent / "secret.png"  # beside the folder, like store.db
    secret.write_bytes(demo_pictures.png("GIFT-MUG"))
    (store.pictures.folder / "sub").mkdir(exist_ok=True)
    # http.client sends the path exactly as written: no client-side dot-segment clean-up
    conn = http.client.HTTPConnection(server.host, server.port, timeout=10)
    try:
        conn.request("GET", path, headers={"Authorization": kiosk.session.headers["Authorization"]})
        resp = conn.getresponse()
        body = resp.read()
    finally:
        conn.close()
    assert resp.status == status, body
    assert resp.getheader("Content-Type") == "application/json"
    assert f'"error":"{error}"' in body.decode()


def test_a_picture_needs_a_kiosk_token(kiosk, staff, anon):
    for client, status, error in ((anon, 401, "missing_token"), (staff, 403, "forbidden_role")):
        resp = client.get("/v1/pictures/mug.png")
        assert resp.status_code == status
        assert resp.json()["error"] == error
    assert kiosk.get("/v1/pictures/mug.png").status_code == 200


@pytest.mark.parametrize(
    "content",
    [b"GIF89a not what we serve", b"\x89PNG\r\n\x1a\n" + b"\0" * MAX_PICTURE_BYTES],
    ids=["not a PNG or JPEG", "too large"],
)
def test_an_unusable_file_is_not_served_nor_hashed(store, kiosk, content):
    (store.pictures.folder / "bad.png").write_bytes(content)
    with store.db.transaction() as conn:
        conn.execute("UPDATE items SET picture = 'bad.png' WHERE sku = 'GIFT-TEA'")
    resp = kiosk.get("/v1/pictures/bad.png")
    assert resp.status_code == 404
    assert resp.json()["error"] == "unusable_picture"
    item = catalog_item(kiosk, "GIFT-TEA")
    assert (item["picture"], item["picture_sha256"]) == ("bad.png", None)


def test_the_pictures_folder_can_be_configured(tmp_path):
    elsewhere = tmp_path / "shared-pictures"
    (tmp_path / "db").mkdir()
    (tmp_path / "db2").mkdir()
    store = Store(tmp_path / "db" / "store.db", settings=StoreSettings(pictures_dir=elsewhere))
    try:
        assert store.pictures.folder == elsewhere
        demo.seed(store, ["kiosk-01"])
        assert sorted(p.name for p in elsewhere.iterdir()) == sorted(
            name for name, _ in demo_pictures.PICTURES.values()
        )
    finally:
        store.close()
    default = Store(tmp_path / "db2" / "store.db")
    try:
        assert default.pictures.folder == (tmp_path / "db2" / "pictures").resolve()
    finally:
        default.close()


# ---- the demo's pictures ----------------------------------------------------------------------
def test_every_demo_item_has_a_small_drawn_picture(store, kiosk):
    items = kiosk.get("/v1/catalog").json()["items"]
    assert {i["sku"] for i in items} == set(demo_pictures.PICTURES)
    for item in items:
        resp = kiosk.get(f"/v1/pictures/{item['picture']}")
        assert resp.status_code == 200
        assert item["picture_sha256"] == sha(resp.content)
        assert 500 < len(resp.content) < 8 * 1024, item["sku"]
        img = Image.open(io.BytesIO(resp.content))
        assert (img.format, img.size) == ("PNG", (240, 240))
        colours = img.convert("RGBA").getcolors(4096)
        assert colours is not None and len(colours) >= 8, f"{item['sku']} is not a picture"


def test_demo_pictures_are_the_same_bytes_every_time():
    for sku, (_, drawing) in demo_pictures.PICTURES.items():
        assert drawing().tobytes() == drawing().tobytes(), sku


def test_seeding_again_keeps_a_stores_own_picture_and_fills_in_the_rest(store):
    own = store.pictures.folder / "mug.png"
    own.write_bytes(demo_pictures.png("GIFT-TEA"))  # the store replaced the mug's photo
    (store.pictures.folder / "tote.png").unlink()
    with store.db.transaction() as conn:
        conn.execute("UPDATE items SET picture = 'own-tea.jpg' WHERE sku = 'GIFT-TEA'")
        conn.execute("UPDATE items SET picture = NULL WHERE sku = 'GIFT-UMBRELLA'")
    demo.seed(store, ["kiosk-01"])
    assert own.read_bytes() == demo_pictures.png("GIFT-TEA")
    assert (store.pictures.folder / "tote.png").read_bytes() == demo_pictures.png("GIFT-TOTE")
    conn = store.db.connection()
    names = dict(conn.execute("SELECT sku, picture FROM items"))
    assert names["GIFT-TEA"] == "own-tea.jpg"
    assert names["GIFT-UMBRELLA"] == "umbrella.png"


def test_folder_lookups_are_kept_until_the_file_changes(tmp_path):
    folder = PictureFolder(tmp_path)
    (tmp_path / "a.png").write_bytes(demo_pictures.png("GIFT-MUG"))
    first = folder.get("a.png")
    assert folder.get("a.png") is first
    (tmp_path / "a.png").write_bytes(demo_pictures.png("GIFT-TOTE"))
    assert folder.get("a.png").sha256 == sha(demo_pictures.png("GIFT-TOTE"))
    assert folder.sha256(None) is None and folder.sha256("missing.png") is None
