"""The fixes of Locust's hub stalls (``llm_metrics.locust_fixes``) keep Locust's behaviour."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from typing import Any

import pytest
from locust import argument_parser
from locust.event import Events

from llm_metrics.locust_fixes import GC_THRESHOLD, cache_default_args, install_gc_tuning


@pytest.fixture
def restore_parser_defaults() -> Iterator[None]:
    original = argument_parser.default_args_dict
    yield
    argument_parser.default_args_dict = original


def test_locusts_defaults_are_computed_once_and_stay_the_same(
    restore_parser_defaults: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = argument_parser.default_args_dict()
    calls = []
    original = argument_parser.default_args_dict

    def counted() -> dict[str, Any]:
        calls.append(1)
        return original()

    monkeypatch.setattr(argument_parser, "default_args_dict", counted)
    cache_default_args()
    cache_default_args()  # installing twice wraps once
    first = argument_parser.default_args_dict()
    first["num_users"] = "changed by a caller"
    assert [argument_parser.default_args_dict() == expected for _ in range(50)] == [True] * 50
    assert len(calls) == 1


class _Local:
    """A runner that is not a MasterRunner."""


def test_the_gc_is_tuned_while_a_test_runs_in_a_process_with_users() -> None:
    before = gc.get_threshold()
    events = Events()
    install_gc_tuning(events)
    env = type("Env", (), {"runner": _Local()})()
    try:
        events.test_start.fire(environment=env)
        assert gc.get_threshold() == GC_THRESHOLD
        kept = [[i] for i in range(1000)]  # lists are tracked by the collector
        frozen_before = gc.get_freeze_count()
        events.spawning_complete.fire(user_count=1)
        assert gc.get_freeze_count() >= frozen_before + len(kept)
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
