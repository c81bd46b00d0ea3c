"""The Prometheus exporter of a running master: scraped during the run and after it, and pushed at its end.

What is compared. The exporter and the JSON summary read the same merged store, so once the run is over
(scraped during ``--prometheus-linger``, and in the Pushgateway push made at the end) counts and sums are
equal to the summary's and quantiles are the same numbers. During the run a scrape is a consistent snapshot:
counts only grow, and they end at the summary's.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from llm_metrics.outputs.exporter import parse_families, sample_values
from mock_llm.testing import MockProcess
from tests.support import LOCUSTFILES, ROOT, Cluster, free_port, locust_env

pytestmark = [pytest.mark.slow, pytest.mark.timeout(60)]

LOCUST = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILES / "chat.py")]


def scrape(port: int) -> str | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as resp:
            assert resp.status == 200
            return str(resp.read().decode())
    except OSError:
        return None


class FakePushgateway:
    """Records what is PUT/POSTed to it, answers 200 (as a Pushgateway does)."""

    def __init__(self) -> None:
        self.pushes: list[tuple[str, str, bytes]] = []
        pushes = self.pushes

        class Handler(BaseHTTPRequestHandler):
            def _store(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                pushes.append((self.command, self.path, body))
                self.send_response(200)
                self.end_headers()

            do_PUT = do_POST = _store

            def log_message(self, *_a: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakePushgateway:
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def pushgateway() -> Iterator[FakePushgateway]:
    with FakePushgateway() as pg:
        yield pg


def summary_hist(doc: dict[str, Any], metric: str, **tags: str) -> list[dict[str, Any]]:
    return [m for m in doc["metrics"] if m["name"] == metric and all(m["tags"].get(k) == v for k, v in tags.items())]


def assert_matches_summary(fams: dict[str, Any], doc: dict[str, Any]) -> None:
    """Every trend series, counter and rate of the summary, as the exporter shows it."""
    for m in doc["metrics"]:
        fam = fams["llm_locust_" + m["name"].removeprefix("llm_")]
        labels = m["tags"]
        assert sample_values(fam, "_count", **labels) == [m["count"]], m["name"]
        assert sample_values(fam, "_sum", **labels) == [pytest.approx(m["avg"] * m["count"], rel=1e-9)]
        for q, key in (("0.5", "p50"), ("0.9", "p90"), ("0.95", "p95"), ("0.99", "p99")):
            assert sample_values(fam, quantile=q, **labels) == [pytest.approx(m[key], rel=1e-12)], (m["name"], q)
    for c in doc["counters"]:
        fam = fams["llm_locust_" + c["name"].removeprefix("llm_")]
        assert sample_values(fam, "_total", **c["tags"]) == [c["count"]], c["name"]
    for r in doc["rates"]:
        base = "llm_locust_" + r["name"].removeprefix("llm_")
        assert sample_values(fams[base + "_hits"], "_total", **r["tags"]) == [r["hits"]]
        assert sample_values(fams[base + "_samples"], "_total", **r["tags"]) == [r["total"]]
    ok = fams["llm_locust_threshold_ok"]
    for t in doc["thresholds"]:
        assert sample_values(ok, threshold=t["key"], expression=t["expression"]) == [1.0 if t["ok"] else 0.0]


def test_scraped_during_and_after_the_run_and_pushed_at_the_end_it_agrees_with_the_summary(
    tmp_path: Path, pushgateway: FakePushgateway
) -> None:
    prom_port = free_port()
    summary = tmp_path / "summary.json"
    with MockProcess({"ttft_ms": 40, "itl_ms": 4, "seed": 3}) as mock:
        env = {
            "BASE": mock.base_url,
            "STREAM_RPS": "20",
            "NONSTREAM_RPS": "4",
            "MAX_TOKENS": "8",
            "PROMPTS": "short",
            "SMOKE": "false",
            "PROMETHEUS_PORT": str(prom_port),  # the env knob, as in the compose file
            "PUSHGATEWAY_URL": pushgateway.url,
        }
        args = ["--expect-workers", "1", "-u", "10", "-r", "100", "-t", "6s", "--stop-timeout", "3",
                "--prometheus-linger", "6"]  # fmt: skip
        with Cluster(tmp_path, env, args) as cluster:
            cluster.add_worker()
            # during the run: wait for a scrape that has merged TTFTs from the worker
            during: dict[str, Any] = {}
            counts: list[float] = []
            deadline = time.monotonic() + 25
            while time.monotonic() < deadline and not summary.exists():
                text = scrape(prom_port)
                if text is not None:
                    fams = parse_families(text)
                    ttft = fams.get("llm_locust_ttft_ms")
                    if ttft is not None:
                        counts.append(sum(sample_values(ttft, "_count")))
                        if not during and sample_values(fams["llm_locust_users"]) == [10.0]:
                            during = fams
                time.sleep(0.3)
            assert during, "no scrape with TTFT data during the run: " + (tmp_path / "master.log").read_text()[-2000:]
            # after the run, while the exporter lingers
            final_text = scrape(prom_port)
            run = cluster.finish(20)
    output = run.output
    assert run.returncode == 0, output[-3000:]
    doc = json.loads(summary.read_text())

    # during the run: the families a dashboard needs, with the suite's labels and the runner's state
    ttft = during["llm_locust_ttft_ms"]
    assert ttft.type == "summary"
    sample = next(s for s in ttft.samples if s.name == "llm_locust_ttft_ms_count")
    assert {"scenario", "prompt", "name", "status"} <= set(sample.labels)
    assert sample_values(during["llm_locust_workers"], state="running") == [1.0]
    assert during["llm_locust_http_reqs"].type == "counter"
    assert during["llm_locust_threshold_ok"].samples
    q = {
        s.labels["quantile"]: s.value
        for s in ttft.samples
        if s.name == "llm_locust_ttft_ms" and s.labels["prompt"] == "short"
    }
    assert q["0.5"] <= q["0.9"] <= q["0.95"] <= q["0.99"]
    assert counts == sorted(counts)  # counts only grow
    final_ttft = sum(m["count"] for m in summary_hist(doc, "llm_ttft_ms"))
    assert 0 < counts[0] <= final_ttft

    # after the run (lingering) and in the push: the summary's numbers, exactly
    assert final_text is not None, "the exporter did not linger after the run"
    final = parse_families(final_text)
    assert_matches_summary(final, doc)
    assert sum(sample_values(final["llm_locust_ttft_ms"], "_count")) == final_ttft
    assert sample_values(final["llm_locust_users"]) == [0.0]

    assert len(pushgateway.pushes) == 1, pushgateway.pushes
    method, path, body = pushgateway.pushes[0]
    assert (method, path) == ("PUT", "/metrics/job/llm_locust/suite/chat")
    assert_matches_summary(parse_families(body.decode()), doc)
    assert "Prometheus exporter on http://127.0.0.1:" in output


def test_a_busy_exporter_port_stops_the_run_at_start_with_the_option_named(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        env = locust_env({"SUMMARY_JSON": str(tmp_path / "s.json"), "BASE": "http://127.0.0.1:9"})
        proc = subprocess.run(
            [*LOCUST, "--headless", "-u", "1", "-t", "1s", "--prometheus-port", str(port)],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL,
        )  # fmt: skip
    assert proc.returncode == 2
    assert f"--prometheus-port {port}: cannot listen on 127.0.0.1:{port}" in proc.stdout + proc.stderr
