"""The worker ledger of a distributed run (llm_metrics.cluster.workers): pure, events fed with explicit times.

(Pure and fast; it lives here with the distributed tests whose summaries it explains.)
"""

from __future__ import annotations

from llm_metrics.cluster.workers import WorkerLedger


def started(expected: int = 3, workers: tuple[str, ...] = ("a", "b", "c")) -> WorkerLedger:
    led = WorkerLedger(expected=expected, silent_after_s=10.0)
    for i, w in enumerate(workers):
        led.connected(w, 99.0, index=i)
    led.test_started(100.0, dict.fromkeys(workers, "ready"))
    return led


def test_a_quiet_run_lists_every_worker_and_no_problem() -> None:
    led = started()
    for t in (103.0, 106.0):
        for w in "abc":
            led.reported(w, t, users=5)
        assert led.observe(t, dict.fromkeys("abc", "running")) == []
    led.test_stopping(110.0)
    for w in "abc":
        led.reported(w, 110.2, users=0)
    doc = led.to_json()
    assert doc["at_start"] == 3 and doc["expected"] == 3 and doc["reported"] == 3
    assert doc["lost"] == [] and doc["late_joiners"] == [] and doc["no_final_report"] == []
    assert [n["index"] for n in doc["nodes"]] == [0, 1, 2]
    assert doc["nodes"][0]["max_users"] == 5 and doc["nodes"][0]["final_report"] is True
    assert led.lines() == ["WORKERS: 3 at start (expected 3), 0 joined late, 0 lost; 3 of 3 reported"]


def test_a_worker_in_locusts_missing_state_is_lost_with_its_last_report_time() -> None:
    led = started()
    led.reported("c", 103.0)
    news = led.observe(107.5, {"a": "running", "b": "running", "c": "missing"})
    assert len(news) == 1 and "went missing" in news[0] and "4.5 s earlier" in news[0]
    assert led.observe(108.5, {"a": "running", "b": "running", "c": "missing"}) == []  # said once
    doc = led.to_json()
    assert doc["lost"] == ["c"]
    node = doc["nodes"][2]
    assert node["status"] == "lost: missing" and node["lost_at_s"] == 7.5 and node["last_report_s"] == 3.0
    assert any(line.startswith("  lost: worker 2 (c) went missing (no heartbeat) at +7.5 s") for line in led.lines())
    assert "1 lost" in led.lines()[0]


def test_a_worker_that_vanishes_from_locusts_clients_during_the_run_quit() -> None:
    led = started()
    news = led.observe(105.0, {"a": "running", "b": "running"})
    assert "left the run (quit)" in news[0] and "never reported" in news[0]
    assert led.to_json()["lost"] == ["c"]
    assert led.to_json()["nodes"][2]["status"] == "lost: quit"


def test_workers_leaving_after_the_stop_began_are_not_lost() -> None:
    led = started()
    led.test_stopping(110.0)
    for w in "ab":
        led.reported(w, 110.3)
    assert led.observe(111.0, {}) == []
    doc = led.to_json()
    assert doc["lost"] == []
    assert [n["status"] for n in doc["nodes"]] == ["left", "left", "left"]


def test_a_missing_worker_that_heartbeats_again_is_back() -> None:
    led = started()
    led.observe(105.0, {"a": "running", "b": "running", "c": "missing"})
    news = led.observe(106.0, {"a": "running", "b": "running", "c": "running"})
    assert news == ["worker 2 (c) is back (heartbeat again)"]
    doc = led.to_json()
    assert doc["lost"] == [] and doc["nodes"][2]["recovered"] == 1


def test_a_worker_connecting_after_the_start_is_a_late_joiner() -> None:
    led = started(expected=2, workers=("a", "b"))
    led.connected("z", 104.0, index=2)
    led.reported("z", 106.0, users=4)
    doc = led.to_json()
    assert doc["late_joiners"] == ["z"] and doc["at_start"] == 2 and doc["seen"] == 3
    assert doc["nodes"][2]["connected_at_s"] == 4.0
    assert "  joined late: worker 2 (z) at +4.0 s" in led.lines()
    assert led.lines()[0].startswith("WORKERS: 2 at start (expected 2), 1 joined late, 0 lost")


def test_a_worker_first_seen_in_locusts_view_during_the_run_is_late_too() -> None:
    led = started(expected=2, workers=("a", "b"))
    led.observe(105.0, {"a": "running", "b": "running", "y": "ready"})
    assert led.to_json()["late_joiners"] == ["y"]


def test_a_connected_worker_without_reports_is_flagged_silent_once() -> None:
    led = started()
    for w in "ab":
        led.reported(w, 111.0)
    news = led.observe(111.0, dict.fromkeys("abc", "running"))
    assert news == ["worker 2 (c) has sent no report for 12 s"]
    assert led.observe(112.0, dict.fromkeys("abc", "running")) == []
    led.reported("c", 112.5)
    assert led.to_json()["nodes"][2]["silent_periods"] == 1


def test_a_worker_still_there_without_a_report_after_the_stop_lacks_its_final_report() -> None:
    led = started()
    for w in "abc":
        led.reported(w, 103.0)
    led.test_stopping(110.0)
    led.reported("a", 110.4)
    led.reported("b", 110.4)
    doc = led.to_json()
    assert doc["no_final_report"] == ["c"]
    assert any(line.startswith("  no final report: worker 2 (c), last report at +3.0 s") for line in led.lines())


def test_a_new_test_forgets_the_previous_ones_problems() -> None:
    led = started()
    led.observe(105.0, {"a": "running", "b": "running"})
    led.test_stopping(110.0)
    led.test_started(200.0, {"a": "ready", "b": "ready"})
    doc = led.to_json()
    assert doc["lost"] == [] and doc["at_start"] == 2 and [n["id"] for n in doc["nodes"]] == ["a", "b"]
    assert doc["nodes"][0]["index"] == 0
