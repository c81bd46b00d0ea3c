"""``live.LiveSeries``: per second and scenario, merged exactly across workers, "(all)" merging scenarios."""

from __future__ import annotations

import pytest

from llm_metrics.engine.calls import CallRecord
from llm_metrics.outputs.live import ALL, LiveSeries


def call(scenario: str, ttft_s: float, *, ok: bool = True, tokens: int = 5) -> CallRecord:
    first = 10.0 + ttft_s
    return CallRecord(
        scenario=scenario,
        name="n",
        ok=ok,
        status=200 if ok else 500,
        t_start=10.0,
        t_first_content=first,
        t_first_output=first,
        chunk_times=[first, first + 0.04],
        t_end=first + 0.05,
        content_events=2,
        usage_completion_tokens=tokens,
    )


def test_seconds_scenarios_and_all() -> None:
    s = LiveSeries()
    s.record(100.2, call("a", 0.1), good=True)
    s.record(100.9, call("b", 0.3), good=False)
    s.record(100.5, call("a", 0.2, ok=False), good=False)
    s.record(101.0, call("a", 0.2), good=True)
    doc = s.to_json()
    assert doc["scenarios"] == [ALL, "a", "b"]
    first = doc["points"][ALL][0]
    assert (first["t"], first["requests"], first["errors"], first["good"], first["output_tokens"]) == (100, 3, 1, 1, 10)
    # failed calls feed no latency; the p50 of {100, 300} ms is the lower one (nearest rank)
    assert first["ttft_ms_p50"] == pytest.approx(100.0, rel=0.005)
    assert first["ttft_ms_p95"] == pytest.approx(300.0, rel=0.005)
    assert first["tpot_ms_p50"] == pytest.approx(10.0, rel=0.005)  # 40 ms over 4 tokens after the first
    assert [p["t"] for p in doc["points"]["a"]] == [100, 101]
    assert doc["points"]["b"][0]["ttft_ms_p50"] == pytest.approx(300.0, rel=0.005)


def test_workers_deltas_merge_to_what_one_process_records() -> None:
    one = LiveSeries()
    master = LiveSeries()
    workers = [LiveSeries(keep_totals=False), LiveSeries(keep_totals=False)]
    for i in range(40):
        rec = call("a" if i % 3 else "b", 0.05 + i * 0.01, ok=i % 7 != 0)
        t = 200.0 + i * 0.1
        one.record(t, rec, good=i % 2 == 0)
        workers[i % 2].record(t, rec, good=i % 2 == 0)
        if i % 10 == 9:
            for w in workers:
                master.merge_wire(w.take_delta())
    assert master.to_json() == one.to_json()
    master.clear()
    assert master.to_json() == {"scenarios": [ALL], "points": {ALL: []}}
    with pytest.raises(ValueError, match="live series wire"):
        master.merge_wire({"v": 1, "c": [[1, "a", [1, 2]]]})
