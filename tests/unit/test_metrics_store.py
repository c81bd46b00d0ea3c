"""MetricStore: series by tags, filters, worker deltas merged on the master, cardinality bound."""

from __future__ import annotations

import random
from typing import Any

import msgpack
import pytest

from llm_metrics.engine.calls import CallRecord, GoodputSLO
from llm_metrics.engine.histogram import Histogram
from llm_metrics.engine.store import OTHER, MetricStore, RateValue, make_tags, tags_match
from llm_metrics.engine.store_cells import FLUSH_EVERY, HELD_TIMES


def call(scenario: str = "chat_stream", prompt: str = "short", ttft: float = 0.2, **kw: Any) -> CallRecord:
    t0 = 100.0
    base: dict[str, Any] = dict(
        scenario=scenario,
        name="/v1/chat/completions",
        prompt=prompt,
        status=200,
        t_start=t0,
        t_headers=t0 + 0.05,
        t_first_content=t0 + ttft,
        chunk_times=[t0 + ttft + 0.02 * i for i in range(8)],
        t_end=t0 + ttft + 0.2,
        content_events=8,
        usage_completion_tokens=8,
    )
    base.update(kw)
    return CallRecord(**base)


@pytest.mark.parametrize(
    ("given", "tags"),
    [
        ({"b": "2", "a": 1}, (("a", "1"), ("b", "2"))),
        ({"prompt": "", "status": None, "scenario": "x"}, (("scenario", "x"),)),
        (None, ()),
        ([("z", "1"), ("a", "2")], (("a", "2"), ("z", "1"))),
    ],
)
def test_make_tags_sorts_and_drops_empty_values(given: Any, tags: Any) -> None:
    assert make_tags(given) == tags


@pytest.mark.parametrize(
    ("filt", "match"),
    [
        ({}, True),
        ({"scenario": "chat_stream"}, True),
        ({"scenario": "chat_stream", "status": "200"}, True),
        ({"scenario": "chat_stream", "status": "500"}, False),
        ({"model": "x"}, False),
    ],
)
def test_tags_match_is_subset(filt: dict[str, str], match: bool) -> None:
    tags = make_tags({"scenario": "chat_stream", "status": 200, "prompt": "short"})
    assert tags_match(tags, make_tags(filt)) is match


def test_record_call_tags_series_by_scenario_name_prompt_status() -> None:
    s = MetricStore()
    s.record_call(call(prompt="short"))
    s.record_call(call(prompt="cot", ttft=1.0))
    s.record_call(call(prompt="short", ok=False, status=500))
    series = {(m, t) for kind, m, t in s.series() if m == "llm_total_ms"}
    assert series == {
        (
            "llm_total_ms",
            make_tags({"scenario": "chat_stream", "name": "/v1/chat/completions", "prompt": p, "status": st}),
        )
        for p, st in [("short", 200), ("cot", 200), ("short", 500)]
    }


@pytest.mark.parametrize(
    ("filt", "count"),
    [
        ({}, 3),
        ({"prompt": "short"}, 2),
        ({"prompt": "short", "status": "200"}, 1),
        ({"status": "500"}, 1),
        ({"scenario": "other"}, 0),
    ],
)
def test_select_merges_every_series_whose_tags_contain_the_filter(filt: dict[str, str], count: int) -> None:
    s = MetricStore()
    s.record_call(call(prompt="short"))
    s.record_call(call(prompt="cot", ttft=1.0))
    s.record_call(call(prompt="short", ok=False, status=500))
    h = s.select_hist("llm_total_ms", filt)
    assert (h.count if h else 0) == count


def test_failed_calls_do_not_feed_ttft() -> None:
    s = MetricStore()
    s.record_call(call(ttft=0.2))
    s.record_call(call(ttft=5.0, ok=False, status=500))
    h = s.select_hist("llm_ttft_ms")
    assert h is not None and h.count == 1 and h.max == pytest.approx(200.0)


def test_chunk_gaps_pooled() -> None:
    s = MetricStore()
    s.record_call(call())
    s.record_call(call())
    h = s.select_hist("llm_chunk_gap_ms")
    assert h is not None and h.count == 14 and h.mean == pytest.approx(20.0)


