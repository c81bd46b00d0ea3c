"""``llm_users.client.session``: the session made cheaper per request behaves as Locust's own.

The cookie jar still takes a ``Set-Cookie`` (a load balancer's sticky cookie) and sends it back on the next
requests, LLM calls or not; a request's URL parts are the same as geventhttpclient parses them.
"""

from __future__ import annotations

from http.cookiejar import Cookie, CookieJar
from typing import Any

import pytest
from gevent.server import StreamServer
from geventhttpclient.header import Headers
from locust import events
from locust.contrib.fasthttp import FastHttpSession, FastRequest

from llm_users.client.call import llm_call
from llm_users.client.session import FrozenURL, LeanCookieJar, lean_session
from tests.support import http_requests

_SSE = (
    b'data: {"choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}]}\n\n'
    b'data: {"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":1}}\n\n'
    b"data: [DONE]\n\n"
)


class _Server:
    """HTTP/1.1 keep-alive server on 127.0.0.1 (a free port): answers a stream (POST) or ``ok`` (GET), sets
    ``Set-Cookie: lb=node7`` on the first answer only, and keeps every request's head."""

    def __init__(self) -> None:
        self.heads: list[str] = []
        self.server = StreamServer(("127.0.0.1", 0), self._handle)
        self.server.start()
        self.url = f"http://127.0.0.1:{self.server.server_port}"

    def _handle(self, sock: Any, _addr: Any) -> None:
        for head, _body in http_requests(sock):
            text = head.decode("latin-1")
            cookie = b"Set-Cookie: lb=node7; Path=/\r\n" if not self.heads else b""
            self.heads.append(text)
            if text.startswith("POST"):
                body, ctype = _SSE, b"text/event-stream"
            else:
                body, ctype = b"ok", b"text/plain"
            sock.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Type: " + ctype + b"\r\nContent-Length: " + str(len(body)).encode()
                + b"\r\n" + cookie + b"\r\n" + body
            )  # fmt: skip

    def close(self) -> None:
        self.server.stop()


@pytest.fixture
def server() -> Any:
    srv = _Server()
    yield srv
    srv.close()


def _cookie_lines(head: str) -> list[str]:
    return [line for line in head.split("\r\n") if line.lower().startswith("cookie:")]


def test_a_sticky_cookie_set_by_an_answer_is_sent_back_on_the_next_requests(server: _Server) -> None:
    session = FastHttpSession(server.url, events.request, user=None)
    jar = session.cookiejar
    payload = {"model": "m", "messages": [], "stream": True}
    recs = [llm_call(session, "/v1/chat/completions", payload, stream=True, scenario="s") for _ in range(2)]
    with session.get("/other", catch_response=True) as resp:
        assert resp.status_code == 200
    assert [r.ok for r in recs] == [True, True], [r.error for r in recs]
    assert session.cookiejar is jar and type(jar) is LeanCookieJar  # the same jar, its class changed
    assert session.client.cookiejar is jar
    assert [c.name + "=" + str(c.value) for c in jar] == ["lb=node7"]
    assert len(server.heads) == 3
    assert _cookie_lines(server.heads[0]) == []  # nothing to send before the answer set it
    assert _cookie_lines(server.heads[1]) == ["Cookie: lb=node7"]
    assert _cookie_lines(server.heads[2]) == ["Cookie: lb=node7"]


def test_cookies_put_in_the_jar_before_the_first_call_are_kept_and_sent(server: _Server) -> None:
    session = FastHttpSession(server.url, events.request, user=None)
    session.cookiejar.set_cookie(
        Cookie(0, "pre", "1", None, False, "127.0.0.1", False, False, "/", True, False, None, False, None, None, {})
    )
    rec = llm_call(session, "/v1/chat/completions", {"stream": True}, stream=True, scenario="s")
    assert rec.ok, rec.error
    assert _cookie_lines(server.heads[0]) == ["Cookie: pre=1"]
    assert sorted(c.name for c in session.cookiejar) == ["lb", "pre"]


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8123/v1/chat/completions",
        "https://api.example.com/v1/responses?api-version=2024-10-21",
        "http://h/a%20b/c d?x=1&y=%7e#frag",
        "http://[::1]:9000/p;q?r=s",
        "HTTP://Example.COM/",
        "http://example.com",
    ],
)
def test_a_cached_url_request_reads_the_same_parts_as_geventhttpclients(url: str) -> None:
    session = FastHttpSession("http://127.0.0.1:1", events.request, user=None)
    lean_session(session)
    cls = session.client.request_type
    assert cls is not FastRequest and issubclass(cls, FastRequest)
    for _ in range(2):  # parsed, then from the cache
        ours, stock = cls(url, method="POST"), FastRequest(url, method="POST")
        assert isinstance(ours.url_split, FrozenURL)
        for key in ("url", "type", "host", "selector", "original_host", "original_origin", "origin_req_host"):
            assert getattr(ours, key) == getattr(stock, key), key
        for key in ("scheme", "netloc", "host", "hostname", "port", "path", "query", "request_uri", "quoted_uri"):
            assert getattr(ours.url_split, key) == getattr(stock.url_split, key), key
        assert ours.url_split == stock.url_split and str(ours.url_split) == str(stock.url_split)
    with_params = cls(url, params={"a": "b"})  # params: parsed as before, not cached
    assert not isinstance(with_params.url_split, FrozenURL)
    assert with_params.url_split == FastRequest(url, params={"a": "b"}).url_split


def test_lean_session_runs_once_and_leaves_a_custom_jar_alone() -> None:
    class MyJar(CookieJar):
        pass

    session = FastHttpSession("http://127.0.0.1:1", events.request, user=None)
    session.cookiejar = session.client.cookiejar = custom = MyJar()
    lean_session(session)
    cls = session.client.request_type
    lean_session(session)
    assert session.client.request_type is cls  # not wrapped twice
    assert type(custom) is MyJar and getattr(session, "llm_lean", None) is True


def test_the_lean_jar_still_takes_cookies_when_empty_and_told_to() -> None:
    jar = CookieJar()
    jar.__class__ = LeanCookieJar
    req = FastRequest("http://127.0.0.1/x", headers=Headers())

    class _Resp:
        def __init__(self, headers: dict[str, str]) -> None:
            self._h = headers

        def info(self) -> Headers:
            return Headers(self._h)

    jar.extract_cookies(_Resp({"Content-Type": "text/plain"}), req)  # type: ignore[arg-type]
    assert list(jar) == []
    jar.extract_cookies(_Resp({"set-cookie": "a=1"}), req)  # type: ignore[arg-type] # header names are case-insensitive
    assert [c.name for c in jar] == ["a"]
    jar.add_cookie_header(req)
    assert req.headers.get("Cookie") == "a=1"
