"""The test scaffolding's own rules: a missing tool is a failure in CI and a skip elsewhere, with what to install."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests.support import free_port, missing_tool


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


def test_free_port_is_bindable_and_outside_the_ephemeral_range() -> None:
    """A connection's source port never takes it between the check and the server's bind."""
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    ports = {free_port() for _ in range(20)}
    assert all(p < low for p in ports), ports
    assert len(ports) > 1  # processes running at once do not all pick the same port
    port = ports.pop()
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))