def test_goodput_and_token_source() -> None:
    s = MetricStore()
    slo = GoodputSLO(ttft_ms=500)
    s.record_call(call(ttft=0.2), slo)
    s.record_call(call(ttft=1.0), slo)
    s.record_call(call(usage_completion_tokens=None), slo)
    s.record_call(call(ok=False, status=500), slo)
    assert s.select_rate("goodput") == RateValue(2, 4)
    assert s.token_sources() == {"events": 1, "usage": 2}


def test_goodput_not_recorded_without_limits() -> None:
    s = MetricStore()
    s.record_call(call(), GoodputSLO())
    assert s.select_rate("goodput") is None


def test_counters_and_rates() -> None:
    s = MetricStore()
    s.inc("budget_exceeded", {"scenario": "a"})
    s.inc("budget_exceeded", {"scenario": "b"}, 2)
    s.rate("checks", {"check": "status is 200"}, True)
    s.rate("checks", {"check": "status is 200"}, False)
    assert s.select_counter("budget_exceeded") == 3
    assert s.select_counter("budget_exceeded", {"scenario": "b"}) == 2
    assert s.select_counter("budget_exceeded", {"scenario": "c"}) is None
    assert s.select_rate("checks") == RateValue(1, 2)
    assert s.select("checks") == RateValue(1, 2)
    assert s.select("nothing") is None


def test_record_request_feeds_the_k6_views() -> None:
    s = MetricStore()
    common = dict(name="/health", method="GET", scenario="gw")
    s.record_request(status=200, response_time_ms=5.0, failed=False, **common)  # type: ignore[arg-type]
    s.record_request(status=429, response_time_ms=1.0, failed=True, **common)  # type: ignore[arg-type]
    s.record_request(status=0, response_time_ms=None, failed=True, **common)  # type: ignore[arg-type]
    h = s.select_hist("http_req_duration", {"name": "/health"})
    assert h is not None and h.count == 2
    assert s.select_rate("http_req_failed") == RateValue(2, 3)
    assert s.select_counter("http_reqs") == 3
    assert s.select_counter("requests_blocked") == 1
    assert s.select_counter("requests_blocked", {"status": "429"}) == 1


def test_a_metric_keeps_one_kind() -> None:
    s = MetricStore()
    s.add("x", {}, 1.0)
    with pytest.raises(ValueError, match="'x' is a trend, cannot record it as a counter"):
        s.inc("x", {})


def workload(seed: int) -> list[CallRecord]:
    rng = random.Random(seed)
    return [
        call(prompt=rng.choice(["short", "cot"]), ttft=rng.uniform(0.05, 2.0), status=rng.choice([200, 200, 500]))
        for _ in range(50)
    ]


def feed(s: MetricStore, calls: list[CallRecord]) -> None:
    for c in calls:
        s.record_call(c, GoodputSLO(ttft_ms=1000))
        s.inc("dropped_iterations", {"scenario": c.scenario})
        s.record_request(
            name=c.name,
            method="POST",
            status=c.status,
            scenario=c.scenario,
            response_time_ms=(c.t_end or 0) * 1000,
            failed=c.status != 200,
        )


def assert_same(a: MetricStore, b: MetricStore) -> None:
    assert a.series() == b.series()
    assert list(a.histograms()) == list(b.histograms())
    assert list(a.counters()) == list(b.counters())
    assert list(a.rates()) == list(b.rates())


def test_master_merge_of_worker_deltas_equals_one_process() -> None:
    batches = [workload(i) for i in range(6)]
    single = MetricStore()
    for b in batches:
        feed(single, b)
    master = MetricStore()
    workers = [MetricStore(keep_totals=False), MetricStore(keep_totals=False)]
    for i, b in enumerate(batches):  # interleaved reports, through msgpack as Locust sends them
        w = workers[i % 2]
        feed(w, b)
        if i % 3 != 1:  # not every batch is followed by a report: deltas span several batches
            master.merge_wire(msgpack.unpackb(msgpack.packb(w.take_delta()), strict_map_key=True))
    for w in workers:  # the final report on stop
        master.merge_wire(msgpack.unpackb(msgpack.packb(w.take_delta()), strict_map_key=True))
    assert_same(master, single)


