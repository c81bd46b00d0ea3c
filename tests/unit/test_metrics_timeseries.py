"""Per-second series: windows, worker merge, retention, and recovery time on synthetic spikes."""

from __future__ import annotations

import random

import msgpack
import pytest

from llm_metrics.engine.calls import CallRecord
from llm_metrics.engine.histogram import Histogram
from llm_metrics.engine.timeseries import SecondStats, TimeSeries, analyze_recovery, recovery_time

T0 = 1_700_000_000


def fill(ts: TimeSeries, start: int, seconds: int, latency_ms: float, error_rate: float = 0.0, rps: int = 20) -> None:
    """``rps`` requests per second at ``latency_ms``; the first ``error_rate * rps`` of each second fail."""
    failing = round(error_rate * rps)
    for sec in range(start, start + seconds):
        for i in range(rps):
            failed = i < failing
            ts.record(sec + 0.5, failed=failed, total_ms=None if failed else latency_ms)


def test_record_counts_per_second() -> None:
    ts = TimeSeries()
    ts.record(T0 + 0.1, total_ms=100.0, ttft_ms=20.0, output_tokens=50, good=True)
    ts.record(T0 + 0.9, failed=True, blocked=True)
    ts.record(T0 + 1.0, total_ms=300.0)
    ts.set_users(10, T0)
    ts.set_users(12, T0)
    s = ts.get(T0)
    assert s is not None
    assert (s.requests, s.failures, s.blocked, s.good, s.output_tokens, s.users) == (2, 1, 1, 1, 50, 12)
    assert s.total_ms is not None and s.total_ms.count == 1
    assert ts.seconds() == [T0, T0 + 1]
    assert ts.get(T0 + 5) is None


def test_record_call_uses_the_call_metrics() -> None:
    ts = TimeSeries()
    rec = CallRecord(
        scenario="s",
        name="n",
        status=200,
        t_start=1.0,
        t_first_content=1.2,
        chunk_times=[1.2, 1.3],
        t_end=1.5,
        content_events=2,
    )
    ts.record_call(rec, T0, good=True)
    ts.record_call(CallRecord(scenario="s", name="n", status=429, ok=False, t_start=1.0, t_end=1.01), T0)
    s = ts.get(T0)
    assert s is not None and (s.requests, s.failures, s.blocked, s.good, s.output_tokens) == (2, 1, 1, 1, 2)
    assert s.total_ms is not None and s.total_ms.count == 1 and s.total_ms.max == pytest.approx(500.0)
    assert s.ttft_ms is not None and s.ttft_ms.max == pytest.approx(200.0)


def test_window_covers_the_seconds_ending_at_t() -> None:
    ts = TimeSeries()
    fill(ts, T0, 10, 100.0)
    fill(ts, T0 + 10, 10, 500.0, error_rate=0.5)
    w = ts.window(T0 + 14, 10)  # seconds T0+5 .. T0+14: 5 good, 5 half failing
    assert (w.start, w.end, w.requests, w.failures) == (T0 + 5, T0 + 14, 200, 50)
    assert w.error_rate == 0.25
    assert ts.rolling_error_rate(T0 + 14, 10) == 0.25
    assert ts.rolling_percentile(T0 + 9, 10) == 100.0
    assert ts.rolling_percentile(T0 + 14, 10) == pytest.approx(500.0, rel=0.01)  # 1% buckets
    assert ts.rolling_percentile(T0 + 14, 10, pct=50) == pytest.approx(100.0, rel=0.01)
    assert ts.window(T0 - 100, 10).error_rate is None


def test_worker_deltas_merge_by_second_like_one_process() -> None:
    single = TimeSeries()
    master = TimeSeries()
    workers = [TimeSeries(keep_totals=False), TimeSeries(keep_totals=False)]
    for step in range(6):
        for n, w in enumerate(workers):
            for ts in (w, single):
                fill(ts, T0 + step, 1, 100.0 + 10 * n + step, error_rate=0.1 * n, rps=10)
            if step % 2:
                master.merge_wire(msgpack.unpackb(msgpack.packb(w.take_delta()), strict_map_key=True))
    for w in workers:
        master.merge_wire(w.take_delta())
    assert master.seconds() == single.seconds()
    for sec in single.seconds():
        assert master.get(sec) == single.get(sec)
    assert master.to_json() == single.to_json()


