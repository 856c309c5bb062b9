"""The text catalog: both languages for every key, same fields, formatting per language."""

from __future__ import annotations

import datetime as dt

import pytest

from kiosk.domain.receipts import Bilingual
from kiosk.domain.text import Text
from kiosk.errors import ConfigError, UserFacingError
from kiosk.i18n import Translator, load_catalog, render


def test_the_shipped_catalog_loads_with_both_languages_everywhere():
    catalog = load_catalog()
    assert "common.offline_banner" in catalog
    assert all(set(entry) == {"zh", "en"} and all(entry.values()) for entry in catalog.values())


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('[a]\nzh = "x"\n', "needs exactly zh and en"),
        ('[a]\nzh = "{n} 个"\nen = "{count} items"\n', "zh names ['n'] but en names ['count']"),
        ('[a]\nzh = "x"\nen = 3\n', "needs exactly zh and en strings"),
        ("[a\n", "cannot be read"),
    ],
)
def test_a_broken_catalog_is_a_start_up_error(tmp_path, text, problem):
    (tmp_path / "x.toml").write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=problem.replace("[", r"\[").replace("]", r"\]")):
        load_catalog(tmp_path)


def test_a_key_defined_in_two_files_is_refused(tmp_path):
    for name in ("a.toml", "b.toml"):
        (tmp_path / name).write_text('[k]\nzh = "甲"\nen = "a"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="defined twice"):
        load_catalog(tmp_path)


def test_language_switch_formats_and_tells_listeners():
    tr = Translator("zh")
    heard = []
    tr.on_change(heard.append)
    assert tr("common.points", points=tr.points(12345)) == "12,345 积分"
    assert tr.date(dt.date(2026, 12, 1)) == "2026年12月1日"
    assert tr.toggle() == "en" and heard == ["en"]
    assert tr("common.points", points=tr.points(12345)) == "12,345 points"
    assert tr.date(dt.date(2026, 12, 1)) == "1 Dec 2026"
    assert tr.money(4900) == "¥49.00" and tr.money(-5) == "-¥0.05"
    assert tr.countdown(61.2) == "1:02" and tr.countdown(-3) == "0:00"
    assert tr.both("common.back") == "返回 / Back"
    assert tr("no.such.key") == "no.such.key"


def test_a_domain_text_and_an_error_a_person_reads_render_through_the_catalog():
    assert render(Text("offline.points_left", {"left": 7})) == Bilingual(
        "离线模式：今日仅剩 7 积分额度", "Offline: only 7 points are left for today"
    )
    err = UserFacingError("restock.refused.unknown_compartment", "no relay for 9", n=9)
    assert (err.key, err.fields, err.detail) == ("restock.refused.unknown_compartment", {"n": 9},
                                                 "no relay for 9")  # fmt: skip
    assert render(err) == Bilingual("没有柜格 9", "There is no compartment 9")
    assert str(err) == "没有柜格 9 / There is no compartment 9 (no relay for 9)"  # for the log
    assert str(UserFacingError("no.such.key", n=1)) == "no.such.key(n=1)"  # still says which
    with pytest.raises(ConfigError, match=r"no text for key 'no\.such\.key'"):
        render(UserFacingError("no.such.key"))