def test_take_delta_returns_only_what_is_new_and_keeps_totals() -> None:
    s = MetricStore()
    s.add("m", {"a": "1"}, 5.0)
    first = s.take_delta()
    s.add("m", {"a": "1"}, 7.0)
    second = s.take_delta()
    assert [Histogram.from_wire(h[2]).count for h in first["h"]] == [1]
    assert [Histogram.from_wire(h[2]).count for h in second["h"]] == [1]
    assert s.take_delta() == {"v": 1, "h": [], "c": [], "r": []}
    h = s.select_hist("m")
    assert h is not None and h.count == 2


def test_record_call_after_take_delta_records_into_the_new_delta() -> None:
    s = MetricStore()
    s.record_call(call())
    s.take_delta()
    s.record_call(call())
    wire = s.take_delta()
    assert {m for m, _, _ in wire["h"]} >= {"llm_total_ms", "llm_ttft_ms"}
    h = s.select_hist("llm_total_ms")
    assert h is not None and h.count == 2


def test_pending_values_are_recorded_before_every_read_and_every_delta() -> None:
    # a request's values wait in lists and are recorded in bulk: reads and deltas must never miss or reorder them
    rng = random.Random(3)
    s = MetricStore()
    duration, ttft = Histogram(), Histogram()  # what record one value at a time gives
    sent_duration, sent_ttft = Histogram(), Histogram()
    for i in range(FLUSH_EVERY * 2 + 37):
        v = rng.lognormvariate(5, 1)
        s.record_request(name="/x", method="POST", status=200, scenario="s", response_time_ms=v, failed=False)
        rec = call(ttft=rng.uniform(0.01, 2.0))
        s.record_call(rec)
        duration.record(v)
        ttft.record((rec.t_first_content - rec.t_start) * 1000.0)  # type: ignore[operator]
        if i % 97 == 0:
            assert s.select_hist("http_req_duration") == duration
            assert s.select_hist("llm_ttft_ms") == ttft
        if i % 150 == 149 or i == FLUSH_EVERY * 2 + 36:
            for metric, _tags, wire in s.take_delta()["h"]:
                if metric == "http_req_duration":
                    sent_duration.merge(Histogram.from_wire(wire))
                if metric == "llm_ttft_ms":
                    sent_ttft.merge(Histogram.from_wire(wire))
    assert (sent_duration, sent_ttft) == (duration, ttft)
    assert sent_duration.count == FLUSH_EVERY * 2 + 37
    assert (s.select_hist("http_req_duration"), s.select_hist("llm_ttft_ms")) == (duration, ttft)


def test_pending_chunk_gaps_are_recorded_before_every_read_and_delta_as_record_diffs_per_call() -> None:
    # a call's chunk times wait in one list per histogram, their gaps recorded in bulk (numpy) at the flushes
    rng = random.Random(4)
    s = MetricStore()
    gaps, sent = Histogram(), Histogram()  # record_diffs one call at a time; what the deltas carried
    n_calls = FLUSH_EVERY * 2 + 41
    for i in range(n_calls):
        t = 100.0 + rng.random()
        times = [t]
        for _ in range(rng.choice([0, 1, 2, 30, 64])):
            t += 10 ** rng.uniform(-5.3, -1.5)
            times.append(t)
        s.record_request(name="/x", method="POST", status=200, scenario="s", response_time_ms=1.0, failed=False)
        s.record_call(call(chunk_times=times))
        gaps.record_diffs(times, 1000.0)
        if i % 89 == 88:
            h = s.select_hist("llm_chunk_gap_ms")
            assert h is not None
            assert (h.buckets, h.count, h.min, h.max) == (gaps.buckets, gaps.count, gaps.min, gaps.max)
        if i % 150 == 149 or i == n_calls - 1:
            for metric, _tags, wire in s.take_delta()["h"]:
                if metric == "llm_chunk_gap_ms":
                    sent.merge(Histogram.from_wire(wire))
    assert sent == gaps and sent.buckets == gaps.buckets
    h = s.select_hist("llm_chunk_gap_ms")
    assert h is not None and h.buckets == gaps.buckets and h.count == gaps.count


