"""Specification of recovery_time after a spike (llm_users.gateway.recovery, gateway_metrics.RecoveryHook).

The series are synthetic: seconds at a baseline latency, the spike at a high one, then N slow seconds
after the spike before the latency is back. The profile is the real spike profile of conf/shapes.yaml.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest

from llm_metrics.engine.store import MetricStore
from llm_metrics.engine.timeseries import TimeSeries
from llm_users.gateway.metrics import RECOVERY_TIME, RecoveryHook, attach_recovery, gateway_registry
from llm_users.gateway.recovery import (
    RecoveryParams,
    RecoveryReport,
    analyze_spike_recovery,
    baseline_stage,
    format_report,
)
from shapes.config import DEFAULT_STAGES_FILE, load_profiles
from shapes.options import ShapePlan

SPIKE = load_profiles(DEFAULT_STAGES_FILE)["spike"]
T0 = 1_700_000_000.3  # a run starting 0.3 s into a wall-clock second


@pytest.mark.parametrize(
    ("targets", "spike_index", "baseline"),
    [
        ([10, 10, 500, 500, 10, 10], 3, 1),  # the spike profile: the 50 s at 10 users, not the ramp from 0
        ([10, 10, 500, 10], 2, 1),  # the spike stage is the ramp itself
        ([10, 500, 10], 1, 0),  # only the warm-up ramp before the surge
        ([10, 20, 30, 500, 10], 3, 0),  # a staircase up: all of it is the surge, the first stage is the baseline
        ([50, 10, 500], 2, 1),  # a drop before the surge is a baseline
        ([500, 10], 0, None),  # the spike starts the profile
    ],
)
def test_baseline_stage(targets: list[int], spike_index: int, baseline: int | None) -> None:
    assert baseline_stage(targets, spike_index) == baseline


@pytest.mark.parametrize(
    ("params", "scale", "windows"),
    [
        (RecoveryParams(), 1.0, (10, 10)),
        (RecoveryParams(), 0.2, (2, 2)),
        (RecoveryParams(), 0.05, (1, 1)),  # never below one second
        (RecoveryParams(window_s=30, hold_s=5), 0.1, (3, 1)),
        (RecoveryParams(scale_with_time_scale=False), 0.05, (10, 10)),
    ],
)
def test_windows_shrink_with_the_time_scale(params: RecoveryParams, scale: float, windows: tuple[int, int]) -> None:
    assert params.windows(scale) == windows


def run(scale: float, slow_after: int | None, *, error_after: float = 0.0, baseline: bool = True) -> TimeSeries:
    """Every second of the spike profile at ``scale``: 100 ms before the surge, 2 s from the surge until
    ``slow_after`` whole seconds after the spike end (None: for ever), 100 ms after that."""
    plan = ShapePlan(SPIKE, scale, "shapes.yaml")
    bounds = plan.stage_bounds()
    surge_start = T0 + bounds[2][0]
    first_after = math.ceil(T0 + bounds[3][1])
    ts = TimeSeries()
    for sec in range(int(T0), math.ceil(T0 + plan.total_duration())):
        if sec < surge_start - 1 and not baseline:
            continue
        slow = surge_start - 1 <= sec and (slow_after is None or sec < first_after + slow_after)
        for i in range(20):
            failed = sec >= first_after and i < error_after * 20
            ts.record(sec + 0.5, failed=failed, total_ms=None if failed else (2000.0 if slow else 100.0 + i))
    return ts


def analyze(ts: TimeSeries, scale: float, params: RecoveryParams | None = None) -> RecoveryReport:
    plan = ShapePlan(SPIKE, scale, "shapes.yaml")
    return analyze_spike_recovery(
        ts,
        wall_start=T0,
        bounds=plan.stage_bounds(),
        targets=[s.target for s in SPIKE.stages],
        spike_index=3,
        params=params or RecoveryParams(),
        time_scale=scale,
    )


@pytest.mark.parametrize(
    ("scale", "slow_after", "expected"),
    [
        # at time scale 0.05 the spike ends at 6.5 s: T0 + 6.5 = ...006.8; the first whole second after it
        # starts 0.2 s later, and windows are 1 s, so the recovery is 0.2 s + the slow seconds
        (0.05, 0, 0.2),
        (0.05, 3, 3.2),
        (0.05, 7, 7.2),
        # at scale 1, 10 s windows held 10 s: the window ending at a second must be in bounds, and one slow
        # second in ten is 10% of its requests, more than 5%: the window lags the slow seconds by 9 s
        # (windows never reach back before the spike end, so without slow seconds there is no lag)
        (1.0, 0, 0.7),
        (1.0, 30, 39.7),
    ],
)
def test_recovery_counts_from_the_spike_end(scale: float, slow_after: int, expected: float) -> None:
    rep = analyze(run(scale, slow_after), scale)
    assert rep.reason == "recovered"
    assert rep.recovery_time_s == pytest.approx(expected)
    assert rep.analysis is not None and rep.analysis.baseline_p is not None
    assert rep.analysis.baseline_p == pytest.approx(119, rel=0.01)
    assert rep.analysis.latency_bound == pytest.approx(rep.analysis.baseline_p * 1.2 + 5)


@pytest.mark.parametrize(
    ("scale", "start_frac", "baseline", "reason"),
    [
        # 1.75 s of stage from 0.35 s: the whole second in it when it starts early enough in a second...
        (0.035, 0.1, (1, 2), "no requests in the baseline window"),
        # ...else the second around its middle (0.9 + 0.35 + 0.875 = 2.125: second 2)
        (0.035, 0.9, (2, 3), "no requests in the baseline window"),
        (0.02, 0.1, (0, 1), "no requests in the baseline window"),  # [0.3, 1.3): middle 0.8
        (0.01, 0.1, None, "the baseline stage is shorter than a second"),  # 0.5 s
    ],
)
def test_a_short_baseline_stage_still_has_a_second(
    scale: float, start_frac: float, baseline: tuple[int, int] | None, reason: str
) -> None:
    plan = ShapePlan(SPIKE, scale, "shapes.yaml")
    rep = analyze_spike_recovery(
        TimeSeries(),
        wall_start=int(T0) + start_frac,
        bounds=plan.stage_bounds(),
        targets=[s.target for s in SPIKE.stages],
        spike_index=3,
        params=RecoveryParams(),
        time_scale=scale,
    )
    assert rep.baseline_wall == ((int(T0) + baseline[0], int(T0) + baseline[1]) if baseline else None)
    assert rep.reason == reason


def test_the_baseline_is_the_stage_before_the_surge() -> None:
    rep = analyze(run(0.05, 0), 0.05)
    # the stage at 10 users runs 0.5-3.0 s: whole seconds ...001 and ...002 (from T0 + 0.5 = ...000.8)
    assert rep.baseline_wall == (int(T0) + 1, int(T0) + 3)
    assert rep.spike_end_wall == pytest.approx(T0 + 6.5)
    assert rep.spike_window_s == pytest.approx((3.5, 6.5))


@pytest.mark.parametrize(
    ("ts", "reason"),
    [
        (run(0.05, None), "not back within bounds"),
        (run(0.05, 0, error_after=0.1), "not back within bounds"),  # 10% errors after the spike, 0 before
        (run(0.05, 0, baseline=False), "no requests in the baseline window"),
        (run(1.0, 215), "back within bounds, but not for the hold period"),
    ],
    ids=["slow for ever", "errors", "no baseline data", "hold cut by the end"],
)
def test_no_recovery_is_not_recorded_and_says_why(ts: TimeSeries, reason: str) -> None:
    scale = 1.0 if reason.startswith("back") else 0.05
    rep = analyze(ts, scale)
    assert rep.recovery_time_s is None
    assert rep.reason == reason


def fake_env(scale: float | None, profile: str = "spike") -> SimpleNamespace:
    if scale is None:
        return SimpleNamespace(shape_class=None)
    plan = ShapePlan(load_profiles(DEFAULT_STAGES_FILE)[profile], scale, "shapes.yaml")
    shape = SimpleNamespace(plan=plan, wall_start=T0, spike_window=plan.spike_window)
    return SimpleNamespace(shape_class=shape)


def fake_metrics(ts: TimeSeries) -> SimpleNamespace:
    return SimpleNamespace(store=MetricStore(), series=ts, before_verdict=[], json_sections={}, text_sections=[])


def test_the_hook_records_recovery_time_and_reports_it() -> None:
    m = fake_metrics(run(0.05, 3))
    hook = attach_recovery(m, fake_env(0.05), RecoveryParams())
    assert attach_recovery(m, fake_env(0.05), RecoveryParams()) is hook  # once
    assert m.before_verdict == [hook] and len(m.text_sections) == 1
    for fn in m.before_verdict:
        fn(m)
    h = m.store.select_hist(RECOVERY_TIME, {"profile": "spike"})
    assert h is not None and h.count == 1 and h.vmax == pytest.approx(3.2, rel=0.01)
    doc = m.json_sections["recovery"]()
    assert doc["recovery_time_s"] == pytest.approx(3.2)
    assert doc["reason"] == "recovered"
    assert doc["latency_bound_ms"] == pytest.approx(doc["baseline_p"] * 1.2 + 5)
    assert (doc["window_s"], doc["hold_s"], doc["time_scale"]) == (1, 1, 0.05)
    text = m.text_sections[0]()
    assert "recovery_time = 3.20 s (recovered)" in text
    assert "spike stage: 3.5-6.5 s of the run (time scale 0.05)" in text
    assert "error rate <= 0.0100" in text


@pytest.mark.parametrize(
    ("env", "reason"),
    [
        (fake_env(None), "no load shape in this run (use --load-profile spike)"),
        (fake_env(1.0, "load"), "the load profile has no stage marked spike"),
    ],
)
def test_without_a_spike_nothing_is_recorded(env: SimpleNamespace, reason: str) -> None:
    m = fake_metrics(TimeSeries())
    hook = RecoveryHook(env, RecoveryParams())
    hook(m)
    assert m.store.select_hist(RECOVERY_TIME) is None
    assert hook.json() is not None and hook.json()["reason"] == reason  # type: ignore[index]
    assert hook.text() == ""


def test_the_report_text_without_recovery() -> None:
    rep = analyze(run(0.05, None), 0.05)
    assert "recovery_time: not recorded (not back within bounds)" in format_report(rep)


def test_the_registry_knows_the_gateway_metrics() -> None:
    reg = gateway_registry()
    kinds = {n: reg.kind(n) for n in ("gateway_latency", "policy_check_latency", "recovery_time")}
    assert kinds == {"gateway_latency": "trend", "policy_check_latency": "trend", "recovery_time": "trend"}
    assert reg.kind("requests_blocked") == reg.kind("budget_exceeded") == "counter"
