"""Item pictures on the kiosk: the client's bounded download, the verified cache and the fetcher
that keeps it in step with the catalog, against the real store server on loopback."""

from __future__ import annotations

import hashlib
import io
import logging
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
from PIL import Image

from kiosk.errors import Rejected, Unreachable
from kiosk.storage.outbox import Outbox
from kiosk.storage.pictures import MAX_PICTURE_BYTES, BadPicture, PictureCache, verify
from kiosk.sync.client import BadResponse, RetryPolicy, StoreServerClient
from kiosk.sync.pictures import PictureFetcher
from kiosk.sync.records import SyncSettings
from kiosk.sync.worker import SyncWorker
from storeserver import demo, demo_pictures, kiosks
from storeserver.clock import ManualClock
from storeserver.runner import ServerThread
from storeserver.store import Store

KIOSK = "kiosk-01"
NAMES = sorted(name for name, _ in demo_pictures.PICTURES.values())


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def jpeg(size=(64, 48), color=(30, 120, 200)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, "JPEG")
    return out.getvalue()


def replace_file(path: Path, data: bytes) -> None:
    tmp = path.with_name("." + path.name + ".new")
    tmp.write_bytes(data)
    os.replace(tmp, path)


@pytest.fixture
def store(tmp_path) -> Iterator[Store]:
    (tmp_path / "server").mkdir()  # the store's pictures folder goes beside its database
    s = Store(tmp_path / "server" / "store.db", clock=ManualClock())
    demo.seed(s, [KIOSK])
    yield s
    s.close()


@pytest.fixture
def server(store) -> Iterator[ServerThread]:
    with ServerThread(store, "127.0.0.1", 0) as srv:
        yield srv


@pytest.fixture
def client(server, store, tmp_path) -> Iterator[StoreServerClient]:
    with store.db.transaction() as conn:
        code = kiosks.new_enrollment_code(conn, store.clock, KIOSK)
    c = StoreServerClient(
        server.url, token_file=tmp_path / "kiosk" / "token",
        retry=RetryPolicy(attempts=2, base_delay_s=0.0, max_delay_s=0.0), sleep=lambda s: None,
        connect_timeout_s=2.0, read_timeout_s=5.0,
    )  # fmt: skip
    c.enroll(code, KIOSK)
    yield c
    c.close()


class Counting:
    """The real client, counting picture downloads."""

    def __init__(self, client: StoreServerClient) -> None:
        self.client = client
        self.fetched: list[str] = []

    def picture(self, name: str) -> bytes:
        self.fetched.append(name)
        return self.client.picture(name)


@pytest.fixture
def cache(tmp_path) -> PictureCache:
    return PictureCache(tmp_path / "kiosk" / "state" / "pictures")


@pytest.fixture
def counting(client) -> Counting:
    return Counting(client)


@pytest.fixture
def fetcher(counting, cache) -> PictureFetcher:
    changes: list[int] = []
    f = PictureFetcher(counting, cache, on_change=lambda: changes.append(1))
    f.changes = changes  # type: ignore[attr-defined]
    return f


def served(store: Store, name: str) -> bytes:
    return (store.pictures.folder / name).read_bytes()


# ---- the fetcher against the real server --------------------------------------------------------
def test_pictures_are_fetched_once_and_not_again_while_unchanged(store, client, counting,
                                                                 fetcher, cache):  # fmt: skip
    assert fetcher.sync(client.catalog()) == len(NAMES)
    assert sorted(counting.fetched) == NAMES
    for name in NAMES:
        assert cache.path(name).read_bytes() == served(store, name)
    assert fetcher.changes == [1] and cache.generation == len(NAMES)
    assert sorted(p.name for p in cache.folder.iterdir()) == NAMES  # no temp files left
    counting.fetched.clear()
    for _ in range(3):
        assert fetcher.sync(client.catalog()) == 0
    assert counting.fetched == [] and fetcher.changes == [1]
    # a kiosk restarted with its cache on disk fetches nothing either
    again = PictureFetcher(counting, PictureCache(cache.folder))
    assert again.sync(client.catalog()) == 0 and counting.fetched == []