def test_users_merge_keeps_the_maximum() -> None:
    a, b = TimeSeries(), TimeSeries()
    a.set_users(5, T0)
    b.set_users(9, T0)
    a.merge_wire(b.take_delta())
    s = a.get(T0)
    assert s is not None and s.users == 9


def test_retention_drops_old_seconds_and_then_old_histograms() -> None:
    ts = TimeSeries(max_seconds=100, hist_seconds=50)
    for sec in range(0, 301):
        ts.record(T0 + sec, total_ms=10.0)
    ts.prune()
    secs = ts.seconds()
    assert secs[0] == T0 + 200 and secs[-1] == T0 + 300
    old, recent = ts.get(T0 + 200), ts.get(T0 + 290)
    assert old is not None and old.requests == 1 and old.total_ms is not None and old.total_ms.count == 0
    assert recent is not None and recent.total_ms is not None and recent.total_ms.count == 1


def test_malformed_wire_is_rejected() -> None:
    with pytest.raises(ValueError):
        TimeSeries().merge_wire({"v": 1, "s": [[T0, 1, 0]]})
    with pytest.raises(ValueError):
        TimeSeries().merge_wire({"v": 9})


# -- recovery time -----------------------------------------------------------------------------------
# Baseline: 60 s at 100 ms, no errors. Spike: 30 s at 2000 ms with 30% errors, ending at SPIKE_END.

BASE_START = T0
SPIKE_START = T0 + 60
SPIKE_END = T0 + 90
BASELINE = (BASE_START, SPIKE_START)


def spiked(after: list[tuple[int, float, float]]) -> TimeSeries:
    """Baseline, spike, then ``after``: (seconds, latency_ms, error_rate) phases from SPIKE_END on."""
    ts = TimeSeries()
    fill(ts, BASE_START, 60, 100.0)
    fill(ts, SPIKE_START, 30, 2000.0, error_rate=0.3)
    t = SPIKE_END
    for seconds, latency, err in after:
        fill(ts, t, seconds, latency, error_rate=err)
        t += seconds
    return ts


# (case, post-spike phases, expected recovery seconds)
RECOVERY: list[tuple[str, list[tuple[int, float, float]], float | None]] = [
    ("back at once", [(60, 100.0, 0.0)], 0.0),
    # Latency 500 ms for 15 s: the 10 s window ending at t is clean from t = SPIKE_END + 15 + 9.
    ("slow for 15 s", [(15, 500.0, 0.0), (60, 100.0, 0.0)], 24.0),
    # Within bounds: 100 * 1.2 + 5 = 125 ms. 110 ms is fine at once.
    ("within tolerance", [(60, 110.0, 0.0)], 0.0),
    # Errors at 20% for 5 s: the window at t still holds an erroring second until t = SPIKE_END + 5 + 9.
    ("errors for 5 s", [(5, 100.0, 0.2), (60, 100.0, 0.0)], 14.0),
    ("never recovers", [(60, 300.0, 0.0)], None),
    # Clean from SPIKE_END + 10 but the data ends 5 s later: the 10 s hold is not confirmed.
    ("hold cut by the end of data", [(10, 800.0, 0.0), (5, 100.0, 0.0)], None),
    # A relapse restarts the hold: bad 0..4, good 5..9 (window clean from 14), bad at 20..21, good after.
    ("relapse", [(5, 500.0, 0.0), (15, 100.0, 0.0), (2, 900.0, 0.0), (60, 100.0, 0.0)], 31.0),
]


@pytest.mark.parametrize(("case", "after", "expected"), RECOVERY, ids=[r[0] for r in RECOVERY])
def test_recovery_time(case: str, after: list[tuple[int, float, float]], expected: float | None) -> None:
    ts = spiked(after)
    got = recovery_time(ts, SPIKE_END, BASELINE, 0.2, window_s=10, hold_s=10, latency_slack_ms=5.0, error_slack=0.01)
    assert got == expected


