"""The workload suite against real servers on loopback: prompt lengths in the server's tokens, conversations
that grow turn by turn (and the mock's prefix cache they exercise), and a trace replayed at its offsets."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from mock_llm.testing import MockProcess
from tests.support import LocustRun, run_locust

pytestmark = pytest.mark.slow

NO_THRESHOLDS = {"THRESHOLDS": ""}


def doc(run: LocustRun) -> dict[str, Any]:
    assert run.summary is not None, run.output[-3000:]
    return run.summary


def num(value: float | None) -> float:
    assert value is not None
    return value


def prompt_tokens_by_turn(run: LocustRun) -> dict[str, tuple[int, float]]:
    """``turnN -> (calls, mean usage.prompt_tokens)`` from the summary."""
    out = {}
    for m in doc(run)["metrics"]:
        if m["name"] == "llm_prompt_tokens":
            out[m["tags"]["prompt"]] = (m["count"], m["avg"])
    return dict(sorted(out.items(), key=lambda kv: int(kv[0].removeprefix("turn"))))


# -- prompt length ------------------------------------------------------------------------------------------------


def test_synthetic_prompts_have_the_requested_length_by_the_mocks_count(tmp_path: Path) -> None:
    with MockProcess({"ttft_ms": 5, "itl_ms": 1}) as mock:
        run = run_locust(
            "workload.py",
            ["-u", "4", "-r", "50", "-t", "4s", "--only-summary", "--input-tokens", "uniform:50:4000",
             "--output-tokens", "3"],
            {"BASE": mock.base_url, **NO_THRESHOLDS},
            tmp_path,
            timeout=40,
        )  # fmt: skip
    assert run.returncode == 0, run.output[-3000:]
    acc = doc(run)["workload"]["input_accuracy"]
    served = run.hist("llm_prompt_tokens")
    low, high = num(served.vmin), num(served.vmax)
    print(f"mock: {acc}; prompt tokens {low:.0f}..{high:.0f}")
    assert acc["calls"] >= 50 and acc["calls"] == served.count
    assert acc["error_pct_max"] <= 10.0
    assert low >= 45 and high <= 4400 and high - low > 2000
    assert doc(run)["workload"]["calibration"]["ratio"] == pytest.approx(1.0, abs=0.01)


# A chat endpoint run in its own process (this one may be gevent-patched by another test's Locust import): it
# answers non-streamed calls with usage.prompt_tokens by the chosen tokenizer, and logs every call's arrival
# (CLOCK_MONOTONIC, the same clock as this process's time.monotonic()), its prompt tokens by the mock's rule
# and its number of messages.
STUB = r"""
import json, math, re, sys, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
tokenizer, port_file, log_file = sys.argv[1:4]
RULE = re.compile(r"\w+|[^\w\s]")
log = open(log_file, "a", buffering=1)
class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass
    def do_POST(self):
        arrived = time.monotonic()
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        texts = [m["content"] for m in body["messages"]]
        mock_rule = sum(len(RULE.findall(t)) for t in texts)
        prompt = math.ceil(sum(len(t) for t in texts) / 4) + 7 if tokenizer == "chars4" else mock_rule
        n = int(body.get("max_tokens") or 1)
        log.write(json.dumps({"t": arrived, "tokens": mock_rule, "messages": len(texts)}) + "\n")
        answer = {"id": "x", "object": "chat.completion",
                  "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok " * n},
                               "finish_reason": "length"}],
                  "usage": {"prompt_tokens": prompt, "completion_tokens": n, "total_tokens": prompt + n}}
        data = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
