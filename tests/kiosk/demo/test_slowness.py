"""The slow factor (``kiosk.demo.slowness``): one number that stretches every wait bound of the
tour and the tests on a slow machine or under emulation, and the demo rig's timing with it."""

from __future__ import annotations

import tomllib

import pytest

from kiosk.config import parse_config
from kiosk.demo.rig import TOUR_TIMING, RigTiming, kiosk_toml
from kiosk.demo.slowness import ENV_VAR, scaled, slow_factor
from kiosk.errors import KioskError


def test_a_normal_machine_has_factor_one():
    assert slow_factor(environ={}) == 1
    assert slow_factor(environ={ENV_VAR: "  "}) == 1  # set but empty: the default


def test_the_environment_sets_it_and_the_option_overrides_it():
    assert slow_factor(environ={ENV_VAR: "2.5"}) == 2.5
    assert slow_factor("4", environ={ENV_VAR: "2.5"}) == 4
    assert slow_factor(1, environ={ENV_VAR: "7"}) == 1  # back to normal on a slow-marked machine


@pytest.mark.parametrize("bad", ["fast", "0.5", "0", "-3", "nan", "inf", "2x"])
def test_a_bad_value_says_which_setting_and_what_is_allowed(bad):
    with pytest.raises(KioskError) as env_error:
        slow_factor(environ={ENV_VAR: bad})
    assert ENV_VAR in str(env_error.value) and repr(bad) in str(env_error.value)
    assert "a number >= 1" in str(env_error.value)
    with pytest.raises(KioskError) as option_error:
        slow_factor(bad, environ={ENV_VAR: "2"})
    assert "--slow-factor" in str(option_error.value) and ENV_VAR not in str(option_error.value)


def test_a_bound_scales_with_the_given_factor_or_the_environments(monkeypatch):
    assert scaled(15, 2) == 30
    monkeypatch.setenv(ENV_VAR, "3")
    assert scaled(120) == 360
    monkeypatch.delenv(ENV_VAR)
    assert scaled(120) == 120
    monkeypatch.setenv(ENV_VAR, "0")
    with pytest.raises(KioskError, match=ENV_VAR):
        scaled(10)


def test_the_rigs_intervals_and_timeouts_stretch_alike_and_the_frame_rate_stays():
    slow = TOUR_TIMING.scaled(2.5)
    assert (slow.heartbeat_s, slow.refresh_s, slow.backoff_cap_s) == (1.25, 5.0, 2.5)
    assert slow.door_open_timeout_s == 3  # whole seconds in the config: 2.5 rounded up
    assert slow.idle_logout_s == 300 and slow.scanner_fps == TOUR_TIMING.scanner_fps
    assert RigTiming().scaled(1) == RigTiming()


@pytest.mark.parametrize("factor", [1, 2.5, 6, 20])
def test_the_scaled_demo_config_is_one_the_kiosk_accepts(factor, tmp_path):
    """Under emulation (factor 4 to 6) too: a stretched timeout beyond the config's bounds
    would stop the demo before its first screen."""
    text = kiosk_toml(tmp_path, "http://127.0.0.1:1", TOUR_TIMING.scaled(factor))
    config = parse_config(tomllib.loads(text), "demo")
    assert config.ui.idle_logout_s == min(120 * factor, 300)