def test_a_picture_changed_on_the_server_is_fetched_again(store, client, counting, fetcher,
                                                          cache):  # fmt: skip
    fetcher.sync(client.catalog())
    counting.fetched.clear()
    new = jpeg()  # the store replaced the mug's drawing by a photo under the same name
    replace_file(store.pictures.folder / "mug.png", new)
    assert fetcher.sync(client.catalog()) == 1
    assert counting.fetched == ["mug.png"]
    assert cache.path("mug.png").read_bytes() == new
    assert cache.sha256("mug.png") == sha(new)


def test_a_picture_that_left_the_catalog_is_deleted_from_the_kiosk(client, fetcher, cache):
    catalog = client.catalog()
    fetcher.sync(catalog)
    leaving = catalog["items"][0]["picture"]
    (cache.folder / ".stray.png.tmp").write_bytes(b"half a picture from a crash")
    fetcher.changes.clear()
    later = dict(catalog, items=[i for i in catalog["items"] if i["picture"] != leaving])
    assert fetcher.sync(later) == 0
    assert cache.path(leaving) is None
    assert sorted(p.name for p in cache.folder.iterdir()) == sorted(set(NAMES) - {leaving})
    assert fetcher.changes == [1]  # the catalog screen reloads its pictures
    for garbage in ({}, {"items": "none"}, []):  # says nothing about the items: prunes nothing
        fetcher.sync(garbage)
    assert sorted(p.name for p in cache.folder.iterdir()) == sorted(set(NAMES) - {leaving})


def test_garbage_is_refused_and_the_old_picture_kept(store, client, counting, fetcher, cache,
                                                     caplog):  # fmt: skip
    fetcher.sync(client.catalog())
    good = cache.path("mug.png").read_bytes()
    # a PNG signature and junk after it: the server serves it, the kiosk must not keep it
    garbage = b"\x89PNG\r\n\x1a\n" + os.urandom(3000)
    replace_file(store.pictures.folder / "mug.png", garbage)
    counting.fetched.clear()
    with caplog.at_level(logging.WARNING, logger="kiosk.sync.pictures"):
        assert fetcher.sync(client.catalog()) == 0
    assert counting.fetched == ["mug.png"]
    assert cache.path("mug.png").read_bytes() == good
    assert any("mug.png refused, keeping the cached one" in r.getMessage() for r in caplog.records)
    assert not list(cache.folder.glob(".*"))  # no temp file left behind
    counting.fetched.clear()
    assert fetcher.sync(client.catalog()) == 0 and counting.fetched == []  # not every poll
    fixed = demo_pictures.png("GIFT-TEA")
    replace_file(store.pictures.folder / "mug.png", fixed)  # the store fixed it
    assert fetcher.sync(client.catalog()) == 1
    assert cache.path("mug.png").read_bytes() == fixed


def test_bytes_other_than_the_catalog_announced_are_refused(client, counting, fetcher, cache):
    catalog = client.catalog()
    fetcher.sync(catalog)
    good = cache.path("tote.png").read_bytes()
    for item in catalog["items"]:
        if item["picture"] == "tote.png":
            item["picture_sha256"] = "0" * 64  # e.g. swapped on the way
    counting.fetched.clear()
    assert fetcher.sync(catalog) == 0
    assert counting.fetched == ["tote.png"]
    assert cache.path("tote.png").read_bytes() == good


def test_a_picture_the_server_lacks_is_not_fetched_and_the_cached_one_stays(store, client,
                                                                            counting, fetcher,
                                                                            cache):  # fmt: skip
    fetcher.sync(client.catalog())
    (store.pictures.folder / "tea.png").unlink()
    counting.fetched.clear()
    catalog = client.catalog()
    tea = next(i for i in catalog["items"] if i["picture"] == "tea.png")
    assert tea["picture_sha256"] is None
    assert fetcher.sync(catalog) == 0 and counting.fetched == []
    assert cache.path("tea.png") is not None


