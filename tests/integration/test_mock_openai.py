"""The mock's OpenAI-compatible API over real sockets: stream format, headers first, queue, overload."""

from __future__ import annotations

import itertools
import json
import socket
import statistics
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from mock_llm.config import from_mapping, to_dict
from mock_llm.testing import MockProcess, StreamResult, stream_request

BASE = {"ttft_ms": 5, "itl_ms": 1, "models": ["mock-a", "mock-b"], "version": "v-test"}
CHAT = "/v1/chat/completions"


def chat(stream: bool = True, max_tokens: int | None = 5, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"model": "mock-a", "messages": [{"role": "user", "content": "Hello, world!"}]}
    body["stream"] = stream
    if max_tokens is not None:
        body["max_tokens"] = max_tokens
    body.update(extra)
    return body


@pytest.fixture(scope="module")
def server() -> Iterator[MockProcess]:
    with MockProcess(BASE) as mock:
        yield mock


@pytest.fixture
def mock(server: MockProcess) -> MockProcess:
    """The module's mock with its base settings restored and zeroed counters."""
    settings = to_dict(from_mapping(BASE))
    del settings["host"], settings["port"]
    server.configure(settings)
    server.reset()
    return server


def test_stream_format_role_content_finish_usage_done(mock: MockProcess) -> None:
    res = stream_request(mock.base_url, CHAT, chat(max_tokens=6, stream_options={"include_usage": True}))
    assert res.status == 200 and res.complete
    assert res.headers["content-type"] == "text/event-stream"
    assert res.headers["transfer-encoding"] == "chunked" and "content-length" not in res.headers
    events = [e for _, e in res.events()]
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    ids = {(c["id"], c["object"], c["created"], c["model"]) for c in chunks}
    assert len(ids) == 1 and next(iter(ids))[1:2] == ("chat.completion.chunk",) and next(iter(ids))[3] == "mock-a"
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    tokens = [c["choices"][0]["delta"]["content"] for c in chunks[1:7]]
    assert len(tokens) == 6 and all(t.endswith(" ") and t.strip().isalpha() for t in tokens)
    assert chunks[7]["choices"][0] == {"index": 0, "delta": {}, "finish_reason": "length"}
    assert chunks[8]["choices"] == []
    assert chunks[8]["usage"] == {"prompt_tokens": 4, "completion_tokens": 6, "total_tokens": 10}
    assert len(chunks) == 9
    # SSE framing: every event is one "data: ..." line followed by a blank line
    assert [ln for _, ln in res.lines] == [x for e in res.data() for x in (b"data: " + e[1], b"")]


def test_no_usage_chunk_unless_asked_and_stop_without_max_tokens(mock: MockProcess) -> None:
    mock.configure({"output_tokens": 3})
    events = [e for _, e in stream_request(mock.base_url, CHAT, chat(max_tokens=None)).events()]
    assert events[-1] == "[DONE]"
    assert all(e["choices"] for e in events[:-1])  # no usage chunk
    assert events[-2]["choices"][0]["finish_reason"] == "stop"
    assert len(events) == 1 + 3 + 1 + 1
    mock.configure({"usage_chunk": False})  # a server that ignores include_usage
    events = [e for _, e in stream_request(mock.base_url, CHAT, chat(stream_options={"include_usage": True})).events()]
    assert all(e["choices"] for e in events[:-1])


def test_headers_and_role_chunk_come_before_the_first_token(mock: MockProcess) -> None:
    mock.configure({"ttft_ms": 500, "itl_ms": 10})
    res = stream_request(mock.base_url, CHAT, chat(max_tokens=2))
    first_token = res.tokens()[0][0]
    assert res.t_headers < 0.1, "headers must not wait for the first token"
    assert res.lines[0][0] < 0.1, "the role chunk is sent with the headers"
    assert 0.495 <= first_token < 0.6


def test_non_stream_answer_after_the_generation_with_content_length(mock: MockProcess) -> None:
    mock.configure({"ttft_ms": 50, "itl_ms": 10})
    t0 = time.perf_counter()
    res = stream_request(mock.base_url, CHAT, chat(stream=False, max_tokens=8))
    elapsed = time.perf_counter() - t0
    assert res.status == 200 and res.complete
    assert int(res.headers["content-length"]) == len(res.body)
    body = res.json()
    assert body["object"] == "chat.completion" and body["model"] == "mock-a"
    assert len(body["choices"][0]["message"]["content"].split()) == 8
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["usage"] == {"prompt_tokens": 4, "completion_tokens": 8, "total_tokens": 12}
    assert 0.050 + 7 * 0.010 <= elapsed < 0.25


def test_models_version_and_http_errors(mock: MockProcess) -> None:
    models = mock.get_json("/v1/models")
    assert [m["id"] for m in models["data"]] == ["mock-a", "mock-b"] and models["object"] == "list"
    assert mock.get_json("/v1/version")["version"] == "v-test"
    status, _, body = mock.request("GET", "/v2/nothing")
    assert status == 404 and json.loads(body)["error"]["type"] == "not_found"
    status, headers, body = mock.request("DELETE", "/v1/models")
    assert status == 405 and headers["allow"] == "GET"
    for bad in (b"{not json", b"[1, 2]", b""):
        status, _, body = mock.request("POST", CHAT, bad)
        assert status == 400 and json.loads(body)["error"]["code"] == "invalid_json", bad
    status, _, body = mock.request("POST", CHAT, {"model": "m", "messages": "hi"})
    assert status == 400 and "messages" in json.loads(body)["error"]["message"]
    status, _, _ = mock.request("POST", CHAT, chat(max_tokens=0))
    assert status == 400
    mock.configure({"reject_unknown_models": True})
    status, _, body = mock.request("POST", CHAT, {**chat(stream=False), "model": "gpt-9"})
    assert status == 404 and json.loads(body)["error"]["code"] == "model_not_found"
    stats = mock.stats()
    assert stats["statuses"][f"POST {CHAT}"] == {"400": 5, "404": 1}
    assert stats["requests"]["GET /v2/nothing"] == 1


