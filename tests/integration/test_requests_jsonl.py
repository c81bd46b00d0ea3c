"""``--requests-jsonl``: one line per LLM call, in one process and across a master and two workers.

The lines must agree with the merged metrics: as many lines as requests, time stamps in the order the call
went through them, and the TTFT recomputed from the lines giving the histogram's p50 within the histogram's
0.5% precision. The files read back (``summary_from_requests``) feed ``compare`` and the HTML report."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from llm_metrics.outputs.requests_log import LINE_KEYS, summary_from_requests
from mock_llm.testing import MockProcess
from tests.support import ROOT, LocustRun, count_of, hist_of, run_distributed, run_locust

pytestmark = pytest.mark.slow

CHAT_ENV = {"STREAM_RPS": "25", "NONSTREAM_RPS": "5", "MAX_TOKENS": "8", "PROMPTS": "short", "SMOKE": "false"}


def read(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def exact_p50(values: list[float]) -> float:
    """The lower median: the value with rank ceil(n/2), as the histogram's percentile picks its bucket."""
    s = sorted(values)
    return s[max(0, math.ceil(len(s) * 0.5) - 1)]


def check_lines(lines: list[dict[str, Any]], run: LocustRun) -> None:
    assert lines, run.output[-2000:]
    assert all(tuple(line) == LINE_KEYS for line in lines)
    # one line per LLM call: the merged request count
    assert len(lines) == run.counter("http_reqs"), run.output[-2000:]
    ok = [line for line in lines if line["ok"]]
    assert len(ok) == len(lines) - run.rate("http_req_failed")[0]
    for line in ok:
        stamps = [line["sent"], line["headers"], line["end"]]
        if line["stream"]:
            stamps = [line["sent"], line["headers"], line["first_token"], line["last_token"], line["end"]]
            assert line["first_token"] <= line["first_output_token"] <= line["last_token"], line
        if line["scheduled"] is not None:
            stamps.insert(0, line["scheduled"])
        assert all(isinstance(t, float) for t in stamps), line
        assert stamps == sorted(stamps), line
        assert line["output_tokens"] == 8 and line["output_tokens_source"] == "usage", line
        assert line["prompt_tokens"] and line["prompt_tokens_source"] == "usage", line
    # open model: every call was scheduled
    assert all(line["scheduled"] is not None for line in lines)
    streamed = [(line["first_token"] - line["sent"]) * 1000.0 for line in ok if line["stream"]]
    hist = run.hist("llm_ttft_ms")
    assert hist.count == len(streamed)
    p50 = hist.percentile(50)
    assert p50 is not None
    # the histogram keeps 0.5% relative precision; the lines are rounded to the microsecond (2 us per difference)
    assert abs(p50 - exact_p50(streamed)) <= 0.005 * p50 + 0.002, (p50, exact_p50(streamed))


def test_one_line_per_call_in_a_local_run(tmp_path: Path) -> None:
    out = tmp_path / "requests.jsonl"
    with MockProcess({"ttft_ms": 60, "itl_ms": 4, "jitter_ms": 10, "seed": 3}) as mock:
        run = run_locust(
            "chat.py",
            ["-u", "20", "-r", "100", "-t", "4s", "--only-summary"],
            {**CHAT_ENV, "BASE": mock.base_url, "REQUESTS_JSONL": str(out)},
            tmp_path,
        )
    assert run.returncode == 0, run.output[-3000:]
    lines = read(out)
    check_lines(lines, run)
    assert {line["worker"] for line in lines} == {"local"}
    assert {line["suite"] for line in lines} == {"chat"}
    assert {line["api"] for line in lines} == {"chat"}
    assert {line["scenario"] for line in lines} == {"chat_stream", "chat_nonstream"}
    assert run.summary is not None
    assert run.summary["requests_jsonl"] == [{"worker": "local", "path": str(out), "lines": len(lines)}]

    # read back: the same TTFT histogram as the run's (same values, same buckets), the same request count
    doc = summary_from_requests(out)
    back = hist_of(doc, "llm_ttft_ms")
    assert back.count == run.hist("llm_ttft_ms").count
    assert back.percentile(50) == pytest.approx(run.hist("llm_ttft_ms").percentile(50), rel=0.006)
    assert count_of(doc, "http_reqs") == len(lines)

    # the CLI tools take the file where they take a summary
    cmp = subprocess.run(
        [sys.executable, "-m", "llm_metrics.compare", str(out), str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert cmp.returncode == 0, cmp.stdout + cmp.stderr
    assert "llm_ttft_ms" in cmp.stdout
    html = tmp_path / "requests.html"
    rep = subprocess.run(
        [sys.executable, "-m", "llm_metrics.report_html", str(out), "-o", str(html)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert rep.returncode == 0, rep.stdout + rep.stderr
    assert "llm_ttft_ms" in html.read_text() or "TTFT" in html.read_text()


def test_each_worker_writes_its_file_and_the_master_lists_them(tmp_path: Path) -> None:
    out = tmp_path / "req.jsonl"
    with MockProcess({"ttft_ms": 40, "itl_ms": 3, "jitter_ms": 8, "seed": 5}) as mock:
        args = ["-u", "10", "-r", "100", "-t", "5s", "--stop-timeout", "5", "--only-summary"]
        run = run_distributed(
            "chat.py", args, {**CHAT_ENV, "BASE": mock.base_url, "REQUESTS_JSONL": str(out)}, tmp_path
        )
    assert run.returncode == 0, run.output[-3000:]
    assert not out.exists()  # the master writes no records of its own
    files = sorted(tmp_path.glob("req.worker*.jsonl"))
    assert [f.name for f in files] == ["req.worker0.jsonl", "req.worker1.jsonl"]
    per_file = {f: read(f) for f in files}
    assert all(per_file.values())
    assert run.summary is not None
    listed = run.summary["requests_jsonl"]
    assert [(i["worker"], Path(i["path"]).resolve(), i["lines"]) for i in listed] == [
        (f"worker{n}", f.resolve(), len(per_file[f])) for n, f in enumerate(files)
    ]
    for n, f in enumerate(files):
        assert {line["worker"] for line in per_file[f]} == {f"worker{n}"}
    check_lines([line for lines in per_file.values() for line in lines], run)
    # the live charts' series is the master's merge of both workers' too: one call counted once
    live = run.summary["live_series"]["points"]["(all)"]
    assert sum(p["requests"] for p in live) == run.counter("http_reqs")
    # both files together, as a glob, read back as one run
    doc = summary_from_requests(str(tmp_path / "req.worker*.jsonl"))
    assert doc["metadata"]["lines"] == run.counter("http_reqs")
