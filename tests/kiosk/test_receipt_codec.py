"""Queued receipts survive the journal unchanged, and a damaged record is refused."""

from __future__ import annotations

import dataclasses
import json

import pytest

from drivers.printer.samples import sample_receipts
from kiosk.domain.receipt_codec import (
    KINDS,
    MalformedQueuedReceipt,
    decode_receipt,
    encode_receipt,
)
from kiosk.errors import KioskError

SAMPLES = sample_receipts()


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_every_sample_round_trips_through_json(name):
    receipt = SAMPLES[name]
    record = json.loads(json.dumps(encode_receipt(receipt), ensure_ascii=False))
    assert decode_receipt(record) == receipt


def test_a_wheel_receipt_keeps_its_seed_link_in_the_queue():
    link = "https://store.example/v1/wheels/spring-2026/seeds/2026-05-01?txn=t-1"
    receipt = dataclasses.replace(SAMPLES["wheel"], verify_url=link)
    record = json.loads(json.dumps(encode_receipt(receipt), ensure_ascii=False))
    assert decode_receipt(record).proof_payload() == link


def test_every_queueable_kind_has_a_sample():
    assert {type(r).__name__ for r in SAMPLES.values()} >= set(KINDS)


@pytest.mark.parametrize(
    "damage",
    [
        lambda r: r.update(v=2),
        lambda r: r.update(kind="Nope"),
        lambda r: r["fields"].update(points_after=r["fields"]["points_after"] + 1),
        lambda r: r["fields"].update(printed_at="yesterday"),
        lambda r: r["fields"].update(extra=1),
        lambda r: r["fields"].update(points_spent="800"),
        lambda r: r["fields"].pop("txn_id"),
        lambda r: r.update(fields=[]),
    ],
)
def test_a_damaged_record_is_refused_with_a_kiosk_error(damage):
    redemption = next(r for r in SAMPLES.values() if type(r).__name__ == "RedemptionReceipt")
    record = encode_receipt(redemption)
    damage(record)
    with pytest.raises(MalformedQueuedReceipt) as info:
        decode_receipt(record)
    assert isinstance(info.value, KioskError)