def test_recovery_search_can_be_bounded() -> None:
    ts = spiked([(15, 500.0, 0.0), (60, 100.0, 0.0)])  # recovers after 24 s
    assert recovery_time(ts, SPIKE_END, BASELINE, max_wait_s=24) == 24.0
    assert recovery_time(ts, SPIKE_END, BASELINE, max_wait_s=23) is None


def test_recovery_analysis_reports_bounds_and_reason() -> None:
    a = analyze_recovery(spiked([(60, 300.0, 0.0)]), SPIKE_END, BASELINE, 0.2)
    assert (a.seconds, a.baseline_p, a.baseline_error_rate) == (None, 100.0, 0.0)
    assert a.latency_bound == pytest.approx(125.0) and a.error_bound == pytest.approx(0.01)
    assert a.reason == "not back within bounds"
    ok = analyze_recovery(spiked([(60, 100.0, 0.0)]), SPIKE_END, BASELINE, 0.2)
    assert (ok.seconds, ok.recovered_at, ok.reason) == (0.0, SPIKE_END, "recovered")


def test_recovery_without_baseline_or_after_data() -> None:
    ts = TimeSeries()
    fill(ts, SPIKE_START, 30, 2000.0)
    assert analyze_recovery(ts, SPIKE_END, BASELINE).reason == "no requests in the baseline window"
    ts2 = TimeSeries()
    fill(ts2, BASE_START, 90, 100.0)
    assert analyze_recovery(ts2, SPIKE_END, BASELINE).reason == "no data after the spike"


def test_recovery_rejects_empty_windows() -> None:
    with pytest.raises(ValueError):
        recovery_time(TimeSeries(), SPIKE_END, BASELINE, window_s=0)


def test_latencies_waiting_for_a_bulk_record_are_seen_by_every_read_and_delta() -> None:
    # record appends a second's latencies to lists recorded in bulk: reads, deltas and a new second must not
    # miss, reorder or misfile any of them (sums compared bit for bit)
    rng = random.Random(5)
    ts = TimeSeries()
    expect: dict[int, tuple[Histogram, Histogram]] = {}
    sent: dict[int, tuple[Histogram, Histogram]] = {}
    t = 1000.0
    for i in range(600):
        t += rng.choice([0.0, 0.01, 0.3, 1.0])
        t_rec = t - rng.randrange(1, 4) if rng.random() < 0.1 else t  # sometimes late: a second left behind
        total, ttft = rng.lognormvariate(5, 1), rng.lognormvariate(3, 1)
        ts.record(t_rec, total_ms=total, ttft_ms=ttft if i % 3 else None)
        tot_h, ttft_h = expect.setdefault(int(t_rec), (Histogram(), Histogram()))
        tot_h.record(total)
        if i % 3:
            ttft_h.record(ttft)
        if rng.random() < 0.05:
            sec = int(t_rec)
            got = ts.get(sec)
            assert got is not None and got.total_ms is not None
            assert got.total_ms.count == expect[sec][0].count
            assert ts.window(sec, 1).total_ms == expect[sec][0]
        if rng.random() < 0.03 or i == 599:
            for row in ts.take_delta()["s"]:
                sec, stats = SecondStats.from_wire(row)
                acc = sent.setdefault(sec, (Histogram(), Histogram()))
                assert stats.total_ms is not None and stats.ttft_ms is not None
                acc[0].merge(stats.total_ms)
                acc[1].merge(stats.ttft_ms)
    assert sent.keys() == expect.keys()
    for sec, (tot_h, ttft_h) in expect.items():
        assert sent[sec] == (tot_h, ttft_h)
    one = TimeSeries()
    for v in (3.0, 1.5, 7.25):
        one.record(2000.0, total_ms=v)
    h = Histogram()
    for v in (3.0, 1.5, 7.25):
        h.record(v)
    got = one.get(2000)
    assert got is not None and got.total_ms is not None
    assert got.total_ms.sum == h.sum and got.total_ms.buckets == h.buckets
