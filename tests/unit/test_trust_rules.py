"""Pure rules behind a verdict you can trust: no-data reasons, schedule adherence, outputs, duplicate keys."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from llm_metrics.engine.adherence import ArrivalLedger, problems, section
from llm_metrics.engine.calls import CallRecord
from llm_metrics.engine.config import safe_load_unique
from llm_metrics.engine.histogram import Histogram
from llm_metrics.engine.nodata import CallCounts, explain
from llm_metrics.engine.store import MetricStore, make_tags
from llm_metrics.engine.thresholds import default_registry
from llm_metrics.monitors.selfmon import SaturationError, SaturationRules, judge, parse_saturation, share_at_or_above
from llm_metrics.outputs.files import unwritable_reason, write_atomic
from llm_metrics.slo_config import ConfigError, load_slo_config, load_slo_file


def _call(prompt: str, ok: bool = True, queue_ms: float | None = None) -> CallRecord:
    rec = CallRecord(scenario="chat_stream", name="chat", prompt=prompt, stream=True, t_start=0.0)
    rec.ok = ok
    rec.status = 200 if ok else 500
    rec.t_headers = 0.05
    rec.t_first_content = 0.1
    rec.chunk_times = [0.1, 0.2]
    rec.content_events = 2
    rec.t_end = 0.3
    rec.queue_ms = queue_ms
    return rec


def _store(*recs: CallRecord) -> MetricStore:
    s = MetricStore()
    for r in recs:
        s.record_call(r)
    return s


# -- no data: why ---------------------------------------------------------------------------------------


def test_a_tag_value_no_series_has_is_named_with_the_values_recorded() -> None:
    store = _store(_call("dataset"), _call("dataset"))
    why = explain("llm_ttft_ms", make_tags({"prompt": "short"}), store, CallCounts(2, 2))
    assert why == "no prompt variant of llm_ttft_ms has prompt=short (values recorded: dataset)"


def test_a_missing_header_is_named_with_the_count_of_answers_that_lacked_it() -> None:
    store = _store(*[_call("short") for _ in range(16)])
    needs = {"gateway_latency": "x-litellm-overhead-duration-ms or Server-Timing gateway"}
    why = explain("gateway_latency", (), store, CallCounts(16, 16), needs)
    assert why == (
        "gateway_latency: 0 of 16 successful answers carried x-litellm-overhead-duration-ms or Server-Timing gateway"
    )
    # the default needs of a per-call metric, and a filter narrowing the count
    store.record_call(_call("cot"))
    why = explain("llm_queue_ms", make_tags({"prompt": "cot"}), store, CallCounts(17, 17))
    assert why == "llm_queue_ms: 0 of 1 successful answers with prompt:cot carried an X-Queue-Time header"


@pytest.mark.parametrize(
    ("calls", "expected"),
    [
        (CallCounts(0, 0), "no LLM call was made, so nothing recorded llm_ttft_ms"),
        (CallCounts(7, 0), "no LLM call succeeded (7 made, all failed), so nothing recorded llm_ttft_ms"),
    ],
)
def test_no_successful_call_is_the_reason_when_there_is_none(calls: CallCounts, expected: str) -> None:
    assert explain("llm_ttft_ms", (), MetricStore(), calls) == expected


# -- schedule adherence -----------------------------------------------------------------------------------


def test_the_ledger_integrates_the_rate_over_the_run_and_its_changes() -> None:
    led = ArrivalLedger()
    led.start(100.0, {"a": 10.0, "b": 2.0})
    assert led.expected(101.0) == {"a": 10.0, "b": 2.0}
    led.set_rates(102.0, {"a": 5.0})
    led.stop(104.0)
    assert led.expected(999.0) == {"a": 30.0, "b": 4.0}
    assert led.seconds(999.0) == 4.0
    trace = ArrivalLedger(kind="trace", offsets={"trace": [0.0, 0.5, 1.0, 3.0]})
    trace.start(0.0)
    trace.stop(2.0)
    assert trace.expected(10.0) == {"trace": 3.0}


@pytest.mark.parametrize(
    ("expected", "issued", "dropped", "kind", "words"),
    [
        (200, 200, 0, "constant", []),
        (200, 181, 0, "constant", []),
        (200, 179, 0, "constant", ["under 90%"]),
        (200, 8, 0, "constant", ["8 arrivals issued of 200 expected"]),
        (200, 200, 10, "constant", []),
        (200, 200, 11, "constant", ["11 of 200 arrivals dropped"]),
        (200, 170, 0, "poisson", []),  # 3 sd of a Poisson count of 200 is 42: not a miss
        (200, 150, 0, "poisson", ["under 90%"]),
        (0.5, 0, 0, "constant", []),  # less than one arrival expected: nothing to judge
    ],
)
def test_a_schedule_is_kept_within_the_rules(
    expected: float, issued: float, dropped: float, kind: str, words: list[str]
) -> None:
    found = problems(expected, issued, dropped, kind=kind)
    assert len(found) == len(words)
    for text, word in zip(found, words, strict=True):
        assert word in text


def test_the_arrivals_section_adds_up_and_says_when_a_miss_was_accepted() -> None:
    led = ArrivalLedger()
    led.start(0.0, {"s": 10.0})
    led.stop(20.0)
    doc = section(led, {"s": 100.0}, {"s": 30.0}, 50.0, accept=True)
    assert (doc["expected"], doc["issued"], doc["sent"], doc["dropped"]) == (200.0, 100.0, 70.0, 30.0)
    assert doc["scenarios"]["s"] == {"expected": 200.0, "issued": 100.0, "sent": 70.0, "dropped": 30.0}
    assert len(doc["problems"]) == 2 and doc["accepted"] is True


# -- outputs ----------------------------------------------------------------------------------------------


def test_an_atomic_write_replaces_the_file_whole_and_a_failed_one_keeps_the_old(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "deep" / "summary.json"
    write_atomic(out, "old")
    assert out.read_text() == "old"

    def broken(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken)
    with pytest.raises(OSError):
        write_atomic(out, "new")
    assert out.read_text() == "old"
    assert sorted(p.name for p in out.parent.iterdir()) == ["summary.json"]  # no temporary file left


def test_an_unwritable_output_path_is_told_apart(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    assert unwritable_reason(tmp_path / "new" / "summary.json") is None
    assert (tmp_path / "new").is_dir() and list((tmp_path / "new").iterdir()) == []
    assert unwritable_reason(tmp_path) == "it is a folder"
    why = unwritable_reason(blocker / "summary.json")
    assert why is not None and "cannot be created" in why


# -- duplicate keys ---------------------------------------------------------------------------------------


def test_a_duplicate_key_is_refused_with_its_line(tmp_path: Path) -> None:
    with pytest.raises(yaml.YAMLError, match="duplicate key 'a'"):
        safe_load_unique("a: 1\nb: 2\na: 3\n")
    f = tmp_path / "th.yaml"
    f.write_text('thresholds:\n  gateway_latency: ["p(95)<50"]\n  gateway_latency: ["p(99)<100"]\n')
    with pytest.raises(ConfigError, match=r"th\.yaml: line 3: duplicate key 'gateway_latency'"):
        load_slo_file(f, default_registry())


# -- load-generator saturation ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (None, SaturationRules()),
        (True, SaturationRules()),
        (False, SaturationRules(enabled=False)),
        ({"loop_lag_p99_ms": 25, "cpu_share": 0.5}, SaturationRules(loop_lag_p99_ms=25.0, cpu_share=0.5)),
    ],
)
def test_saturation_rules_are_read_from_the_thresholds_file(data: object, expected: SaturationRules) -> None:
    assert parse_saturation(data, "th.yaml") == expected


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"cpu_pct": 120}, "th.yaml: saturation.cpu_pct: expected a number > 0 and <= 100, got 120"),
        ({"lag": 5}, "th.yaml: saturation.lag: unknown key (expected enabled, loop_lag_p99_ms, cpu_pct, cpu_share)"),
        ("high", "th.yaml: saturation: expected true, false or a mapping"),
    ],
)
def test_bad_saturation_rules_name_the_key(data: object, message: str) -> None:
    with pytest.raises(SaturationError) as err:
        parse_saturation(data, "th.yaml")
    assert str(err.value).startswith(message)


def test_the_saturation_key_of_a_thresholds_file_is_validated_with_the_rest(tmp_path: Path) -> None:
    f = tmp_path / "th.yaml"
    f.write_text('thresholds:\n  client_loop_lag_ms: ["p(99)<5"]\nsaturation: {cpu_share: 2}\n')
    reg = default_registry()
    reg.register("client_loop_lag_ms", "trend")
    with pytest.raises(ConfigError, match=r"saturation\.cpu_share: expected a number > 0 and <= 1, got 2"):
        load_slo_config(f, reg)
    f.write_text('thresholds:\n  client_loop_lag_ms: ["p(99)<5"]\nsaturation: false\n')
    ths, _, rules = load_slo_config(f, reg)
    assert [t.metric for t in ths] == ["client_loop_lag_ms"] and rules.enabled is False


def _lag(values_ms: list[float]) -> Histogram:
    return Histogram.of(values_ms)


def test_the_generator_is_saturated_by_loop_lag_or_cpu_time_over_the_limits() -> None:
    calm, busy = _lag([0.5] * 990 + [3.0] * 10), _lag([0.5] * 900 + [40.0] * 100)
    cpu_ok, cpu_hot = Histogram.of([50.0] * 19 + [95.0]), Histogram.of([50.0] * 16 + [95.0] * 4)
    rules = SaturationRules()
    assert judge(calm, cpu_ok, rules)[0] == []
    found, figures = judge(busy, cpu_ok, rules)
    assert len(found) == 1 and found[0].startswith("event-loop lag p99 39.8 ms (over 10 ms")
    assert figures["saturated"] is True and figures["loop_lag_ms"]["samples"] == 1000
    found, figures = judge(calm, cpu_hot, rules)
    assert found == ["CPU at or above 90% of a core for 20% of the seconds sampled (over 10%; average 59%)"]
    assert figures["cpu_pct"]["share_at_or_above_90"] == pytest.approx(0.2)
    assert judge(busy, cpu_hot, SaturationRules(enabled=False))[0] == []
    # a start-up hiccup is not a run: too little probing to judge
    assert judge(_lag([40.0] * 10), Histogram.of([99.0] * 2), rules)[0] == []


def test_the_share_at_or_above_a_value_counts_the_value_itself() -> None:
    h = Histogram.of([89.0, 90.0, 90.0, 100.0])
    assert share_at_or_above(h, 90.0) == pytest.approx(0.75)
    assert share_at_or_above(Histogram(), 90.0) == 0.0