def test_an_older_server_without_hashes_gets_missing_pictures_fetched_once(client, counting,
                                                                           fetcher, cache):  # fmt: skip
    catalog = client.catalog()
    for item in catalog["items"]:
        del item["picture_sha256"]
    assert fetcher.sync(catalog) == len(NAMES)
    counting.fetched.clear()
    assert fetcher.sync(catalog) == 0 and counting.fetched == []


def test_an_unknown_picture_is_logged_and_not_asked_for_at_every_poll(client, counting, fetcher,
                                                                      caplog):  # fmt: skip
    catalog = {"version": "x", "items": [{"sku": "A", "picture": "nope.png"}]}
    with caplog.at_level(logging.WARNING, logger="kiosk.sync.pictures"):
        assert fetcher.sync(catalog) == 0
        assert fetcher.sync(catalog) == 0
    assert counting.fetched == ["nope.png"]
    assert "unknown_picture" in caplog.text


def test_names_that_are_paths_are_never_asked_for_nor_written(client, counting, fetcher, cache,
                                                              tmp_path):  # fmt: skip
    names = ["../evil.png", "/etc/passwd", ".hidden.png", "a/b.png", "", None, 7]
    catalog = {"version": "x", "items": [{"sku": str(i), "picture": n, "picture_sha256": "a"}
                                         for i, n in enumerate(names)]}  # fmt: skip
    assert fetcher.sync(catalog) == 0 and counting.fetched == []
    assert not (tmp_path / "kiosk" / "state" / "evil.png").exists()


def test_offline_the_cached_pictures_stay_and_nothing_raises(server, client, counting, fetcher,
                                                             cache, caplog):  # fmt: skip
    catalog = client.catalog()
    fetcher.sync(catalog)
    server.stop()
    (cache.folder / "mug.png").unlink()  # one to fetch: it cannot be
    counting.fetched.clear()
    with caplog.at_level(logging.WARNING, logger="kiosk.sync.pictures"):
        assert fetcher.sync(catalog) == 0
    assert counting.fetched == ["mug.png"]  # the pass ends at the first unreachable call
    assert "retrying at the next catalog poll" in caplog.text
    assert all(cache.path(n) for n in NAMES if n != "mug.png")


def test_the_worker_fetches_pictures_and_a_failing_fetcher_never_fails_a_cycle(
    client, cache, tmp_path, journal_factory
):
    outbox = Outbox(journal_factory(tmp_path / "journal"))
    worker = SyncWorker(client, outbox, settings=SyncSettings(),
                        fetch_pictures=PictureFetcher(client, cache).sync)  # fmt: skip
    worker.run_once()
    assert worker.status().online and worker.status().last_error is None
    assert all(cache.path(n) for n in NAMES)

    def broken(_catalog):
        raise RuntimeError("a bug in the fetcher")

    worker = SyncWorker(client, outbox, settings=SyncSettings(), fetch_pictures=broken)
    worker.run_once()
    status = worker.status()
    assert status.online and status.consecutive_failures == 0
    assert status.unexpected_errors == 1


# ---- the client's download ------------------------------------------------------------------
def test_the_client_refuses_a_picture_over_its_limit_unread(client, store):
    assert client.picture("mug.png") == served(store, "mug.png")
    with pytest.raises(BadResponse, match="more than 100 bytes"):
        client.picture("mug.png", max_bytes=100)