open(port_file + ".tmp", "w").write(str(server.server_address[1]))
import os; os.replace(port_file + ".tmp", port_file)
server.serve_forever()
"""


class StubServer:
    """``STUB`` in a subprocess on a free port; ``calls()`` reads its log."""

    def __init__(self, tmp_path: Path, tokenizer: str) -> None:
        self.port_file = tmp_path / f"stub-{tokenizer}.port"
        self.log = tmp_path / f"stub-{tokenizer}.log"
        self.proc = subprocess.Popen([sys.executable, "-c", STUB, tokenizer, str(self.port_file), str(self.log)])
        deadline = time.monotonic() + 10
        while not self.port_file.exists():
            assert time.monotonic() < deadline and self.proc.poll() is None, "the stub server did not start"
            time.sleep(0.05)
        self.base_url = f"http://127.0.0.1:{self.port_file.read_text()}"

    def calls(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.log.read_text().splitlines()] if self.log.exists() else []

    def __enter__(self) -> StubServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.proc.kill()
        self.proc.wait(timeout=10)


def test_calibration_sizes_prompts_for_a_server_that_counts_tokens_differently(tmp_path: Path) -> None:
    with StubServer(tmp_path, "chars4") as server:
        run = run_locust(
            "workload.py",
            ["-u", "4", "-r", "50", "-t", "4s", "--only-summary", "--stream", "false", "--input-tokens",
             "uniform:500:3000", "--output-tokens", "2"],
            # a fixed text seed: the fitted overhead depends on the words drawn (12-15 tokens with some seeds)
            {"BASE": server.base_url, "SEED": "7", **NO_THRESHOLDS},
            tmp_path,
            timeout=40,
        )  # fmt: skip
    assert run.returncode == 0, run.output[-3000:]
    wl = doc(run)["workload"]
    acc, cal = wl["input_accuracy"], wl["calibration"]
    print(f"chars/4 server: fit {cal}; accuracy {acc}")
    assert acc["calls"] >= 50
    assert acc["error_pct_max"] <= 10.0 and acc["error_pct_p95"] <= 5.0
    assert acc["served_over_requested"] == pytest.approx(1.0, abs=0.03)
    assert 0 <= cal["overhead"] <= 15 and 1.3 < cal["ratio"] < 1.7  # the template's 7 (noisy), ~6 characters a word
    assert "prompt length vs target (server's usage.prompt_tokens)" in run.output


# -- conversations ------------------------------------------------------------------------------------------------


def test_conversation_prompts_grow_turn_by_turn_and_hit_the_prefix_cache(tmp_path: Path) -> None:
    mock_conf = {"ttft_ms": 20, "itl_ms": 2, "prefill_ms_per_token": 0.2, "prefix_cache": {"enabled": True}}
    first, followup, answer, turns = 1000, 50, 30, 4
    with MockProcess(mock_conf) as mock:
        run = run_locust(
            "workload.py",
            ["-u", "3", "-r", "50", "-t", "5s", "--only-summary", "--turns", str(turns), "--input-tokens", str(first),
             "--followup-tokens", str(followup), "--output-tokens", str(answer)],
            {"BASE": mock.base_url, **NO_THRESHOLDS},
            tmp_path,
            timeout=40,
        )  # fmt: skip
        cache = mock.stats()["prefix_cache"]
    assert run.returncode == 0, run.output[-3000:]
    by_turn = prompt_tokens_by_turn(run)
    print(f"prompt tokens by turn {by_turn}; mock prefix cache {cache}")
    assert list(by_turn)[:turns] == [f"turn{k}" for k in range(1, turns + 1)]
    for k in range(1, turns + 1):  # turn k: the first question, then k - 1 answers and follow-up questions
        calls, mean = by_turn[f"turn{k}"]
        assert calls >= 3 and mean == first + (k - 1) * (answer + followup)
    # the mock found every earlier turn cached: a later turn pays prefill for its new part only
    ttft = {k: num(run.hist("llm_ttft_ms", prompt=k).percentile(50)) for k in by_turn}
    assert ttft["turn1"] > 20 + 0.2 * first * 0.9  # 1000 tokens to prefill
    for later in ("turn2", "turn3", "turn4"):
        assert ttft[later] < 20 + 0.2 * (answer + followup) * 1.5 + 10, ttft
    later_calls = sum(calls for k, (calls, _) in by_turn.items() if k != "turn1")
    assert cache["hits"] >= later_calls
    # streamed answers are not kept by the client: the previous prompt is what the cache has in common
    expected_cached = sum(
        calls * (first + (int(k[4:]) - 2) * (answer + followup)) for k, (calls, _) in by_turn.items() if k != "turn1"
    )
    assert cache["cached_tokens"] == expected_cached


def test_non_streamed_conversations_resend_the_real_answers(tmp_path: Path) -> None:
    with MockProcess({"ttft_ms": 5, "itl_ms": 1, "prefix_cache": {"enabled": True}}) as mock:
        run = run_locust(
            "workload.py",
            ["-u", "2", "-r", "50", "-t", "3s", "--only-summary", "--turns", "3", "--input-tokens", "200",
             "--followup-tokens", "20", "--output-tokens", "10", "--stream", "false"],
            {"BASE": mock.base_url, **NO_THRESHOLDS},
            tmp_path,
            timeout=40,
        )  # fmt: skip
        cache = mock.stats()["prefix_cache"]
    assert run.returncode == 0, run.output[-3000:]
    by_turn = prompt_tokens_by_turn(run)
    # the answer text as received: the cache holds the previous prompt and its answer
    expected = sum(calls * (200 + (int(k[4:]) - 1) * 30 - 20) for k, (calls, _) in by_turn.items() if k != "turn1")
    print(f"non-stream: {by_turn}; cache {cache}")
    assert cache["cached_tokens"] == expected


# -- trace replay -------------------------------------------------------------------------------------------------

TRACE: list[dict[str, Any]] = [
    {"offset_s": 0.0, "input_tokens": 101, "output_tokens": 5},
    {"offset_s": 0.1, "input_tokens": 102, "output_tokens": 5},
    {"offset_s": 0.15, "input_tokens": 103, "output_tokens": 5},
    {"offset_s": 0.4, "input_tokens": 300, "output_tokens": 8, "conversation_id": "c1"},
    {"offset_s": 0.9, "input_tokens": 104, "output_tokens": 5},
    {"offset_s": 1.0, "input_tokens": 105, "output_tokens": 5},
    {"offset_s": 1.4, "input_tokens": 350, "output_tokens": 8, "conversation_id": "c1"},
    {"offset_s": 2.0, "input_tokens": 106, "output_tokens": 5},
    {"offset_s": 2.4, "input_tokens": 420, "output_tokens": 8, "conversation_id": "c1"},
    {"offset_s": 3.0, "input_tokens": 107, "output_tokens": 5},
    {"offset_s": 3.05, "input_tokens": 108, "output_tokens": 5},
    {"offset_s": 4.0, "input_tokens": 109, "output_tokens": 5},
]


@pytest.mark.timing  # offsets within 30 ms of the schedule: needs the CPU to itself
def test_a_trace_is_replayed_at_its_offsets_with_its_lengths(tmp_path: Path) -> None:
    trace = tmp_path / "trace.jsonl"
    trace.write_text("\n".join(json.dumps(r) for r in reversed(TRACE)) + "\n")  # any order
    scale = 0.5
    with StubServer(tmp_path, "mock") as server:
        started = time.monotonic()
        run = run_locust(
            "workload.py",
            ["-u", "4", "-r", "100", "--only-summary", "--workload", "trace", "--trace", str(trace),
             "--trace-time-scale", str(scale), "--stream", "false"],
            {"BASE": server.base_url, **NO_THRESHOLDS},
            tmp_path,
            timeout=40,
        )  # fmt: skip
        took = time.monotonic() - started
        calls = server.calls()
    assert run.returncode == 0, run.output[-3000:]
    wanted = {int(r["input_tokens"]) for r in TRACE}
    sent = [c for c in calls if c["tokens"] in wanted]  # the calibration probes are not trace records
    assert sorted(c["tokens"] for c in sent) == sorted(wanted)  # every record, at its prompt length
    # the conversation's records carry its history: question, answer, ..., the new question
    assert [c["messages"] for c in sent if c["tokens"] in (300, 350, 420)] == [1, 3, 5]
    at = {c["tokens"]: float(c["t"]) for c in sent}
    offsets = [(float(r["offset_s"]) * scale, at[int(r["input_tokens"])] - at[101]) for r in TRACE]
    print(f"scheduled vs sent offsets: {[(round(a, 3), round(b, 3)) for a, b in offsets]}; run {took:.1f} s")
    for scheduled, actual in offsets:
        assert actual == pytest.approx(scheduled, abs=0.03)
    # the client says the same: schedule lag small, nothing dropped, the run lasted the trace
    lag = run.hist("llm_schedule_lag_ms", scenario="trace")
    assert lag.count == len(TRACE) and num(lag.percentile(99)) < 30
    assert run.counter("dropped_iterations") == 0
    section = doc(run)["workload"]["trace"]
    assert section["records"] == len(TRACE) and section["conversations"] == 1 and section["duration_s"] == 2.0
    assert took < 20
    assert re.search(r"trace .*trace.jsonl: 12 requests, 1 conversations, 2.0 s at time scale 0.5", run.output)
