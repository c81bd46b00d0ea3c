"""The mock as the sidecar (/generate, /propose_trade_adjustments/, /metrics) and its control surface."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from mock_llm.config import from_mapping, to_dict
from mock_llm.testing import MockProcess

BASE = {"ttft_ms": 20, "itl_ms": 5, "sidecar": {"metric_prefix": "osiris"}, "output_tokens": 6}


@pytest.fixture(scope="module")
def server() -> Iterator[MockProcess]:
    with MockProcess(BASE) as mock:
        yield mock


@pytest.fixture
def mock(server: MockProcess) -> MockProcess:
    settings = to_dict(from_mapping(BASE))
    del settings["host"], settings["port"]
    server.configure(settings)
    server.reset()
    return server


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for fam in text_string_to_metric_families(text)
        for s in fam.samples
    }


def test_generate_answers_after_the_generation_time(mock: MockProcess) -> None:
    t0 = time.perf_counter()
    body = mock.post_json("/generate", {"prompt": "Summarise the market.", "max_tokens": 9})
    elapsed = time.perf_counter() - t0
    assert body["tokens"] == 9 and len(body["text"].split()) == 9 and body["model"] == "mock-llm"
    assert 0.020 + 8 * 0.005 <= elapsed < 0.2
    assert mock.post_json("/generate", {"prompt": "x"})["tokens"] == 6  # the configured default
    for bad in ({"max_tokens": 3}, {"prompt": 5}, {"prompt": "x", "max_tokens": -1}):
        status, _, err = mock.request("POST", "/generate", bad)
        assert status == 400 and json.loads(err)["error"]["type"] == "invalid_request_error"


def test_propose_trade_adjustments(mock: MockProcess) -> None:
    body = mock.post_json("/propose_trade_adjustments/", {"prompt": "Rebalance my portfolio", "risk": "low"})
    assert 1 <= len(body["adjustments"]) <= 3 and isinstance(body["rationale"], str)
    for adj in body["adjustments"]:
        assert set(adj) == {"symbol", "action", "quantity"}
        assert adj["action"] in ("buy", "sell", "hold") and adj["quantity"] > 0
    assert mock.request("POST", "/propose_trade_adjustments")[0] == 404  # the trailing slash is part of the path


def test_metrics_parse_and_count_the_requests_made(mock: MockProcess) -> None:
    for _ in range(3):
        mock.post_json("/generate", {"prompt": "x", "max_tokens": 4})
    for _ in range(5):
        mock.get_json("/health")
    mock.request("POST", "/generate", {"prompt": "x"}, {"X-Mock-Fault": "error:503"})
    mock.stats()  # control endpoints are not counted
    status, headers, text = mock.request("GET", "/metrics")
    assert status == 200 and headers["content-type"].startswith("text/plain; version=0.0.4")
    got = samples(text.decode())
    req = "osiris_requests_total"
    assert got[(req, (("method", "POST"), ("path", "/generate"), ("status", "200")))] == 3
    assert got[(req, (("method", "POST"), ("path", "/generate"), ("status", "503")))] == 1
    assert got[(req, (("method", "GET"), ("path", "/health"), ("status", "200")))] == 5
    assert got[("osiris_requests_received_total", (("method", "GET"), ("path", "/metrics")))] == 1
    assert got[("osiris_tokens_generated_total", ())] == 12
    assert got[("osiris_faults_injected_total", (("kind", "error"),))] == 1
    assert got[("osiris_active_requests", ())] == 0 and got[("osiris_queue_length", ())] == 0
    assert not any("mock" in name for name, _ in got)  # no /mock/... series


def test_metrics_gauges_show_active_and_queued_generations(mock: MockProcess) -> None:
    mock.configure({"max_concurrency": 2, "ttft_ms": 400})
    socks = []
    for _ in range(3):
        s = socket.create_connection(("127.0.0.1", mock.port))
        s.sendall(b'POST /generate HTTP/1.1\r\nHost: x\r\nContent-Length: 15\r\n\r\n{"prompt": "x"}')
        socks.append(s)
    time.sleep(0.1)
    got = samples(mock.request("GET", "/metrics")[2].decode())
    assert got[("osiris_active_requests", ())] == 2 and got[("osiris_queue_length", ())] == 1
    for s in socks:
        s.close()


def test_stats_reset_and_runtime_config(mock: MockProcess) -> None:
    mock.get_json("/health")
    for _ in range(3):
        mock.stats()
    stats = mock.stats()
    assert stats["requests"] == {"GET /health": 1} and stats["statuses"] == {"GET /health": {"200": 1}}
    mock.reset()
    stats = mock.stats()
    assert stats["requests"] == {} and stats["tokens_served"] == 0
    with pytest.raises(ValueError, match=r"^POST /mock/config: itl_ms: expected a number >= 0, got -1$"):
        mock.configure({"itl_ms": -1})
    with pytest.raises(ValueError, match="port: cannot be changed at run time"):
        mock.configure({"port": 1})
    assert mock.configure({"itl_ms": 1})["itl_ms"] == 1.0
    assert mock.get_json("/mock/config")["itl_ms"] == 1.0


def test_a_client_leaving_mid_stream_is_counted_and_frees_its_slot(mock: MockProcess) -> None:
    mock.configure({"max_concurrency": 1, "ttft_ms": 0, "itl_ms": 50})
    body = b'{"messages":[{"role":"user","content":"x"}],"stream":true,"max_tokens":100}'
    with socket.create_connection(("127.0.0.1", mock.port)) as s:
        s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%b" % (len(body), body))
        data = b""
        while data.count(b'"content":"') < 3:
            data += s.recv(65536)
    deadline = time.monotonic() + 2
    while (stats := mock.stats())["active"] and time.monotonic() < deadline:
        time.sleep(0.01)
    assert stats["active"] == 0 and stats["client_disconnects"] == 1 and stats["completed_streams"] == 0
    assert 2 <= stats["tokens_served"] <= 4
    assert stats["per_key"]["anonymous"]["completion_tokens"] == stats["tokens_served"]  # booked when cut short
    assert mock.post_json("/generate", {"prompt": "x", "max_tokens": 1})["tokens"] == 1  # slot is free
    assert "Traceback" not in mock.output


def test_sigterm_lets_open_streams_finish_within_the_grace_time() -> None:
    with MockProcess({"ttft_ms": 0, "itl_ms": 20, "shutdown_grace_s": 0.5}) as mock:
        body = {"messages": [{"role": "user", "content": "x"}], "stream": True}
        short = socket.create_connection(("127.0.0.1", mock.port))
        long = socket.create_connection(("127.0.0.1", mock.port))
        for sock, n in ((short, 10), (long, 100)):
            payload = json.dumps({**body, "max_tokens": n}).encode()
            sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%b"
                         % (len(payload), payload))  # fmt: skip
        time.sleep(0.05)
        assert mock.proc is not None
        mock.proc.terminate()
        assert mock.proc.wait(5) == 0
        output = mock.output

    def read_all(sock: socket.socket) -> bytes:
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
        sock.close()
        return data

    assert read_all(short).endswith(b"data: [DONE]\n\n\r\n0\r\n\r\n")  # finished within the grace time
    assert b"[DONE]" not in read_all(long)  # cut when the grace time ran out
    assert "Traceback" not in output


_IN_THREAD_CHECK = """
import socket
from mock_llm.testing import serve_in_thread, stream_request

with serve_in_thread({"ttft_ms": 1, "itl_ms": 0}) as mock:
    assert mock.base_url == f"http://127.0.0.1:{mock.port}"
    with socket.create_connection(("127.0.0.1", mock.port)) as client:
        client.sendall(b"GET /health HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n")
        assert client.recv(4096).startswith(b"HTTP/1.1 200 OK")
        (conn,) = mock.connections
        sock = conn._transport.get_extra_info("socket")
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    body = {"messages": [{"role": "user", "content": "x"}], "stream": True, "max_tokens": 3}
    res = stream_request(mock.base_url, "/v1/chat/completions", body)
    assert res.complete and mock.stats()["tokens_served"] == 3
try:
    socket.create_connection(("127.0.0.1", mock.port), timeout=1)
except OSError:
    print("stopped")
"""


def test_serve_in_thread_and_tcp_nodelay_on_accepted_sockets() -> None:
    # in a fresh interpreter: a test process that imported Locust has gevent's patched threads, where the
    # in-process server cannot run (serve_in_thread says so instead of hanging)
    proc = subprocess.run([sys.executable, "-c", _IN_THREAD_CHECK], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "stopped"
