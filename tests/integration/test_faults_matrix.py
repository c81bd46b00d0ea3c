"""The fault matrix: every fault the mock can inject, at a known rate, during a chat run with several Users.

One short run per fault (``locust -f locustfiles/chat.py --headless``, streamed and non-streamed calls, 10 Users).
For each, what a load test must do when things go wrong:

* every injected fault is a failed request, and its reason names the fault (Locust's error report);
* nothing is lost and nothing counted twice: the suite's successes plus failures equal the calls the mock
  received, and its failures equal the faults the mock counted;
* the Users carry on (no arrival dropped for want of a free User, no exception, several calls each) and the
  runner survives: the verdict is printed, the JSON summary written, the exit code is the thresholds' (99).

Timeouts: IDLE_TIMEOUT bounds the wait for the headers and each later wait for bytes: 1 s in the stall and slow
headers cases (the faults last 3 s), so neither hangs a User; 5 s in the others, where a timeout is not the fault
under test and a starved machine (8 runs on 2 cores in CI) must not add one. A connection refused (nothing
listening) is counted on the client side only: every attempt is a failure. 429 and budget answers are failures in
the chat suite; the gateway suite counts them apart (blocked), checked against the mock in ``test_gateway_suite.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from mock_llm.testing import MockProcess
from tests.support import LocustRun, free_port, run_locust

pytestmark = [pytest.mark.slow, pytest.mark.timeout(40)]

CHAT = "/v1/chat/completions"
KEY = "sk-fault-matrix"
# 30 Users for 10 arrivals/s: a call may take up to 3 s before an arrival finds no idle User (the 10 MiB answers of
# "oversized" took 1.3 s on a busy machine, and 10 Users dropped an arrival there)
ARGS = ["-u", "30", "-r", "30", "-t", "3s", "--stop-timeout", "5", "--only-summary"]
ENV = {"STREAM_RPS": "5", "NONSTREAM_RPS": "5", "MAX_TOKENS": "8", "SMOKE": "false", "IDLE_TIMEOUT": "5"}
SHORT_IDLE = {"IDLE_TIMEOUT": "1"}


def rule(kind: str, arg: float | None = None, rate: float = 0.3) -> dict[str, Any]:
    r: dict[str, Any] = {"path": CHAT, "kind": kind, "rate": rate}
    if arg is not None:
        r["arg"] = arg
    return r


@dataclass
class Case:
    mock: dict[str, Any]
    counter: str  # what the mock counted for the fault: faults.<kind>, rate_limited or budget_exceeded
    reasons: set[str]  # every failure reason must be one of these (stream and non-stream differ)
    env: dict[str, str] = field(default_factory=dict)


CASES: dict[str, Case] = {
    "5xx": Case({"faults": [rule("error", 503)]}, "faults.error", {"HTTP 503: mock_fault"}),
    "429-storm": Case(
        {"gateway": {"api_keys": {KEY: {"rate_limit_rps": 2, "burst": 2}}}},
        "rate_limited",
        {"HTTP 429: rate_limit_exceeded"},
        {"API_KEY": KEY},
    ),
    "budget": Case(
        {"gateway": {"api_keys": {KEY: {"token_budget": 40}}}},
        "budget_exceeded",
        {"HTTP 402: budget_exceeded"},
        {"API_KEY": KEY},
    ),
    "mid-stream-disconnect": Case(
        {"faults": [rule("disconnect")]},
        "faults.disconnect",
        {"stream cut before the end", "connection closed before the answer"},
    ),
    # a TCP RST (SO_LINGER 0) in the middle of the answer, and before any header: a crashed server or a
    # middlebox. The reason is exact: not the graceful "stream cut" of a close
    "mid-stream-reset": Case({"faults": [rule("reset")]}, "faults.reset", {"connection reset"}),
    "reset-before-headers": Case({"faults": [rule("reset_headers")]}, "faults.reset_headers", {"connection reset"}),
    "malformed-sse-line": Case(
        {"faults": [rule("malformed")]}, "faults.malformed", {"broken JSON in SSE event", "invalid JSON body"}
    ),
    "sse-error-event": Case(
        {"faults": [rule("sse_error")]}, "faults.sse_error", {"SSE error event", "error object in body"}
    ),
    "invalid-json": Case(
        {"faults": [rule("invalid_json")]}, "faults.invalid_json", {"broken JSON in SSE event", "invalid JSON body"}
    ),
    "wrong-content-type": Case(
        {"faults": [rule("wrong_content_type")]},
        "faults.wrong_content_type",
        {"wrong content type for a stream: text/html", "wrong content type: text/html"},
    ),
    "stall-longer-than-the-timeout": Case(
        {"faults": [rule("stall", 3)]}, "faults.stall", {"timeout (idle)", "timeout (headers)"}, SHORT_IDLE
    ),
    "slow-headers": Case(
        {"faults": [rule("slow_headers", 3)]}, "faults.slow_headers", {"timeout (headers)"}, SHORT_IDLE
    ),
    # the mock's default: 10 MiB, over both the event (1 MiB) and the body (8 MiB) limits. With a 1 s idle timeout
    # in every case, CI (8 runs on 2 cores) once counted 11 failures for 8 cut answers here, and the mock never
    # answered one call: most likely 1 s timeouts of a starved process (the reasons are printed with the counts now)
    "oversized": Case(
        {"faults": [rule("oversized")]},
        "faults.oversized",
        {"oversized SSE event (over 1 MiB)", "oversized body (over 8 MiB)"},
    ),
}


def failure_reasons(run: LocustRun) -> dict[str, int]:
    """Occurrences per failure reason, from Locust's error report (printed at shutdown, complete; its
    ``--csv`` failures file is rewritten once a second and misses the calls that end in the last one)."""
    lines = run.output.splitlines()
    start = max(i for i, ln in enumerate(lines) if ln.startswith("Error report"))
    out: dict[str, int] = {}
    for ln in lines[start + 3 :]:
        if ln.startswith("---"):
            break
        count, _, error = ln.strip().partition(" ")
        reason = error.strip().partition(": ")[2]  # "POST <name>: <reason>"; names hold no ": "
        out[reason] = out.get(reason, 0) + int(count)
    return out


def mock_count(stats: dict[str, Any], counter: str) -> int:
    if counter.startswith("faults."):
        return int(stats["faults"].get(counter.removeprefix("faults."), 0))
    return int(stats[counter])


def assert_users_carried_on(run: LocustRun) -> None:
    """No User hung (every arrival found an idle User), none met an exception (a task that raises is logged
    with its traceback), and the Users made several calls each."""
    assert run.summary is not None
    assert run.counter("dropped_iterations") == 0, run.output[-2000:]
    assert "Traceback" not in run.output, run.output[-3000:]
    assert run.counter("http_reqs", method="POST") > 10  # 3 s of 10 arrivals/s


def chat_run(tmp_path: Path, base_url: str, env: dict[str, str]) -> LocustRun:
    return run_locust("chat.py", ARGS, {"BASE": base_url, **ENV, **env}, tmp_path, timeout=35)


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_each_fault_fails_its_calls_with_a_reason_and_loses_nothing(tmp_path: Path, case: str) -> None:
    c = CASES[case]
    with MockProcess({"ttft_ms": 20, "itl_ms": 5, "seed": 3, **c.mock}) as mock:
        run = chat_run(tmp_path, mock.base_url, c.env)
        stats = mock.stats()
    # the runner survived: the verdict was printed, the summary written, the exit code is the thresholds'
    assert run.summary is not None, run.output[-3000:]
    assert run.returncode == 99, run.output[-3000:]
    assert "LLM load test: chat" in run.output
    received = stats["requests"][f"POST {CHAT}"]
    failed, total = run.rate("http_req_failed", method="POST")
    assert total == run.counter("http_reqs", method="POST") == received, (total, stats)  # successes + failures
    injected = mock_count(stats, c.counter)
    assert injected > 0, stats
    reasons = failure_reasons(run)
    assert failed == injected, (failed, stats, reasons)
    assert sum(reasons.values()) == failed
    assert set(reasons) <= c.reasons, reasons
    assert_users_carried_on(run)


def test_connection_refused_every_attempt_is_a_failure(tmp_path: Path) -> None:
    """Nothing listens on the target port: every attempt (smoke included) fails as refused, none is lost."""
    run = chat_run(tmp_path, f"http://127.0.0.1:{free_port()}", {"SMOKE": "true"})
    assert run.summary is not None, run.output[-3000:]
    assert run.returncode == 99, run.output[-3000:]
    failed, attempts = run.rate("http_req_failed")
    assert attempts == run.counter("http_reqs") == failed > 10
    assert run.counter("http_reqs", scenario="smoke") == 2  # GET /v1/version and /v1/models, once
    assert failure_reasons(run) == {"connection refused": attempts}
    # arrivals issued = attempts + dropped; with refused connections no User is ever busy for long
    assert run.counter("dropped_iterations") == 0


@pytest.mark.timing  # the bound is a timer's: on a busy machine it fired 730 ms late (phase 2 has quiet cores)
def test_a_trickling_stream_is_cut_by_the_call_timeout(tmp_path: Path) -> None:
    """Every token within the idle timeout, the whole stream beyond CALL_TIMEOUT: cut at the call timeout."""
    with MockProcess({"ttft_ms": 20, "itl_ms": 200, "seed": 3}) as mock:
        run = chat_run(tmp_path, mock.base_url, {"MAX_TOKENS": "20", "NONSTREAM_RPS": "0", "CALL_TIMEOUT": "1"})
        stats = mock.stats()
    assert run.summary is not None, run.output[-3000:]
    failed, total = run.rate("http_req_failed", method="POST")
    assert failed == total == stats["requests"][f"POST {CHAT}"] == stats["client_disconnects"] > 0
    assert failure_reasons(run) == {"timeout (call)": total}
    vmax = run.hist("llm_total_ms").vmax
    assert vmax is not None and vmax < 1300  # each call ended at its 1 s bound, none ran its 4 s
    assert_users_carried_on(run)
