"""The saturation guard's per-process limit: open-calls bands, the limit found in merged data, what it prints."""

from __future__ import annotations

import gevent
import pytest

from llm_metrics.engine.store import MetricStore
from llm_metrics.monitors import gauge
from llm_metrics.monitors.load_limit import (
    BAND_TAG,
    CLIENT_LAG_AT_LOAD,
    CLIENT_OPEN_CALLS,
    CLIENT_TOKENS_READ,
    band_low,
    band_range,
    bands_from_store,
    open_calls_band,
    per_process_limit,
)
from llm_metrics.monitors.selfmon import CLIENT_LOOP_LAG, SaturationRules, SelfMonitor, judge
from llm_metrics.verdict import format_load_generator


def _probe(store: MetricStore, process: str, open_calls: int, lags_ms: list[float], tokens_per_s: float) -> None:
    """What a process's self-monitor records while ``open_calls`` calls are open: a lag sample every 50 ms
    (with the open calls) and, each second, the tokens read per second."""
    tags = {"process": process, BAND_TAG: open_calls_band(open_calls)}
    for lag in lags_ms:
        store.add(CLIENT_LAG_AT_LOAD, tags, lag)
        store.add(CLIENT_OPEN_CALLS, tags, float(open_calls))
    for _ in range(len(lags_ms) // 20):
        store.add(CLIENT_TOKENS_READ, tags, tokens_per_s)


def test_open_calls_fall_into_log_spaced_bands_named_by_their_top() -> None:
    cases = {0: "0", 1: "1", 2: "2", 3: "5", 5: "5", 6: "10", 101: "200", 200: "200", 201: "500", 2001: "5000"}
    assert {n: open_calls_band(n) for n in cases} == cases
    assert open_calls_band(10**9) == "1000000000"  # beyond the ladder: its own band
    assert [band_range(b) for b in (0, 1, 2, 5, 200, 1000)] == ["0", "1", "2", "3-5", "101-200", "501-1,000"]
    assert [band_low(b) for b in (0, 1, 2, 5, 10, 200, 10**9)] == [0, 1, 2, 3, 6, 101, 10**9]


def test_the_limit_is_the_highest_band_within_and_the_load_over_it_says_how_many_processes() -> None:
    store = MetricStore()
    for process in ("worker0", "worker1"):
        _probe(store, process, 3, [0.5] * 40, 60.0)  # the ramp-up: 2 s at 3-5 calls, not judged
        _probe(store, process, 180, [1.0] * 300 + [30.0] * 2, 3600.0)  # p99 1 ms: within
        _probe(store, process, 900, [5.0] * 150 + [70.0] * 50, 18000.0)  # p99 70 ms: over
    f = per_process_limit(bands_from_store(store), 10.0)
    assert f["status"] == "limit_found"
    assert [(b["open_calls"], b["judged"], b["within"]) for b in f["bands"]] == [
        ("3-5", False, None),
        ("101-200", True, True),
        ("501-1,000", True, False),
    ]
    assert f["limit_open_calls"] == 180 and f["held_per_process"] == 900 and f["held_total"] == 1800
    assert f["processes_needed"] == 10  # 1,800 open calls in all / 180 per process
    assert f["text"] == (
        "per process: event-loop lag p99 <= 10 ms up to 180 open LLM calls (about 3,600 tokens/s read; p99 1.0 ms "
        "at 101-200); over it at 501-1,000 open calls (p99 69.8 ms; about 18,000 tokens/s read). This run held "
        "up to 900 open calls in one process (1,800 in all, 2 processes): for p99 <= 10 ms run about 10 processes "
        "(--processes N on this machine, or more workers)"
    )


def test_a_band_too_short_in_each_process_is_judged_from_the_processes_merged() -> None:
    store = MetricStore()
    _probe(store, "worker0", 40, [1.0] * 60, 800.0)  # 3 s of probing: too little alone
    assert per_process_limit(bands_from_store(store), 10.0)["status"] == "too_little_data"
    _probe(store, "worker1", 45, [2.0] * 60, 900.0)  # 3 s more in another process at the same band: 6 s
    f = per_process_limit(bands_from_store(store), 10.0)
    assert f["status"] == "all_within" and f["within"]["samples"] == 120
    assert f["within"]["max_open_calls"] == 45 and f["within"]["tokens_per_s"] == pytest.approx(850.0)
    assert f["held_per_process"] == 45 and f["held_total"] == 85 and f["processes_needed"] is None
    assert f["text"] == (
        "per process: event-loop lag p99 <= 10 ms up to 45 open LLM calls (about 850 tokens/s read; p99 2.0 ms "
        "at 21-50): every load judged stayed within, the limit is at or above it. This run held up to 45 open "
        "calls in one process (85 in all, 2 processes)"
    )


def test_too_little_data_over_the_limit_everywhere_or_nothing_open_is_said_not_left_out() -> None:
    store = MetricStore()
    _probe(store, "local", 150, [40.0] * 50, 3000.0)  # 2.5 s + its lag
    f = per_process_limit(bands_from_store(store), 10.0)
    assert f["status"] == "too_little_data" and f["processes_needed"] is None
    assert f["text"] == (
        "per process: too little data to find the limit (no load held for 5 s of probing; the longest: 4.5 s at "
        "101-200 open calls)"
    )
    _probe(store, "local", 150, [40.0] * 100, 3000.0)
    f = per_process_limit(bands_from_store(store), 10.0)
    assert f["status"] == "all_over" and f["over"]["open_calls"] == "101-200"
    assert f["text"].startswith("per process: event-loop lag p99 over 10 ms already at 101-200 open calls (p99 ")
    assert f["text"].endswith(
        "the lowest load judged: the limit is lower. This run held up to 150 open calls in one process: for p99 "
        "<= 10 ms run at least 2 processes (--processes N on this machine, or more workers)"
    )  # the limit is 100 open calls or fewer: 150 need 2 processes or more
    assert f["processes_at_least"] == 2 and f["processes_needed"] is None
    idle = MetricStore()
    _probe(idle, "local", 0, [0.1] * 200, 0.0)  # the probe ran, no LLM call open
    for bands in (bands_from_store(idle), None):
        f = per_process_limit(bands, 10.0)
        assert f["status"] == "not_measured"
        assert f["text"] == "per process: limit not measured (no LLM call was open while the event-loop lag was probed)"


def test_an_over_band_below_the_limit_is_named_and_the_guard_prints_the_line() -> None:
    store = MetricStore()
    _probe(store, "local", 8, [30.0] * 120, 100.0)  # a busy start at 6-10 calls
    _probe(store, "local", 200, [1.0] * 200, 4000.0)
    _probe(store, "local", 400, [20.0] * 200, 8000.0)
    store.add(CLIENT_LOOP_LAG, {"process": "local"}, 1.0)
    rules = SaturationRules(loop_lag_p99_ms=25.0)
    findings, figures = judge(store.select_hist(CLIENT_LOOP_LAG), None, rules, bands_from_store(store))
    pp = figures["per_process"]
    assert pp["status"] == "all_within" and pp["limit_ms"] == 25.0  # 20 ms at 400 is within 25
    assert findings == [] and pp["limit_open_calls"] == 400
    _, figures = judge(store.select_hist(CLIENT_LOOP_LAG), None, SaturationRules(), bands_from_store(store))
    pp = figures["per_process"]
    assert pp["status"] == "limit_found" and pp["also_over_below"] == ["6-10"] and pp["processes_needed"] == 2
    assert (
        "up to 200 open LLM calls (about 4,000 tokens/s read; p99 1.0 ms at 101-200) (but over it at 6-10 "
        in pp["text"]
    )
    printed = format_load_generator({**figures, "accepted": False})
    assert f"\n  {pp['text']}\n" in printed


def test_the_self_monitor_tags_its_samples_with_the_open_calls_band_and_reads_the_tokens() -> None:
    plain: list[tuple[str, float]] = []
    banded: list[tuple[str, str, float]] = []
    saved = list(gauge.LOAD)
    gauge.LOAD[:] = [150, 0]
    mon = SelfMonitor(
        lambda m, v: plain.append((m, v)),
        record_banded=lambda m, band, v: banded.append((m, band, v)),
        lag_interval_s=0.01,
        cpu_interval_s=0.1,
    )
    try:
        mon.start()
        gevent.sleep(0.05)
        gauge.LOAD[1] += 500  # calls ended, 500 token events read
        gevent.sleep(0.2)
    finally:
        mon.stop()
        gauge.LOAD[:] = saved
    lag = [(b, v) for m, b, v in banded if m == CLIENT_LAG_AT_LOAD]
    assert lag and all(b == "200" for b, _ in lag)
    assert len(lag) == sum(1 for m, _ in plain if m == CLIENT_LOOP_LAG)
    assert {(b, v) for m, b, v in banded if m == CLIENT_OPEN_CALLS} == {("200", 150.0)}
    tokens = [v for m, _, v in banded if m == CLIENT_TOKENS_READ]
    assert tokens and sum(v * 0.1 for v in tokens) == pytest.approx(500, rel=0.25)  # per-second rates over 0.1 s


def test_llm_call_counts_itself_open_and_closed_when_it_fails() -> None:
    from locust.event import EventHook

    from llm_users.client.call import llm_call

    seen: list[int] = []
    fired: list[dict[str, object]] = []

    class Broken:
        request_event = EventHook()

        def request(self, *args: object, **kwargs: object) -> object:
            seen.append(gauge.LOAD[0])
            raise ConnectionRefusedError("refused")

    Broken.request_event.add_listener(lambda **kw: fired.append(kw))
    before = list(gauge.LOAD)
    rec = llm_call(Broken(), "/v1/chat/completions", {}, stream=True, scenario="s")
    assert not rec.ok and rec.error == "connection refused" and len(fired) == 1  # a failed call, not an exception
    assert seen == [before[0] + 1]
    assert list(gauge.LOAD) == before


def test_the_html_report_shows_the_line_and_each_band_with_its_verdict() -> None:
    from llm_metrics.outputs.report_sections import trust_section

    store = MetricStore()
    _probe(store, "local", 3, [0.5] * 40, 60.0)
    _probe(store, "local", 180, [1.0] * 300, 3600.0)
    _probe(store, "local", 900, [70.0] * 200, 18000.0)
    _, figures = judge(None, None, SaturationRules(), bands_from_store(store))
    html = trust_section({"load_generator": figures})
    assert "per process: event-loop lag p99 &lt;= 10 ms up to 180 open LLM calls" in html
    rows = [r.split("</tr>")[0] for r in html.split("<tr>")[2:]]
    assert [(r.split("</td>")[0][4:], r.split("<td>")[-1].removesuffix("</td>")) for r in rows] == [
        ("3-5", "not judged"),
        ("101-200", "within"),
        ("501-1,000", "over"),
    ]


def test_a_run_without_streams_says_no_token_was_read_rather_than_zero_per_second() -> None:
    store = MetricStore()
    _probe(store, "local", 30, [1.0] * 200, 0.0)  # non-streamed calls: no token events
    text = per_process_limit(bands_from_store(store), 10.0)["text"]
    assert "up to 30 open LLM calls (no streamed token read; p99 1.0 ms at 21-50)" in text


def test_a_loop_late_with_no_llm_call_open_is_named_as_not_the_calls_doing() -> None:
    store = MetricStore()
    _probe(store, "local", 0, [40.0] * 150, 0.0)  # something else (a listener, the machine) blocks the loop
    _probe(store, "local", 1, [40.0] * 20, 20.0)
    f = per_process_limit(bands_from_store(store), 10.0)
    assert f["status"] == "too_little_data" and f["idle_lag_p99_ms"] == pytest.approx(40.0, rel=0.01)
    assert f["text"].endswith(
        "at 1 open call) (p99 40.0 ms while no LLM call was open: something else blocks the loop)"
    )