def test_a_long_answer_s_chunk_times_are_not_held_past_held_times() -> None:
    s = MetricStore()
    times = [100.0 + 0.001 * i for i in range((HELD_TIMES + 2) // 3)]
    s.record_call(call(chunk_times=times))
    s.record_call(call(chunk_times=times))
    (h,) = s._live.hists["llm_chunk_gap_ms"].values()  # the live histogram, not a read (a read would flush)
    assert h.count == 0  # two calls' times wait
    s.record_call(call(chunk_times=times))  # the third reaches HELD_TIMES: every call's gaps are recorded now
    assert h.count == 3 * (len(times) - 1)


def test_keep_totals_false_forgets_after_take() -> None:
    s = MetricStore(keep_totals=False)
    s.add("m", {}, 1.0)
    s.take_delta()
    assert s.select_hist("m") is None


@pytest.mark.parametrize(
    "wire",
    [None, {"v": 2}, {"v": 1, "h": [["m", ["a"], [1, 0, 0.0, None, None, 0, 0, 0, [], []]]]}],
)
def test_merge_wire_rejects_malformed(wire: Any) -> None:
    with pytest.raises(ValueError):
        MetricStore().merge_wire(wire)


def test_cardinality_bound_collapses_into_other() -> None:
    s = MetricStore(max_series=3)
    for i in range(10):
        s.add("m", {"request_id": str(i), "scenario": "x"}, float(i + 1))
    tags = [t for _, t, _ in s.histograms("m")]
    assert len(tags) == 4
    assert (("request_id", OTHER), ("scenario", OTHER)) in tags
    assert s.select_hist("m") is not None and s.select_hist("m").count == 10  # type: ignore[union-attr]
    assert s.overflowed == {"m": 7}
    assert "'m'" in s.warnings()[0] and OTHER in s.warnings()[0]


def test_cardinality_bound_holds_across_deltas_and_merges() -> None:
    master = MetricStore(max_series=2)
    for i in range(5):
        w = MetricStore()
        w.inc("c", {"id": str(i)})
        master.merge_wire(w.take_delta())
    assert len(list(master.counters("c"))) == 3
    assert master.select_counter("c") == 5


def test_duration() -> None:
    s = MetricStore()
    assert s.duration_s() is None
    s.mark_start(1000.0)
    assert s.duration_s(now=1012.5) == 12.5
    s.mark_stop(1030.0)
    assert s.duration_s(now=5000.0) == 30.0


def test_llm_metrics_count_files_each_tags_dict_under_its_own_sorted_tags() -> None:
    # count caches a dict's sorted tags by its items: equal items of other types (1, True) must not share them
    from types import SimpleNamespace

    from llm_metrics.core import LLMMetrics

    m = LLMMetrics(SimpleNamespace(parsed_options=None, runner=None), "t", [], GoodputSLO(), "", "")
    window = m.open_window()
    for _ in range(3):
        m.count("dropped_iterations", {"scenario": "a", "prompt": "short"})
        m.count("dropped_iterations", {"prompt": "short", "scenario": "a"}, 2)
        m.count("dropped_iterations", make_tags({"scenario": "b"}))
        m.count("odd", {"n": 1})
        m.count("odd", {"n": True})
        m.count("odd", {"n": "1"})
    for store in (m.store, window):
        assert store.select_counter("dropped_iterations", {"scenario": "a", "prompt": "short"}) == 9
        assert store.select_counter("dropped_iterations", {"scenario": "b"}) == 3
        assert dict((tags, n) for _, tags, n in store.counters("odd")) == {(("n", "1"),): 6, (("n", "True"),): 3}


def test_a_chunk_time_that_is_not_a_number_raises_once_and_the_next_calls_are_recorded() -> None:
    s = MetricStore()
    good = [100.0 + 0.01 * i for i in range(40)]
    s.record_call(call(chunk_times=good))
    s.record_call(call(chunk_times=[100.0, None, 100.2]))  # a broken client's record: raised at the flush
    with pytest.raises(TypeError):
        s.select_hist("llm_chunk_gap_ms")
    s.record_call(call(chunk_times=good))
    h = s.select_hist("llm_chunk_gap_ms")
    assert h is not None and h.count == 2 * 39  # the calls before the broken one and after it
