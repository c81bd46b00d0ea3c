"""Every fault kind of the mock, on request (X-Mock-Fault) and from seeded config rules, and its counter."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from mock_llm.config import from_mapping, to_dict
from mock_llm.testing import MockProcess, StreamResult, stream_request

BASE = {"ttft_ms": 5, "itl_ms": 2}
CHAT = "/v1/chat/completions"


def chat(stream: bool = True, max_tokens: int = 8) -> dict[str, Any]:
    return {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": stream, "max_tokens": max_tokens}


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


def faulty(mock: MockProcess, fault: str, body: dict[str, Any], path: str = CHAT) -> StreamResult:
    return stream_request(mock.base_url, path, body, {"X-Mock-Fault": fault})


def contents(res: StreamResult) -> list[str]:
    out = []
    for _, payload in res.data():
        if payload.startswith(b"{") and b'"content":"' in payload and b'"role"' not in payload:
            out.append(json.loads(payload)["choices"][0]["delta"]["content"])
    return out


def assert_counted(mock: MockProcess, kind: str, n: int = 1) -> None:
    assert mock.stats()["faults"] == {kind: n}


@pytest.mark.parametrize("path", [CHAT, "/generate", "/health", "/v1/models"])
def test_error_answers_the_status_with_a_json_error_on_any_path(mock: MockProcess, path: str) -> None:
    body = None if path in ("/health", "/v1/models") else {**chat(stream=False), "prompt": "x"}
    method = "GET" if body is None else "POST"
    res = stream_request(mock.base_url, path, body, {"X-Mock-Fault": "error:503"}, method=method)
    assert res.status == 503 and res.json()["error"]["code"] == 503
    assert stream_request(mock.base_url, path, body, {"X-Mock-Fault": "error"}, method=method).status == 500
    assert_counted(mock, "error", 2)


def test_disconnect_closes_after_n_tokens_without_done(mock: MockProcess) -> None:
    res = faulty(mock, "disconnect:3", chat())
    assert res.status == 200 and not res.complete
    assert len(contents(res)) == 3 and b"[DONE]" not in res.body
    with pytest.raises(ConnectionError):  # non-stream: the connection closes without an answer
        faulty(mock, "disconnect", chat(stream=False))
    assert_counted(mock, "disconnect", 2)
    stats = mock.stats()
    assert stats["active"] == 0 and stats["completed_streams"] == 0 and stats["tokens_served"] == 3


def test_malformed_inserts_a_broken_line_then_continues(mock: MockProcess) -> None:
    res = faulty(mock, "malformed:2", chat())
    payloads = [p for _, p in res.data()]
    assert payloads[3] == b"{not json"  # role, 2 tokens, then the broken line
    assert res.complete and payloads[-1] == b"[DONE]" and len(contents(res)) == 8
    assert_counted(mock, "malformed")


def test_sse_error_sends_an_error_event_then_ends(mock: MockProcess) -> None:
    res = faulty(mock, "sse_error:1", chat())
    payloads = [p for _, p in res.data()]
    assert json.loads(payloads[-1])["error"]["code"] == "mock_fault"
    assert res.complete and b"[DONE]" not in res.body and len(contents(res)) == 1
    body = faulty(mock, "sse_error", chat(stream=False)).json()  # non-stream: 200 with an error body
    assert body["error"]["type"] == "server_error"


def test_stall_stops_mid_stream_then_closes(mock: MockProcess) -> None:
    res = faulty(mock, "stall:0.4", chat(max_tokens=10))
    assert not res.complete and len(contents(res)) == 5
    last_token = max(t for t, ln in res.lines if b'"content":"' in ln)
    assert res.lines[-1][0] - last_token < 0.1  # nothing after the 5th token...
    stats = mock.stats()
    assert stats["tokens_served"] == 5 and stats["completed_streams"] == 0


def test_stall_longer_than_the_client_timeout(mock: MockProcess) -> None:
    res = stream_request(mock.base_url, CHAT, chat(), {"X-Mock-Fault": "stall:30"}, timeout=0.5)
    assert res.timed_out and not res.complete and len(contents(res)) == 4


def test_slow_headers_delay_the_answer(mock: MockProcess) -> None:
    res = faulty(mock, "slow_headers:0.3", chat())
    assert res.t_headers >= 0.3 and res.complete and len(contents(res)) == 8


def test_invalid_json_body_and_event(mock: MockProcess) -> None:
    res = faulty(mock, "invalid_json", chat(stream=False))
    assert res.status == 200 and res.headers["content-type"] == "application/json"
    with pytest.raises(ValueError):
        json.loads(res.body)
    res = faulty(mock, "invalid_json", chat())
    assert [p for _, p in res.data()][1] == b"{not json"
    with pytest.raises(ValueError):
        faulty(mock, "invalid_json", {"prompt": "x"}, "/generate").json()
    assert_counted(mock, "invalid_json", 3)


def test_wrong_content_type_answers_html(mock: MockProcess) -> None:
    for stream in (True, False):
        res = faulty(mock, "wrong_content_type", chat(stream=stream))
        assert res.status == 200 and res.headers["content-type"].startswith("text/html")
        assert res.body.startswith(b"<!DOCTYPE html>")


def test_oversized_bodies(mock: MockProcess) -> None:
    res = faulty(mock, "oversized:2000000", chat(stream=False))
    assert len(res.body) > 2_000_000 and res.json()["choices"]
    res = faulty(mock, "oversized:1000000", chat())
    assert res.complete and max(len(c) for c in contents(res)) == 1_000_000


def test_bad_fault_header_is_a_400(mock: MockProcess) -> None:
    res = faulty(mock, "explode", chat())
    assert res.status == 400 and "X-Mock-Fault" in res.json()["error"]["message"]
    assert stream_request(mock.base_url, "/health", None, {"X-Mock-Fault": "stall"}, method="GET").status == 200


def test_config_rules_inject_at_their_rate_and_are_counted(mock: MockProcess) -> None:
    mock.configure({"seed": 7, "faults": [{"path": "/generate", "kind": "error", "rate": 0.5, "arg": 502},
                                          {"path": "*", "kind": "error", "rate": 1.0, "arg": 418}]})  # fmt: skip
    statuses = [stream_request(mock.base_url, "/generate", {"prompt": "x"}).status for _ in range(40)]
    assert set(statuses) == {502, 418} and 10 <= statuses.count(502) <= 30
    assert stream_request(mock.base_url, "/health", None, method="GET").status == 418
    stats = mock.stats()
    assert stats["faults"] == {"error": 41}
    assert stats["statuses"]["POST /generate"] == {"502": statuses.count(502), "418": statuses.count(418)}
    mock.configure({"faults": [{"path": CHAT, "kind": "disconnect", "rate": 1.0, "arg": 1}]})
    res = stream_request(mock.base_url, CHAT, chat())
    assert not res.complete and len(contents(res)) == 1
