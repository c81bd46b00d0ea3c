"""``--server-metrics``: the master scrapes the inference server's Prometheus text during the run, and the JSON
summary and the HTML report show the server's series beside the client's (the mock exports vLLM's names)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mock_llm.testing import MockProcess
from tests.support import run_locust

pytestmark = pytest.mark.slow


def test_server_series_beside_the_clients_in_json_and_report(tmp_path: Path) -> None:
    html = tmp_path / "report.html"
    with MockProcess({"ttft_ms": 150, "itl_ms": 5, "seed": 2}) as mock:
        url = mock.base_url.rstrip("/") + "/metrics"
        run = run_locust(
            "chat.py",
            ["-u", "10", "-r", "100", "-t", "4s", "--only-summary", "--server-metrics", url],
            {
                "BASE": mock.base_url,
                "STREAM_RPS": "20",
                "NONSTREAM_RPS": "0",
                "MAX_TOKENS": "10",
                "PROMPTS": "short",
                "SMOKE": "false",
                "SERVER_METRICS_INTERVAL": "0.5",
                "HTML_REPORT": str(html),
            },
            tmp_path,
        )
    assert run.returncode == 0, run.output[-3000:]
    assert run.summary is not None
    server = run.summary["server_series"]
    assert server["urls"] == [url] and server["errors"] == 0 and server["scrapes"] >= 6
    assert server["presets"] == ["vllm"]
    series = server["series"]
    running = series["vllm:num_requests_running"]
    assert running["kind"] == "gauge" and len(running["points"]) >= 6
    assert max(p[1] for p in running["points"]) >= 1  # calls were in flight while it was scraped
    tokens = series["vllm:generation_tokens_total"]
    assert tokens["kind"] == "counter" and max(p[1] for p in tokens["points"]) > 50  # tokens/s while running
    ttft = server["ttft"]
    client, srv = ttft["client"], ttft["server"]
    assert srv["metric"] == "vllm:time_to_first_token_seconds"
    # the server counted every first token the client read (and maybe a few of calls cut at the stop)
    assert client["count"] <= srv["count"] <= client["count"] + 10, ttft
    # both near the mock's 150 ms; the server's p50 is interpolated in its (100, 250] ms bucket
    assert 150 <= client["p50_ms"] <= 170, ttft
    assert 100 <= srv["p50_ms"] <= 250, ttft
    over_time = series["vllm:time_to_first_token_seconds"]["points"]
    assert over_time and all(100 <= p[1] <= 250 for p in over_time if p[3] >= 3)
    # the console shows both TTFTs, the report a section with the table and the charts
    assert "TTFT server (vllm:time_to_first_token_seconds)" in run.output
    page = html.read_text()
    assert 'id="server-ttft"' in page and 'id="server-vllm-num-requests-running"' in page
    assert 'id="server-vllm-time-to-first-token-seconds"' in page and "client TTFT p50" in page


def test_a_bad_url_stops_the_run_at_start_up_naming_the_flag(tmp_path: Path) -> None:
    run = run_locust(
        "chat.py",
        ["-u", "1", "-t", "1s", "--server-metrics", "ftp://example/metrics"],
        {"BASE": "http://127.0.0.1:9", "SMOKE": "false"},
        tmp_path,
    )
    assert run.returncode == 2
    assert "--server-metrics/SERVER_METRICS: expected an http(s) URL" in run.output
