"""The server config file: each section read into the settings, everything else refused."""

from __future__ import annotations

import pytest

from storeserver.config import ConfigError, PaymentsChoice, load
from storeserver.payments import SimulatedPaymentProvider
from storeserver.store import StoreSettings


def write(tmp_path, text: str):
    path = tmp_path / "storeserver.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_production_file_is_read_into_the_settings(tmp_path):
    path = write(
        tmp_path,
        '[server]\npublic_url = "https://store.example.com/"\n\n[payments]\nprovider = "none"\n',
    )
    cfg = load(path, StoreSettings(timezone="Europe/Paris"))
    assert cfg.settings.public_url == "https://store.example.com"
    assert cfg.settings.timezone == "Europe/Paris"  # the command line's settings are kept
    assert cfg.payments is PaymentsChoice.NONE and cfg.provider() is None


def test_the_simulated_provider_is_built_only_when_named(tmp_path):
    cfg = load(write(tmp_path, '[payments]\nprovider = "simulated"\n'))
    assert isinstance(cfg.provider(), SimulatedPaymentProvider)
    assert load(write(tmp_path, "")).payments is None


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ('[payments]\nprovider = "wechat"\n', 'payments.provider = "wechat": must be one of'),
        ("[payments]\nprovider = true\n", "payments.provider = True: must be one of"),
        ("[payments]\n", "payments.provider is missing"),
        ('[payments]\nprovider = "none"\nkey = "x"\n', "payments.key: unknown key"),
        ("[server]\nport = 80\n", "server.port: unknown key in [server]; allowed keys: public_url"),
        ('[server]\npublic_url = "ftp://x"\n', 'server.public_url = "ftp://x": must be an http'),
        ('[server]\npublic_url = "http://x/?a=1"\n', "no query or fragment"),
        ('[server]\npublic_url = "http://x:port"\n', 'public_url = "http://x:port"'),
        ('[shop]\nname = "x"\n', "[shop]: unknown section; allowed sections: server, payments"),
        ("[till]\npurchase_cents_per_call = 0\n", "till.purchase_cents_per_call = 0: must be a"),
        ('[till]\ntopup_cents_per_call = "5"\n', 'till.topup_cents_per_call = "5": must be a'),
        ("[till]\nmax_cents = 5\n", "till.max_cents: unknown key in [till]"),
        ("[offline]\nmax_hours = 1.5\n", "offline.max_hours = 1.5: must be a whole number"),
        ("[offline]\nhours = 8\n", "offline.hours: unknown key in [offline]"),
        ('payments = "none"\n', 'payments = "none": must be a table'),
        ("[payments\n", "not valid TOML"),
    ],
)
def test_a_bad_file_is_refused_naming_file_key_value_and_what_is_allowed(tmp_path, text, said):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as refused:
        load(path)
    assert str(refused.value).startswith(f"{path}: ") and said in str(refused.value)


def test_a_missing_file_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="cannot read the config file"):
        load(tmp_path / "nope.toml")


def test_the_till_caps_and_offline_limits_are_read(tmp_path):
    path = write(
        tmp_path,
        "[till]\npurchase_cents_per_call = 100000\nmanual_points_per_account_day = 900\n\n"
        "[offline]\nmember_daily_points = 300\nkiosk_daily_points = 1200\nmax_hours = 4\n",
    )
    settings = load(path).settings
    assert settings.till_limits.purchase_cents_per_call == 100_000
    assert settings.till_limits.manual_points_per_account_day == 900
    assert settings.till_limits.topup_cents_per_call == 500_000  # the rest keep their defaults
    assert settings.offline_limits() == {
        "per_member_daily_points": 300,
        "per_kiosk_daily_points": 1200,
        "max_offline_hours": 4,
    }
