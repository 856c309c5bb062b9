"""The store's public key file: one key a line, written atomically, read into TrustedKeys."""

from __future__ import annotations

import base64
import stat

import pytest

from kiosk.errors import ConfigError
from kiosk.storage.server_keys import ServerKeyFile

A, B = base64.b64encode(b"a" * 32).decode(), base64.b64encode(b"b" * 32).decode()


def test_no_file_yet_is_no_keys(tmp_path):
    assert ServerKeyFile(tmp_path / "server_key.pub").load() is None


def test_update_writes_the_keys_and_swaps_the_trusted_ones(tmp_path):
    keyfile = ServerKeyFile(tmp_path / "state" / "server_key.pub")
    keyfile.update([A])
    trusted = keyfile.trusted
    assert trusted is not None and trusted.raw() == (b"a" * 32,)
    keyfile.update([B, A])
    assert keyfile.trusted is trusted  # the same object: the verifiers holding it see B too
    assert trusted.raw() == (b"b" * 32, b"a" * 32)
    assert keyfile.path.read_text() == f"{B}\n{A}\n"
    assert stat.S_IMODE(keyfile.path.stat().st_mode) == 0o644
    assert ServerKeyFile(keyfile.path).load().raw() == trusted.raw()  # type: ignore[union-attr]


def test_a_bad_key_is_refused_before_anything_is_written(tmp_path):
    keyfile = ServerKeyFile(tmp_path / "server_key.pub")
    keyfile.update([A])
    with pytest.raises(ConfigError):
        keyfile.update([B, "c2hvcnQ="])
    assert keyfile.path.read_text() == f"{A}\n"
