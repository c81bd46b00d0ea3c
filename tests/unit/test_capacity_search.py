"""The capacity search's pure logic: the levels it tries, when it stops, how a step is judged, its timing."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from llm_metrics.engine.store import MetricStore
from llm_metrics.engine.thresholds import ThresholdResult, evaluate, parse_thresholds
from shapes.capacity_search import (
    CapacitySearch,
    SearchDriver,
    SearchSpec,
    StepOutcome,
    StepTiming,
    Verdict,
    judge,
)


def run_search(spec: SearchSpec, passes: Callable[[float], bool]) -> tuple[CapacitySearch, list[float]]:
    """Drive a search against an oracle; returns it and the levels tried, in order."""
    search = CapacitySearch(spec)
    levels = []
    while (level := search.next_level()) is not None:
        levels.append(level)
        search.record(level, passes(level))
        assert len(levels) <= 100
    return search, levels


def test_ramp_then_bisection_finds_the_knee_of_the_integration_run() -> None:
    spec = SearchSpec(start=10, max=40, growth=2, resolution=1, relative_resolution=0)
    search, levels = run_search(spec, lambda users: users <= 22)
    assert levels == [10, 20, 40, 30, 25, 22, 24, 23]
    assert search.limit == 22 and search.first_failure == 23
    assert "within the resolution" in search.reason


@pytest.mark.parametrize("knee", [1, 2, 3, 7, 17, 22, 63, 64, 99, 127, 200])
def test_users_mode_finds_every_knee_exactly_with_few_steps(knee: int) -> None:
    spec = SearchSpec(start=8, max=256, growth=2, resolution=1, relative_resolution=0)
    search, levels = run_search(spec, lambda users: users <= knee)
    assert search.limit == knee
    assert search.first_failure == knee + 1
    assert len(levels) <= 16  # log2 steps up (or down), then log2 of the gap
    assert all(level == int(level) for level in levels)


def test_relative_resolution_stops_earlier() -> None:
    spec = SearchSpec(start=10, max=40, growth=2, resolution=1, relative_resolution=0.1)
    search, levels = run_search(spec, lambda users: users <= 22)
    # 22 passes, 25 fails: a gap of 3 > 10% of 22 (2.2), so 24 is tried; 22..24 (2 <= 2.2) is close enough
    assert levels == [10, 20, 40, 30, 25, 22, 24]
    assert search.limit == 22 and search.first_failure == 24


def test_the_limit_is_at_least_max_when_max_passes() -> None:
    search, levels = run_search(SearchSpec(start=4, max=50, growth=2), lambda _u: True)
    assert levels == [4, 8, 16, 32, 50]
    assert search.limit == 50 and search.first_failure is None
    assert "passed: the limit is at least that" in search.reason


def test_a_failing_first_level_descends_then_bisects() -> None:
    search, levels = run_search(
        SearchSpec(start=16, max=64, growth=2, resolution=1, relative_resolution=0), lambda u: u <= 3
    )
    assert levels[:4] == [16, 8, 4, 2]
    assert search.limit == 3 and search.first_failure == 4
    assert [p for p in levels[4:]] == [3]


def test_no_level_passes_no_limit() -> None:
    search, levels = run_search(SearchSpec(start=8, max=64), lambda _u: False)
    assert levels == [8, 4, 2, 1]
    assert search.limit is None and search.first_failure == 1
    assert "no load meets the thresholds" in search.reason


def test_rate_mode_uses_fractions_and_the_resolution() -> None:
    spec = SearchSpec(mode="rate", start=2, max=100, growth=2, resolution=0.5, relative_resolution=0)
    search, levels = run_search(spec, lambda rate: rate <= 13.3)
    assert search.limit is not None and 13.3 - 0.5 <= search.limit <= 13.3
    assert search.first_failure is not None and search.first_failure - search.limit <= 0.5
    assert any(level != int(level) for level in levels)


def test_a_linear_ramp_with_increment() -> None:
    search, levels = run_search(
        SearchSpec(start=5, max=40, increment=5, resolution=1, relative_resolution=0), lambda u: u <= 17
    )
    assert levels[:4] == [5, 10, 15, 20]
    assert search.limit == 17


def test_max_steps_bounds_the_search() -> None:
    search, levels = run_search(SearchSpec(start=1, max=10_000, growth=2, max_steps=5), lambda _u: True)
    assert len(levels) == 5 and search.limit == 16
    assert "max_steps (5) reached" in search.reason


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"mode": "threads"}, "mode must be one of users, rate"),
        ({"start": 0}, "start must be > 0"),
        ({"start": 10, "max": 5}, "max (5) must be >= start (10)"),
        ({"growth": 1.0}, "growth must be > 1"),
        ({"start": 2.5}, "users mode needs whole numbers of Users"),
        ({"resolution": -1}, "resolution must be a number >= 0"),
        ({"max_steps": 0}, "max_steps must be >= 1"),
    ],
)
def test_bad_specs_are_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        SearchSpec(**kwargs)  # type: ignore[arg-type]


# -- judging a step ------------------------------------------------------------------------------------------


def results_for(ttft_values: list[float], thresholds: dict[str, object]) -> list[ThresholdResult]:
    store = MetricStore()
    for v in ttft_values:
        store.add("llm_ttft_ms", {"scenario": "s"}, v)
    return evaluate(parse_thresholds(thresholds, "t.yaml"), store, 1.0)


def test_a_step_passes_when_every_threshold_holds() -> None:
    results = results_for([100.0] * 50, {"llm_ttft_ms": ["p(95)<140"]})
    assert judge(results, samples=50, min_samples=20) == Verdict(True)


def test_a_step_fails_naming_each_failing_threshold_with_its_value() -> None:
    results = results_for([100.0] * 40 + [500.0] * 10, {"llm_ttft_ms": ["p(95)<140", "p(50)<200"]})
    verdict = judge(results, samples=50, min_samples=20)
    assert not verdict.passed
    assert verdict.reason == "llm_ttft_ms p(95)<140 (p(95)=500)"
    assert [r.threshold.expression for r in verdict.failures] == ["p(95)<140"]


def test_too_few_requests_fail_the_step_whatever_the_thresholds() -> None:
    verdict = judge(results_for([1.0] * 5, {"llm_ttft_ms": ["p(95)<140"]}), samples=5, min_samples=20)
    assert not verdict.passed and verdict.reason.startswith("not enough data: 5 requests completed")


def test_no_data_follows_fail_on_no_data() -> None:
    lenient = results_for([], {"llm_tpot_ms": ["p(95)<50"]})
    strict = results_for([], {"llm_tpot_ms": [{"threshold": "p(95)<50", "failOnNoData": True}]})
    assert judge(lenient, samples=30).passed
    verdict = judge(strict, samples=30)
    assert not verdict.passed and "(no data)" in verdict.reason


# -- timing: the driver on a fake clock ------------------------------------------------------------------------


class Recorder:
    def __init__(self, passes: Callable[[float], bool], reported: Callable[[float], bool] | None = None) -> None:
        self.passes = passes
        self.events: list[tuple[str, float]] = []
        self.now = 0.0
        self.reported = reported or (lambda _t: True)

    def open_window(self) -> None:
        self.events.append(("open", self.now))

    def judge(self, level: float, elapsed: float) -> StepOutcome:
        self.events.append((f"judge {level:g} over {elapsed:g}", self.now))
        return StepOutcome(Verdict(self.passes(level)))

    def driver(self, spec: SearchSpec, timing: StepTiming) -> SearchDriver:
        return SearchDriver(
            CapacitySearch(spec), timing, open_window=self.open_window, judge=self.judge, reported_after=self.reported
        )


def ticks(driver: SearchDriver, rec: Recorder, until: float, step: float = 1.0) -> list[tuple[float, float | None]]:
    out = []
    t = 0.0
    while t <= until:
        rec.now = t
        out.append((t, driver.tick(t)))
        if out[-1][1] is None:
            break
        t = round(t + step, 6)
    return out


def test_each_step_settles_then_holds_then_is_judged_on_the_tick_clock() -> None:
    rec = Recorder(lambda users: users <= 3)
    driver = rec.driver(SearchSpec(start=2, max=8, growth=2, relative_resolution=0), StepTiming(settle_s=1, hold_s=2))
    levels = ticks(driver, rec, 100)
    assert [lv for _, lv in levels] == [2, 2, 2, 4, 4, 4, 3, 3, 3, None]
    assert rec.events == [
        ("open", 1.0),
        ("judge 2 over 2", 3.0),
        ("open", 4.0),
        ("judge 4 over 2", 6.0),
        ("open", 7.0),
        ("judge 3 over 2", 9.0),
    ]
    result = driver.result()
    assert result.limit == 3 and result.first_failure == 4 and result.complete
    assert [s.window for s in result.steps] == [(1.0, 3.0), (4.0, 6.0), (7.0, 9.0)]
    assert [s.phase for s in result.steps] == ["ramp", "ramp", "bisect"]


def test_a_tick_a_hair_early_still_ends_the_phase() -> None:
    rec = Recorder(lambda _u: True)
    driver = rec.driver(SearchSpec(start=1, max=1), StepTiming(settle_s=1, hold_s=2))
    levels = ticks(driver, rec, 10, step=0.999)
    assert levels[-1][1] is None
    assert rec.events[0] == ("open", 0.999)
    assert rec.events[1][1] == pytest.approx(2.997)


def test_distributed_steps_wait_for_the_workers_reports_then_at_most_the_timeout() -> None:
    reports = {"at": 2.5}

    def reported_after(t: float) -> bool:
        return reports["at"] > t

    rec = Recorder(lambda _u: True, reported_after)
    driver = rec.driver(SearchSpec(start=1, max=2), StepTiming(settle_s=1, hold_s=2, report_timeout_s=3))
    for t in (0.0, 1.0, 2.0, 3.0, 4.0):  # hold ends at 3; the last reports came at 2.5
        rec.now = t
        driver.tick(t)
    assert [e for e, _ in rec.events] == ["open"]
    reports["at"] = 3.0  # a report came at 3.0 exactly: not after the close
    rec.now = 5.0
    driver.tick(5.0)
    assert [e for e, _ in rec.events] == ["open"]
    reports["at"] = 5.5
    rec.now = 6.0  # the timeout (3 s after 3.0) is due too, but the report decides first
    driver.tick(6.0)
    assert [e for e, _ in rec.events] == ["open", "judge 1 over 5"]
    reports["at"] = 0.0  # the next step: no report ever; judged at the timeout
    for t in (7.0, 8.0, 9.0, 10.0, 11.0, 12.0):
        rec.now = t
        driver.tick(t)
    assert rec.events[-1] == ("judge 2 over 5", 12.0)


def test_the_time_budget_stops_the_search_with_the_limit_so_far() -> None:
    rec = Recorder(lambda _u: True)
    driver = rec.driver(SearchSpec(start=1, max=1000), StepTiming(settle_s=1, hold_s=2, max_duration_s=10))
    levels = ticks(driver, rec, 100)
    assert [lv for _, lv in levels if lv is not None][-1] == 4  # steps 1, 2, 4 fit in 9 s; 8 would end at 12
    result = driver.result()
    assert result.limit == 4 and result.complete and "time budget (10 s) used up" in result.reason


def test_stopping_early_drops_the_step_in_progress() -> None:
    rec = Recorder(lambda _u: True)
    driver = rec.driver(SearchSpec(start=1, max=64), StepTiming(settle_s=1, hold_s=2))
    ticks(driver, rec, 4)  # step 1 judged at 3; step 2 (2 users) running
    driver.stop(4.5)
    result = driver.result()
    assert result.limit == 1 and not result.complete
    assert [s.level for s in result.steps] == [1]
    assert driver.tick(5.0) is None


def test_no_settle_opens_the_window_at_the_step_start() -> None:
    rec = Recorder(lambda _u: True)
    driver = rec.driver(SearchSpec(start=1, max=1), StepTiming(settle_s=0, hold_s=1))
    ticks(driver, rec, 5)
    assert rec.events == [("open", 0.0), ("judge 1 over 1", 1.0)]


def test_after_a_failing_step_the_load_drops_to_zero_for_the_cooldown() -> None:
    rec = Recorder(lambda users: users <= 3)
    timing = StepTiming(settle_s=1, hold_s=1, cooldown_s=2)
    driver = rec.driver(SearchSpec(start=2, max=8, growth=2, relative_resolution=0), timing)
    levels = [lv for _, lv in ticks(driver, rec, 100)]
    # 2 passes; 4 fails, then 2 s at 0; 3 passes; then the search is over
    assert levels == [2, 2, 4, 4, 0, 0, 3, 3, None]
    assert driver.result().limit == 3
