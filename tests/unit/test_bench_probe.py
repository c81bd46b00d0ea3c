"""``bench/probe.py``: the bench locustfiles' probe counts every request event, and times the other request
listeners only when asked (``time_listeners``): the k6 comparison's locustfile leaves that timing off."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from locust.event import Events

from bench.probe import _Timed, install_probe


@pytest.mark.parametrize("timed", [True, False])
def test_the_other_listeners_are_timed_only_when_asked(timed: bool) -> None:
    events = Events()
    probe = install_probe(events, time_listeners=timed)
    seen: list[dict[str, Any]] = []

    def listener(**kw: Any) -> None:
        seen.append(kw)

    env = SimpleNamespace(events=events, runner=None)
    events.request.add_listener(listener)
    events.init.fire(environment=env)
    events.test_start.fire(environment=env)
    try:
        probe.warm = True
        events.request.fire(request_type="POST", name="n", response_time=1.0, response_length=0, exception=None,
                            context={})  # fmt: skip
        events.request.fire(request_type="POST", name="n", response_time=1.0, response_length=0,
                            exception=RuntimeError("x"), context={})  # fmt: skip
    finally:
        events.test_stopping.fire(environment=env)
    assert (probe.ok, probe.failed) == (1, 1) and len(seen) == 2  # every event counted and passed on
    wrapped = [h for h in events.request._handlers if isinstance(h, _Timed)]
    assert len(wrapped) == (1 if timed else 0)
    assert [w.fn for w in probe.timed] == ([listener] if timed else [])
    assert all(w.cpu > 0 for w in probe.timed)  # the CPU time of the two calls, added up


def test_the_k6_comparison_locustfile_does_not_time_the_listeners() -> None:
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "bench" / "locustfile_chat.py").read_text()
    assert "install_probe(events, time_listeners=False)" in text
