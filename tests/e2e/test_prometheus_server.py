"""A real Prometheus server scrapes the exporter of a run and answers a TTFT query over its HTTP API.

Needs Debian's ``prometheus`` package (``/usr/bin/prometheus``; ``tests/e2e/ensure_prometheus.sh`` installs
it). The test starts its own server on a free port of 127.0.0.1 with a temporary config (scrape every second)
and data directory, so nothing of a system-wide Prometheus is used or touched.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from mock_llm.testing import MockProcess
from tests.support import LOCUSTFILES, ROOT, free_port, locust_env, missing_tool

PROMETHEUS = Path("/usr/bin/prometheus")

pytestmark = [pytest.mark.slow, pytest.mark.timeout(60)]


@pytest.fixture(autouse=True)
def _prometheus_installed() -> None:
    if not PROMETHEUS.exists():
        missing_tool("/usr/bin/prometheus is missing: sh tests/e2e/ensure_prometheus.sh installs Debian's package")


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=3) as resp:
        return json.loads(resp.read())


def query(prom: str, expr: str) -> list[dict[str, Any]]:
    doc = get_json(f"{prom}/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
    assert doc["status"] == "success", doc
    return list(doc["data"]["result"])


def wait_ready(prom: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"prometheus exited with {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{prom}/-/ready", timeout=1) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"prometheus not ready after {timeout} s: {log.read_text()[-2000:]}")


def test_prometheus_scrapes_the_exporter_and_answers_a_ttft_query(tmp_path: Path) -> None:
    exporter_port = free_port()
    prom_port = free_port()
    prom = f"http://127.0.0.1:{prom_port}"
    config = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [{"job_name": "llm-locust", "static_configs": [{"targets": [f"127.0.0.1:{exporter_port}"]}]}],
    }
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    prom_log = tmp_path / "prometheus.log"
    summary = tmp_path / "summary.json"
    with open(prom_log, "wb") as plog:
        prometheus = subprocess.Popen(
            [str(PROMETHEUS), f"--config.file={tmp_path / 'prometheus.yml'}",
             f"--storage.tsdb.path={tmp_path / 'data'}", f"--web.listen-address=127.0.0.1:{prom_port}"],
            stdout=plog, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )  # fmt: skip
    locust = None
    try:
        with MockProcess({"ttft_ms": 120, "itl_ms": 5, "seed": 5}) as mock:
            env = locust_env(
                {
                    "BASE": mock.base_url,
                    "STREAM_RPS": "15",
                    "NONSTREAM_RPS": "0",
                    "MAX_TOKENS": "8",
                    "PROMPTS": "short",
                    "SMOKE": "false",
                    "SUMMARY_JSON": str(summary),
                }
            )
            with open(tmp_path / "locust.log", "wb") as llog:
                locust = subprocess.Popen(
                    [sys.executable, "-m", "locust", "-f", str(LOCUSTFILES / "chat.py"), "--headless",
                     "-u", "8", "-r", "100", "-t", "6s", "--stop-timeout", "3",
                     "--prometheus-port", str(exporter_port), "--prometheus-linger", "8"],
                    cwd=ROOT, env=env, stdout=llog, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                )  # fmt: skip
            wait_ready(prom, prometheus, prom_log)

            # during the run: Prometheus has TTFT series with the suite's labels
            deadline = time.monotonic() + 20
            during: list[dict[str, Any]] = []
            while time.monotonic() < deadline and not during:
                during = query(prom, 'llm_locust_ttft_ms{quantile="0.95",scenario="chat_stream"}')
                time.sleep(0.5)
            assert during, "no TTFT series in Prometheus: " + prom_log.read_text()[-1500:]
            assert during[0]["metric"]["job"] == "llm-locust"
            assert during[0]["metric"]["prompt"] == "short"

            # after the run, while the exporter lingers: the last scrape holds the summary's numbers
            deadline = time.monotonic() + 25
            while not summary.exists() and time.monotonic() < deadline:
                time.sleep(0.2)
            assert summary.exists(), (tmp_path / "locust.log").read_text()[-2000:]
            doc = json.loads(summary.read_text())
            [ttft] = [m for m in doc["metrics"] if m["name"] == "llm_ttft_ms"]
            count_q = 'sum(llm_locust_ttft_ms_count{scenario="chat_stream"})'
            got: list[dict[str, Any]] = []
            while time.monotonic() < deadline:
                got = query(prom, count_q)
                if got and float(got[0]["value"][1]) == ttft["count"]:
                    break
                time.sleep(0.3)
            assert got and float(got[0]["value"][1]) == ttft["count"], (got, ttft["count"])
            [p95] = query(prom, 'llm_locust_ttft_ms{quantile="0.95",scenario="chat_stream"}')
            assert float(p95["value"][1]) == pytest.approx(ttft["p95"], rel=1e-9)
            assert 120 <= float(p95["value"][1]) < 1000  # the mock's 120 ms TTFT, as the client measured it
            [avg] = query(
                prom,
                'llm_locust_ttft_ms_sum{scenario="chat_stream"} / llm_locust_ttft_ms_count{scenario="chat_stream"}',
            )
            assert float(avg["value"][1]) == pytest.approx(ttft["avg"], rel=1e-9)
            [ok] = query(prom, 'min(llm_locust_threshold_ok{job="llm-locust"})')
            assert float(ok["value"][1]) == (1.0 if doc["ok"] else 0.0)
            locust.wait(20)
            assert locust.returncode == 0, (tmp_path / "locust.log").read_text()[-2000:]
    finally:
        for p in (locust, prometheus):
            if p is not None and p.poll() is None:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
