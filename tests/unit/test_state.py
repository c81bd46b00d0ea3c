"""The typed accessor for the suite's state on Locust's Environment (llm_metrics.state)."""

from types import SimpleNamespace

import pytest

from llm_metrics.state import ATTRIBUTE, RateControl, SuiteState, find_state, state


class _Rate:
    def __init__(self) -> None:
        self.rates: list[float] = []

    def set_rate(self, rate: float) -> None:
        self.rates.append(rate)


def test_state_is_created_once_per_environment_and_kept_on_one_attribute() -> None:
    env = SimpleNamespace()
    assert find_state(env) is None
    first = state(env)
    assert isinstance(first, SuiteState)
    assert state(env) is first
    assert getattr(env, ATTRIBUTE) is first
    assert find_state(env) is first
    assert state(SimpleNamespace()) is not first  # another environment, another state


def test_fields_start_empty() -> None:
    s = state(SimpleNamespace())
    assert (s.metrics, s.exporter, s.requests_log, s.workers, s.version_check, s.rate_control) == (None,) * 6
    assert s.extra_secrets == [] and s.runtimes == {}
    assert state(SimpleNamespace()).extra_secrets is not s.extra_secrets  # no list shared between states


def test_find_state_of_no_environment_is_none() -> None:
    assert find_state(None) is None


def test_runtime_is_kept_by_name_and_read_back_typed() -> None:
    s = state(SimpleNamespace())
    assert s.runtime("workload") is None
    rt = _Rate()
    s.set_runtime("workload", rt)
    assert s.runtime("workload", _Rate) is rt
    assert s.runtime("workload") is rt
    assert s.runtime("chat", _Rate) is None
    s.set_runtime("workload", None)
    assert s.runtime("workload") is None


def test_runtime_of_another_class_is_a_type_error_naming_both() -> None:
    s = state(SimpleNamespace())
    s.set_runtime("chat", "not a runtime")
    with pytest.raises(TypeError, match="'chat' holds a str, not a _Rate"):
        s.runtime("chat", _Rate)


def test_rate_control_is_any_object_with_set_rate() -> None:
    s = state(SimpleNamespace())
    control = _Rate()
    s.rate_control = control
    rc: RateControl | None = s.rate_control
    assert rc is not None
    rc.set_rate(2.5)
    assert control.rates == [2.5]