class _Stub(BaseHTTPRequestHandler):
    answers: ClassVar[dict[str, tuple[int, dict[str, str], bytes]]] = {}

    def do_GET(self):
        status, headers, body = self.answers[self.path]
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def stub() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Stub)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.mark.parametrize(
    ("headers", "body", "match"),
    [
        ({"Content-Type": "text/html"}, b"<html>login</html>", "text/html, not a PNG or JPEG"),
        ({"Content-Type": "image/png", "Content-Length": str(MAX_PICTURE_BYTES + 1)}, b"",
         "more than"),
        ({"Content-Type": "image/png"}, b"\x89PNG" + b"\0" * (MAX_PICTURE_BYTES + 10), "more than"),
    ],
    ids=["not an image", "declared too large", "streams too much"],
)  # fmt: skip
def test_the_client_refuses_what_is_not_a_bounded_picture(stub, headers, body, match):
    _Stub.answers = {"/v1/pictures/x.png": (200, headers, body)}
    c = StoreServerClient(stub, token="t", retry=RetryPolicy(attempts=1), read_timeout_s=5.0)
    try:
        with pytest.raises(BadResponse, match=match):
            c.picture("x.png")
    finally:
        c.close()


def test_the_client_asks_for_an_escaped_name(stub):
    _Stub.answers = {"/v1/pictures/..%2Fx.png": (404, {"Content-Type": "application/json"},
                                                  b'{"error": "not_found", "message": "no"}')}  # fmt: skip
    c = StoreServerClient(stub, token="t", retry=RetryPolicy(attempts=1))
    try:
        with pytest.raises(Rejected) as info:
            c.picture("../x.png")
        assert info.value.code == "not_found"
    finally:
        c.close()


def test_an_unreachable_server_is_unreachable(tmp_path):
    c = StoreServerClient("http://127.0.0.1:9", token="t", retry=RetryPolicy(attempts=1),
                          connect_timeout_s=0.5)  # fmt: skip
    try:
        with pytest.raises(Unreachable):
            c.picture("mug.png")
    finally:
        c.close()


# ---- the cache ------------------------------------------------------------------------------
def test_verify_accepts_png_and_jpeg_and_refuses_the_rest():
    assert verify(demo_pictures.png("GIFT-MUG")) == "PNG"
    assert verify(jpeg()) == "JPEG"
    gif = io.BytesIO()
    Image.new("RGB", (8, 8)).save(gif, "GIF")
    whole = jpeg((200, 200))
    huge = io.BytesIO()
    Image.new("1", (4000, 4000)).save(huge, "PNG")  # tiny file, huge canvas
    for bad, why in [
        (gif.getvalue(), "GIF"),
        (whole[: len(whole) // 2], "not a readable"),  # truncated JPEG
        (b"\x89PNG\r\n\x1a\n" + b"junk" * 50, "not a readable"),
        (b"", "not a readable"),
        (huge.getvalue(), "4000x4000"),
        (b"\0" * (MAX_PICTURE_BYTES + 1), "over"),
    ]:
        with pytest.raises(BadPicture, match=why):
            verify(bad)


def test_the_cache_keeps_the_old_file_when_a_new_one_is_bad(cache):
    good = demo_pictures.png("GIFT-MUG")
    path = cache.store("mug.png", good)
    assert path == cache.folder / "mug.png" and cache.generation == 1
    with pytest.raises(BadPicture):
        cache.store("mug.png", b"not a picture")
    assert path.read_bytes() == good and cache.generation == 1
    with pytest.raises(BadPicture):
        cache.store("../mug.png", good)
    assert cache.path("../mug.png") is None and cache.path(".mug.png.tmp") is None
    assert cache.sha256("mug.png") == sha(good) and cache.sha256("other.png") is None


@pytest.fixture
def journal_factory():
    from kiosk.storage.journal import Journal

    opened = []

    def make(folder: Path):
        j = Journal.open(folder)
        opened.append(j)
        return j

    yield make
    for j in opened:
        j.close()


def test_the_cache_gives_only_a_file_in_its_folder(tmp_path):
    """What the catalog screen shows: a plain name of a cached file, never a path out."""
    cache = PictureCache(tmp_path / "pictures")
    cache.store("mug.png", demo_pictures.png("GIFT-MUG"))
    assert cache.path("mug.png") == tmp_path / "pictures" / "mug.png"
    (tmp_path / "secret.png").write_bytes(demo_pictures.png("GIFT-MUG"))
    for name in (None, "", "../secret.png", "/etc/passwd", ".hidden", "missing.png"):
        assert cache.path(name) is None
