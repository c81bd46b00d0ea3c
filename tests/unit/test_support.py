"""The test scaffolding's own rules: a missing tool is a failure in CI and a skip elsewhere, with what to install."""

from __future__ import annotations

import pytest

from tests.support import missing_tool


def test_a_missing_tool_fails_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception) as err:
        missing_tool("/usr/bin/x is missing: apt-get install x")
    assert "apt-get install x" in str(err.value) and "CI=true" in str(err.value)


def test_a_missing_tool_skips_outside_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception) as err:
        missing_tool("/usr/bin/x is missing: apt-get install x")
    assert "apt-get install x" in str(err.value)
