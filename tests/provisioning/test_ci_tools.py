"""``needs_tool`` (tests/conftest.py): a missing system tool skips a test on a desk and fails
it in CI; a test that skips for another reason (no printer attached) skips in CI too."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

TESTS = """
import pytest

@pytest.mark.needs_tool("no-such-tool-kiosk-test", install="apt-get install no-such-tool")
def test_needs_a_missing_tool():
    pass

@pytest.mark.needs_tool("sh")
def test_needs_a_present_tool():
    pass

@pytest.mark.skipif(True, reason="no printer on /dev/ttyUSB0")
@pytest.mark.needs_tool("no-such-tool-kiosk-test")
def test_real_printer():
    pass
"""


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeconftest(
        "from tests.conftest import pytest_configure, pytest_runtest_setup  # noqa: F401\n"
    )
    pytester.makepyfile(test_tools=TESTS)
    return pytester


@pytest.mark.parametrize("ci", [None, "", "false", "0"])
def test_off_ci_a_missing_tool_is_a_skip_that_says_how_to_install_it(suite, monkeypatch, ci):
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    result = suite.runpytest_inprocess("-rs", "--strict-markers")
    result.assert_outcomes(passed=1, skipped=2)
    result.stdout.fnmatch_lines(
        ["*no-such-tool-kiosk-test not installed (apt-get install no-such-tool)*"]
    )


@pytest.mark.parametrize("ci", ["true", "1", "TRUE"])
def test_in_ci_a_missing_tool_fails_and_other_skips_stay_skips(suite, monkeypatch, ci):
    monkeypatch.setenv("CI", ci)
    result = suite.runpytest_inprocess("-rs", "--strict-markers")
    result.assert_outcomes(passed=1, skipped=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            f"*no-such-tool-kiosk-test not installed (apt-get install no-such-tool), and CI={ci}:"
            " the CI image must have it*",
            "*no printer on /dev/ttyUSB0*",
        ]
    )
    assert result.ret != 0
