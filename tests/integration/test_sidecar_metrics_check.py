"""A ``/metrics`` answer that is not Prometheus text is a failed request whose reason names the offending line.

The target is a tiny HTTP server of this test on 127.0.0.1: ``/health`` answers 200, ``/metrics`` a body whose
third line is broken.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from tests.support import run_locust

pytestmark = pytest.mark.slow

BROKEN = b"# TYPE app_up gauge\napp_up 1\nthis line is not a metric\napp_queue_length 0\n"
REASON = "invalid Prometheus text at line 3: 'this line is not a metric'"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    counts: ClassVar[dict[str, int]] = {}

    def do_GET(self) -> None:
        self.counts[self.path] = self.counts.get(self.path, 0) + 1
        body, ctype = (
            (BROKEN, "text/plain; version=0.0.4")
            if self.path == "/metrics"
            else (b'{"status": "ok"}', "application/json")
        )
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def broken_server() -> Iterator[tuple[str, dict[str, int]]]:
    counts: dict[str, int] = {}
    handler = type("Handler", (_Handler,), {"counts": counts})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", counts
    finally:
        server.shutdown()
        server.server_close()


def test_broken_metrics_line_is_a_failed_request_naming_the_line(
    tmp_path: Path, broken_server: tuple[str, dict[str, int]]
) -> None:
    url, counts = broken_server
    run = run_locust(
        "sidecar.py",
        ["-u", "2", "-r", "2", "-t", "2s", "--only-summary", "SidecarReadUser"],
        {"OSIRIS_URL": url, "THINK_TIME": "0.1"},
        tmp_path,
        timeout=25,
    )
    assert run.summary is not None, run.output[-3000:]
    failed, total = run.rate("http_req_failed", name="/metrics")
    assert total > 5 and failed == total
    assert run.rate("http_req_failed", name="/health") == (0, total)
    # Locust's error report carries the reason; the /metrics success-rate SLO fails the run
    assert REASON in run.output
    assert run.returncode == 99
    # the sampler's own scrapes failed the same way, and the summary says so instead of inventing numbers
    server = run.summary["server_metrics"]
    assert server["ok_scrapes"] == 0 and server["scrape_errors"] == server["scrapes"] >= 2
    assert server["errors"][0].startswith(REASON)
    assert counts["/metrics"] == total + server["scrapes"]