def test_keep_alive_serves_several_requests_on_one_connection(mock: MockProcess) -> None:
    body = json.dumps(chat(max_tokens=2)).encode()
    req = (f"POST {CHAT} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
           f"Content-Length: {len(body)}\r\n\r\n").encode() + body  # fmt: skip
    health = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
    with socket.create_connection(("127.0.0.1", mock.port), timeout=5) as sock:
        sock.sendall(req + health)  # pipelined: answered in order
        data = b""
        while data.count(b"HTTP/1.1 200") < 2 or not data.endswith(b'{"status":"ok"}'):
            chunk = sock.recv(65536)
            assert chunk, data
            data += chunk
        assert data.index(b"data: [DONE]") < data.index(b'{"status":"ok"}')
        sock.sendall(health)
        assert sock.recv(65536).startswith(b"HTTP/1.1 200 OK")


def test_queue_reports_x_queue_time_when_a_request_waited(mock: MockProcess) -> None:
    mock.configure({"max_concurrency": 1, "ttft_ms": 100, "itl_ms": 10})
    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(stream_request, mock.base_url, CHAT, chat(max_tokens=5))
        time.sleep(0.05)
        second = pool.submit(stream_request, mock.base_url, CHAT, chat(max_tokens=5))
        results = [first.result(), second.result()]
    # one of the two got the slot, the other waited for it (on a busy machine the second thread may even be the
    # first to arrive, so the test does not assume which)
    waiting = [r for r in results if "x-queue-time" in r.headers]
    assert len(waiting) == 1, [r.headers for r in results]
    b = waiting[0]
    waited = float(b.headers["x-queue-time"])
    assert 0 < waited <= 200  # the one served first needs 140 ms (100 ms TTFT and 4 tokens), plus scheduling
    assert b.t_headers * 1000 >= waited  # headers wait for the slot
    # then the full TTFT: the first token cannot come before the wait plus 100 ms (the client reads late, never
    # early; its late reading of the headers would shorten a headers-to-token difference, so that is not used)
    assert b.tokens()[0][0] * 1000 >= waited + 99
    assert mock.stats()["max_active"] == 1


@pytest.mark.timing
def test_overload_slows_tokens_down_and_recovers_when_load_drops(mock: MockProcess) -> None:
    mock.configure({"capacity": 1, "overload_exponent": 1.0, "ttft_ms": 0, "itl_ms": 20})

    stamps = {"X-Mock-Timestamps": "1"}

    def gaps(res: StreamResult) -> float:
        """Median gap between content tokens as the mock sent them (its own send stamps, so that a slow
        reader in this test on a busy machine does not move the figure)."""
        chunks = [e for _, e in res.events()[:-1]]
        times = [e["mock_sent_ns"] / 1e9 for e in chunks if e["choices"] and e["choices"][0]["delta"].get("content")]
        assert len(times) == 6, res.events()
        return statistics.median(b - a for a, b in itertools.pairwise(times))

    with ThreadPoolExecutor(3) as pool:
        loaded = list(pool.map(lambda _: stream_request(mock.base_url, CHAT, chat(max_tokens=6), stamps), range(3)))
    alone = stream_request(mock.base_url, CHAT, chat(max_tokens=6), stamps)
    assert all(0.050 <= gaps(r) <= 0.070 for r in loaded), [gaps(r) for r in loaded]  # 3 active: x3
    assert 0.018 <= gaps(alone) <= 0.025


def test_reasoning_tokens_come_first_and_count_in_usage(mock: MockProcess) -> None:
    mock.configure({"reasoning_tokens": 3})
    res = stream_request(mock.base_url, CHAT, chat(max_tokens=2, stream_options={"include_usage": True}))
    deltas = [e["choices"][0]["delta"] for _, e in res.events()[1:-3]]
    assert [list(d) for d in deltas] == [["reasoning_content"]] * 3 + [["content"]] * 2
    usage = res.events()[-2][1]["usage"]
    assert usage["completion_tokens"] == 5 and usage["completion_tokens_details"] == {"reasoning_tokens": 3}
    body = stream_request(mock.base_url, CHAT, chat(stream=False, max_tokens=2)).json()
    assert len(body["choices"][0]["message"]["reasoning_content"].split()) == 3


def test_server_timestamps_on_request_use_the_perf_counter_clock(mock: MockProcess) -> None:
    before = time.perf_counter_ns()
    res = stream_request(mock.base_url, CHAT, chat(max_tokens=3), {"X-Mock-Timestamps": "1"})
    after = time.perf_counter_ns()
    stamps = [e["mock_sent_ns"] for _, e in res.events()[:-1]]
    assert len(stamps) == 5 and stamps == sorted(stamps)
    assert all(before < s < after for s in stamps)
    assert all("mock_sent_ns" not in e for _, e in stream_request(mock.base_url, CHAT, chat()).events()[:-1])


def test_same_seed_same_words_another_seed_other_words(mock: MockProcess) -> None:
    def words(seed: int) -> str:
        mock.configure({"seed": seed})
        mock.reset()  # the request index starts over
        msg = stream_request(mock.base_url, CHAT, chat(stream=False, max_tokens=12)).json()["choices"][0]["message"]
        return str(msg["content"])

    first = words(1)
    assert len(first.split()) == 12
    assert words(1) == first  # the same seed gives the same words...
    assert words(2) != first  # ...and another seed other words (a mock that ignores the seed fails here)
