"""The capacity search finds a knee set in the mock: the highest load at which TTFT p95 still meets the SLO.

The mock multiplies every delay by ``(active / capacity) ** overload_exponent`` once more than ``capacity``
generations are active. With a base TTFT of ``T`` ms and the SLO ``TTFT p95 < S`` ms, calls start missing the
SLO when the active count passes ``capacity * (S / T) ** (1 / exponent)``: the knee.

* Closed model: ``n`` Users with no think time keep about ``n`` calls active, so the knee in Users is that
  number: 20 * 2 ** (1/3) = 25.2. The SLO is twice the base TTFT, so that the client's own delay on a busy
  machine (tens of ms at worst) moves the knee by a few percent only: at S - 20 ms it is 24.3.
* Open model: at ``r`` arrivals/s of calls taking ``L`` s, ``r * L`` calls are active; above ``capacity / L``
  calls slow down, overlap more and slow down further (the overload feeds itself), so the knee in arrivals/s
  is ``capacity / L``, with ``L`` from the mock's settings (TTFT and 4 more tokens): 10 / 0.44 s = 22.7 req/s.

Each search must report a limit within 10% of its knee, in bounded time (1 s settle, 2 s judged steps).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml

from mock_llm.testing import MockProcess
from tests.support import run_locust

pytestmark = [pytest.mark.slow, pytest.mark.timing]

THRESHOLDS = {
    "thresholds": {"llm_ttft_ms": ["p(95)<200"], "http_req_failed": ["rate<0.01"]},
    "goodput": {"ttft_ms": 200},
}


def write(tmp_path: Path, name: str, data: object) -> str:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return str(path)


def test_the_search_finds_the_users_knee_within_10_percent(tmp_path: Path) -> None:
    capacity, exponent, ttft, slo = 20, 3.0, 100.0, 200.0
    knee = capacity * (slo / ttft) ** (1 / exponent)  # 25.2 Users
    search = {
        "capacity": {
            "mode": "users", "start": 10, "max": 40, "growth": 2, "resolution": 1, "relative_resolution": 0,
            "settle": 1, "hold": 2, "cooldown": 0, "min_samples": 20, "max_duration": 32,
        }
    }  # fmt: skip
    mock_conf = {"ttft_ms": ttft, "itl_ms": 5, "capacity": capacity, "overload_exponent": exponent}
    with MockProcess(mock_conf) as mock:
        started = time.monotonic()
        run = run_locust(
            "workload.py,locustfiles/capacity.py",
            ["--only-summary", "--input-tokens", "20", "--output-tokens", "4"],
            {
                "BASE": mock.base_url,
                "THRESHOLDS": write(tmp_path, "th.yaml", THRESHOLDS),
                "CAPACITY_CONF": write(tmp_path, "cap.yaml", search),
                "HTML_REPORT": str(tmp_path / "report.html"),
            },
            tmp_path,
            timeout=40,
        )
        took = time.monotonic() - started
    assert run.summary is not None, run.output[-3000:]
    cap = run.summary["capacity"]
    steps = [(s["level"], s["passed"], round(s["ttft_p95_ms"] or 0)) for s in cap["steps"]]
    print(f"users knee {knee:.1f}: limit {cap['limit']}, first failure {cap['first_failure']}, {took:.1f} s; {steps}")
    assert run.returncode == 0, run.output[-3000:]
    assert cap["complete"] and cap["ok"] and run.summary["ok"]
    assert abs(cap["limit"] - knee) <= 0.1 * knee
    assert cap["first_failure"] == cap["limit"] + 1
    assert any("llm_ttft_ms p(95)<200" in f for f in cap["failing_thresholds"])
    # below the knee the mock is not slowed: every passing step's TTFT is the base, give or take the client
    for s in cap["steps"]:
        if s["passed"]:
            assert s["ttft_p50_ms"] < ttft * 1.15 or s["level"] > capacity, s
    # the verdict is the step at the limit, and the reports show the search
    assert {t["key"] for t in run.summary["thresholds"]} == {"llm_ttft_ms", "http_req_failed"}
    assert f"CAPACITY SEARCH (users): limit {cap['limit']:g} users" in run.output
    assert 'id="plot-capacity-latency"' in (tmp_path / "report.html").read_text()


def test_the_search_finds_the_arrival_rate_knee_within_10_percent(tmp_path: Path) -> None:
    capacity, exponent = 10, 3.0
    mock_conf = {"ttft_ms": 400, "itl_ms": 10, "capacity": capacity, "overload_exponent": exponent}
    search = {
        "capacity": {
            "mode": "rate", "start": 10, "max": 40, "growth": 2, "resolution": 1, "relative_resolution": 0.05,
            "settle": 1, "hold": 2, "cooldown": 1, "min_samples": 10, "max_duration": 32,
            "users_per_rps": 2, "min_users": 10, "max_users": 150,
        }
    }  # fmt: skip
    thresholds = {"thresholds": {"llm_ttft_ms": ["p(95)<600"], "http_req_failed": ["rate<0.01"]}}
    with MockProcess(mock_conf) as mock:
        started = time.monotonic()
        run = run_locust(
            "workload.py,locustfiles/capacity.py",
            ["--only-summary", "--workload", "open", "--input-tokens", "20", "--output-tokens", "5"],
            {
                "BASE": mock.base_url,
                "THRESHOLDS": write(tmp_path, "th.yaml", thresholds),
                "CAPACITY_CONF": write(tmp_path, "cap.yaml", search),
                # the mock counts prompt tokens exactly: no calibration, whose three 0.44 s probes would hold back
                # the first step's arrivals
                "CALIBRATE": "false",
            },
            tmp_path,
            timeout=40,
        )
        took = time.monotonic() - started
    assert run.summary is not None, run.output[-3000:]
    cap = run.summary["capacity"]
    # from the mock's configuration, not the run's data: a call alone takes its TTFT and 4 more tokens
    # (5 output tokens), so the mock's capacity of 10 concurrent generations is reached at 10 / 0.44 s. (The
    # client's and the loopback's ~14 ms per call, not in that figure, move the real knee by 3% only: a TTFT
    # of 400 ms rather than 200 keeps it well inside the 10% asked.)
    call_s = (mock_conf["ttft_ms"] + 4 * mock_conf["itl_ms"]) / 1000.0
    knee = capacity / call_s  # 22.7 arrivals/s
    steps = [(s["level"], s["passed"], round(s["requests_per_s"], 1)) for s in cap["steps"]]
    print(f"rate knee {knee:.1f}/s: limit {cap['limit']}, first failure {cap['first_failure']}, {took:.1f} s; {steps}")
    assert run.returncode == 0, run.output[-3000:]
    assert cap["mode"] == "rate" and cap["unit"] == "req/s" and cap["complete"]
    assert abs(cap["limit"] - knee) <= 0.1 * knee
    # the steps ran at their rates: below the knee every arrival was sent, none dropped
    for s in cap["steps"]:
        if s["passed"]:
            assert s["requests_per_s"] == pytest.approx(s["level"], rel=0.15), s
            assert s["dropped"] == 0
