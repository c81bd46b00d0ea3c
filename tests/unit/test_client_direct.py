"""``llm_users.client.direct``: an LLM call sent through the session's own client is the same call as Locust's path.

Each case makes the same ``llm_call`` twice against a raw HTTP server on 127.0.0.1 (a free port) that keeps
the exact bytes of every request: once through Locust's ``FastHttpSession.request`` (the session made lean as
``llm_call`` makes it, without the direct path) and once through ``DirectPath``. The bytes on the wire (request
line, headers in their order and case, body) and the request event's keyword arguments must be the same, on
success, an HTTP error status, connection refused, reset, closed, timeout and a cut stream, streamed and not.
The connection pool's liveness check is kept (a POST on a socket the server closed while idle goes on a new
connection) and gives the same answers as geventhttpclient's.
"""

from __future__ import annotations

import select
import socket
import struct
from typing import Any

import gevent
import gevent.select
import pytest
from gevent.server import StreamServer
from locust.contrib.fasthttp import FastHttpSession, ResponseContextManager
from locust.event import EventHook

from llm_users.client import direct as direct_mod
from llm_users.client.call import Timeouts, llm_call
from llm_users.client.direct import DirectPath, direct_path
from llm_users.client.session import lean_session
from tests.support import http_requests

PATH = "/v1/chat/completions"
_SSE = (
    b'data: {"choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}]}\n\n'
    b'data: {"choices":[{"index":0,"delta":{"content":" there"},"finish_reason":"stop"}]}\n\n'
    b'data: {"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2}}\n\n'
    b"data: [DONE]\n\n"
)
_JSON = (
    b'{"choices":[{"index":0,"message":{"role":"assistant","content":"Hi there"},"finish_reason":"stop"}],'
    b'"usage":{"prompt_tokens":3,"completion_tokens":2}}'
)


def _chunked(body: bytes) -> bytes:
    return b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)


class _Server:
    """HTTP/1.1 keep-alive server on 127.0.0.1 that keeps each request's bytes and answers the next of
    ``modes`` (the last one repeats): ``stream``, ``json``, ``error`` (500 with a JSON error), ``binary500`` (500
    with a body that is not UTF-8), ``redirect``
    (302), ``reset`` (RST), ``close`` (closed without an answer), ``silent`` (no answer for 2 s), ``cut``
    (headers and one event of a chunked stream, then closed)."""

    def __init__(self, modes: list[str]) -> None:
        self.modes = modes
        self.requests: list[bytes] = []
        self.conns: list[Any] = []
        self.server = StreamServer(("127.0.0.1", 0), self._handle)
        self.server.start()
        self.port = self.server.server_port
        self.url = f"http://127.0.0.1:{self.port}"

    def _mode(self) -> str:
        return self.modes[min(len(self.requests), len(self.modes)) - 1]

    def _handle(self, sock: Any, _addr: Any) -> None:
        self.conns.append(sock)
        for head, body in http_requests(sock):
            self.requests.append(head + b"\r\n\r\n" + body)
            if not self._answer(sock, self._mode(), b"stream" in head.lower() or b'"stream": true' in body):
                return

    def _answer(self, sock: Any, mode: str, stream: bool) -> bool:
        if mode in ("stream", "json"):
            if stream:
                sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked"
                             b"\r\n\r\n" + _chunked(_SSE))  # fmt: skip
            else:
                sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                             % (len(_JSON), _JSON))  # fmt: skip
            return True
        if mode == "error":
            err = b'{"error":{"type":"server_error","message":"boom"}}'
            sock.sendall(b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\n"
                         b"Content-Length: %d\r\n\r\n%s" % (len(err), err))  # fmt: skip
            return True
        if mode == "binary500":  # an error page that is not UTF-8
            page = b"\xff\xfe<html>\x00 down \xe9t\xe9</html>"
            sock.sendall(b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/html\r\n"
                         b"Content-Length: %d\r\n\r\n%s" % (len(page), page))  # fmt: skip
            return True
        if mode == "redirect":
            sock.sendall(b"HTTP/1.1 302 Found\r\nLocation: /elsewhere\r\nContent-Length: 0\r\n\r\n")
            return True
        if mode == "reset":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        elif mode == "silent":
            gevent.sleep(2.0)
        elif mode == "cut":
            first = _SSE.split(b"\n\n")[0] + b"\n\n"
            sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
                         + b"%x\r\n%s\r\n" % (len(first), first))  # fmt: skip
            gevent.sleep(0.05)
        sock.close()
        return False

    def close_idle(self) -> None:
        """Close (FIN) every connection accepted so far, as a server closes an idle keep-alive connection."""
        for conn in self.conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self) -> None:
        self.close_idle()
        self.server.stop()


class _User:
    def context(self) -> dict[str, Any]:
        return {"user_tag": "u1", "scenario": "from-user"}


def _session(base: str, request_event: EventHook, *, direct: bool, **kw: Any) -> FastHttpSession:
    session = FastHttpSession(base, request_event, user=kw.pop("user", None), **kw)
    lean_session(session)  # as llm_call makes it, for both paths
    if direct:
        d = direct_path(session)
        assert isinstance(d, DirectPath)
        session.llm_direct = d  # type: ignore[attr-defined]
    return session


def _call(base: str, *, direct: bool, stream: bool, n: int = 1, path: str = PATH, **kw: Any) -> list[dict[str, Any]]:
    """``n`` calls; the request event's keyword arguments of each."""
    fired: list[dict[str, Any]] = []
    hook = EventHook()
    hook.add_listener(lambda **kwargs: fired.append(kwargs))
    session = _session(base, hook, direct=direct, **kw.pop("session_kw", {}))
    payload = {"model": "m", "messages": [{"role": "user", "content": "hé"}], "stream": stream}
    for _ in range(n):
        llm_call(session, path, payload, stream=stream, scenario="s", name="chat", **kw)
    assert len(fired) == n  # one request event per call
    return fired


def _same_event(a: dict[str, Any], b: dict[str, Any]) -> None:
    assert list(a) == list(b)  # the same keys, in the same order
    for key in ("request_type", "name", "url", "response_length"):
        assert a[key] == b[key], key
    assert a["response_time"] > 0 and b["response_time"] > 0
    assert abs(a["start_time"] - b["start_time"]) < 30
    ea, eb = a["exception"], b["exception"]
    assert type(ea) is type(eb) and str(ea) == str(eb)
    ca, cb = a["context"], b["context"]
    assert set(ca) == set(cb)
    ra, rb = ca["llm"], cb["llm"]
    for key in ("ok", "error", "status", "stream", "name", "scenario", "content_events",
                "usage_completion_tokens", "usage_prompt_tokens"):  # fmt: skip
        assert getattr(ra, key) == getattr(rb, key), key
    pa, pb = a["response"], b["response"]
    assert type(pa) is type(pb) and type(pa) is not ResponseContextManager  # the response, not its context manager
    assert pa.status_code == pb.status_code
    assert sorted(pa.__dict__) == sorted(pb.__dict__)
    assert (pa.headers is None) == (pb.headers is None)
    if pa.headers is not None:
        assert list(pa.headers.items()) == list(pb.headers.items())
    assert type(getattr(pa, "error", None)) is type(getattr(pb, "error", None))
    assert str(getattr(pa, "error", None)) == str(getattr(pb, "error", None))
    qa, qb = pa.request, pb.request
    assert type(qa) is type(qb)
    assert (qa.url, qa.method, qa.payload) == (qb.url, qb.method, qb.payload)
    assert list(qa.headers.items()) == list(qb.headers.items())


def _both(modes: list[str], *, stream: bool, n: int = 1, **kw: Any) -> tuple[Any, Any, list[dict], list[dict]]:
    """The same calls through Locust's path, then the direct path, to one server: (bytes, events) of each."""
    srv = _Server(list(modes))
    try:
        old_ev = _call(srv.url, direct=False, stream=stream, n=n, **dict(kw))
        old_bytes, srv.requests, srv.modes = srv.requests, [], list(modes)
        new_ev = _call(srv.url, direct=True, stream=stream, n=n, **dict(kw))
        return old_bytes, srv.requests, old_ev, new_ev
    finally:
        srv.close()


@pytest.mark.parametrize("stream", [True, False])
@pytest.mark.parametrize(
    ("modes", "reason"),
    [
        (["stream"], None),
        (["error"], "HTTP 500: server_error"),
        (["redirect"], None),
        (["reset"], "connection reset"),
        (["close"], "connection closed before the answer"),
        (["cut"], "stream cut before the end"),
    ],
)
def test_the_direct_path_sends_the_same_bytes_and_fires_the_same_event(
    modes: list[str], reason: str | None, stream: bool
) -> None:
    old_bytes, new_bytes, old_ev, new_ev = _both(modes, stream=stream, n=2)
    assert new_bytes == old_bytes and len(new_bytes) >= 1
    for a, b in zip(old_ev, new_ev, strict=True):
        _same_event(a, b)
    got = new_ev[0]["context"]["llm"].error
    if modes == ["redirect"]:  # never followed: the 302 itself is the answer
        assert got == ("wrong content type for a stream: none" if stream else "invalid JSON body")
        assert all(b"/elsewhere" not in r for r in new_bytes)
    elif reason == "stream cut before the end" and not stream:
        assert got is not None  # a cut non-streamed answer: whatever reason, the same on both paths
    else:
        assert got == reason


def test_headers_credentials_default_headers_and_an_absolute_url_are_sent_alike() -> None:
    kw: dict[str, Any] = {
        "headers": {"X-Extra": "1", "accept-encoding": "gzip", "authorization": "Bearer k"},
        "session_kw": {"headers": {"X-Default": "d", "User-Agent": "mine/1"}, "user": _User()},
    }
    for stream in (True, False):
        srv = _Server(["stream"])
        try:
            base = f"http://us%40er:p%3Ass@127.0.0.1:{srv.port}"
            old_ev = _call(base, direct=False, stream=stream, path=f"{srv.url}{PATH}", **dict(kw))
            old_bytes, srv.requests = srv.requests, []
            new_ev = _call(base, direct=True, stream=stream, path=f"{srv.url}{PATH}", **dict(kw))
            new_bytes = srv.requests
        finally:
            srv.close()
        assert new_bytes == old_bytes
        head = new_bytes[0].split(b"\r\n\r\n")[0].decode("latin-1")
        assert "Authorization: Basic " in head and "X-Default: d" in head and "User-Agent: mine/1" in head
        _same_event(old_ev[0], new_ev[0])
        # the User's context() reaches the listeners, under llm_call's own keys (as Locust merges them)
        assert new_ev[0]["context"] == {"user_tag": "u1", "scenario": "s", "llm": new_ev[0]["context"]["llm"]}


def test_a_timeout_and_a_refused_connection_fire_the_same_event() -> None:
    old_bytes, new_bytes, old_ev, new_ev = _both(["silent"], stream=True, timeouts=Timeouts(0.3, 5.0))
    assert new_bytes == old_bytes
    _same_event(old_ev[0], new_ev[0])
    assert new_ev[0]["context"]["llm"].error == "timeout (headers)"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: refused
        evs = [_call(f"http://127.0.0.1:{port}", direct=d, stream=False)[0] for d in (False, True)]
    _same_event(*evs)
    assert evs[1]["context"]["llm"].error == "connection refused"
    # a call cut by its bound before the session's request ended: its event carries the User's context() too
    srv = _Server(["silent"])
    try:
        ev = _call(srv.url, direct=True, stream=True, timeouts=Timeouts(0.3, 5.0), session_kw={"user": _User()})[0]
    finally:
        srv.close()
    assert ev["context"]["llm"].error == "timeout (headers)"
    assert ev["context"] == {"user_tag": "u1", "scenario": "s", "llm": ev["context"]["llm"]}


def test_a_post_on_a_socket_the_server_closed_while_idle_goes_on_a_new_connection() -> None:
    """The liveness check before reuse is what keeps this POST: without it the request is lost (measured)."""
    for check in (True, False):
        srv = _Server(["stream", "close"])  # answers, then closes the kept-alive connection when read again
        try:
            session = _session(srv.url, EventHook(), direct=True)
            payload = {"model": "m", "stream": True}
            assert llm_call(session, PATH, payload, stream=True, scenario="s").ok
            pool = next(iter(session.client.clientpool.clients.values()))._connection_pool
            srv.modes[:] = ["stream"]
            srv.close_idle()  # the server closes its end of the idle connection
            gevent.sleep(0.1)
            if not check:
                pool._is_socket_alive = lambda sock: sock is not None  # type: ignore[method-assign]
            rec = llm_call(session, PATH, payload, stream=True, scenario="s")
            if check:
                assert rec.ok, rec.error
                assert len(srv.requests) == 2  # sent once, on a new connection
            else:
                # what skipping the check would do: the POST fails and is not sent again
                assert not rec.ok and rec.error == "connection closed before the answer"
                assert len(srv.requests) == 1
        finally:
            srv.close()


@pytest.mark.parametrize("direct", [False, True])
def test_a_user_killed_as_its_call_begins_sends_nothing_on_a_kept_connection(
    direct: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Locust stops a waiting User by killing its greenlet; when its wait has just ended, the kill lands at the
    first switch of its next call: the yield of the pool's liveness check, before the send. Nothing is sent
    and no event fired, on both paths (a check without that yield sent this request, never counted)."""
    monkeypatch.setattr(select, "select", gevent.select.select)  # as in a Locust process (patched by gevent)
    srv = _Server(["stream"])
    fired: list[dict[str, Any]] = []
    hook = EventHook()
    hook.add_listener(lambda **kwargs: fired.append(kwargs))
    session = _session(srv.url, hook, direct=direct)
    payload = {"model": "m", "stream": True}

    def user() -> None:
        assert llm_call(session, PATH, payload, stream=True, scenario="s").ok  # a kept-alive connection
        gevent.getcurrent().kill(block=False)  # delivered at this greenlet's next switch
        llm_call(session, PATH, payload, stream=True, scenario="s")

    try:
        g = gevent.spawn(user)
        g.join(timeout=5)
        assert g.dead and isinstance(g.value, gevent.GreenletExit)
        gevent.sleep(0.1)
        assert len(srv.requests) == 1 and len(fired) == 1
    finally:
        srv.close()


def test_a_changed_session_or_agent_keeps_locusts_path() -> None:
    hook = EventHook()
    session = FastHttpSession("http://127.0.0.1:1", hook, user=None)
    assert direct_path(session) is not None

    class MySession(FastHttpSession):
        def request(self, *a: Any, **kw: Any) -> Any:
            return super().request(*a, **kw)

    assert direct_path(MySession("http://127.0.0.1:1", hook, user=None)) is None
    other = FastHttpSession("http://127.0.0.1:1", hook, user=None)
    other.client._verify_status = lambda *a, **kw: None  # type: ignore[method-assign]
    assert direct_path(other) is None
    assert direct_path(object()) is None
    d = direct_path(session)
    assert d is not None and d.usable()
    session.client = FastHttpSession("http://127.0.0.1:1", hook, user=None).client
    assert not d.usable()  # a new agent: Locust's path for this call
    assert direct_mod.DirectPath is DirectPath


def _bytes_of_calls(srv: _Server, *, direct: bool, headers_of: list[dict[str, Any]]) -> tuple[list[bytes], Any]:
    session = _session(srv.url, EventHook(), direct=direct)
    for i, headers in enumerate(headers_of):
        payload = {"model": "m", "messages": [{"role": "user", "content": "x" * (i * 37)}], "stream": True}
        assert llm_call(session, PATH, payload, stream=True, scenario="s", headers=headers).ok
    sent, srv.requests = srv.requests, []
    return sent, session


def test_a_kept_request_head_gives_the_same_bytes_for_every_body_and_headers() -> None:
    """Bodies of different lengths on one kept head, other headers (a new head), a header of two lines and a
    Content-Length of the caller's (not kept: the client builds those): the same bytes as Locust's path."""
    headers_of: list[dict[str, Any]] = [{}, {}, {"X-A": "1"}, {}, {"X-Multi": ["a", "b"]}, {"X-B": "é"}]
    srv = _Server(["stream"])
    try:
        old, _ = _bytes_of_calls(srv, direct=False, headers_of=headers_of)
        new, session = _bytes_of_calls(srv, direct=True, headers_of=headers_of)
    finally:
        srv.close()
    assert new == old and len(new) == len(headers_of)
    assert len({r.split(b"\r\n\r\n")[1] for r in new}) == len(headers_of)  # every body differs
    heads = session.llm_direct.heads
    assert sum(1 for h in heads.values() if isinstance(h, str)) == 3  # {}, X-A, X-B: kept; X-Multi: built each time


@pytest.mark.parametrize("stream", [True, False])
@pytest.mark.parametrize("tolerant", [False, True])
def test_an_error_page_that_is_not_utf8_is_a_failed_call_not_an_exception(
    stream: bool, tolerant: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """geventhttpclient decodes an error answer's body as strict UTF-8 for a debug text: that raised out of
    Locust's request into the User. With ``tolerate_undecodable_error_bodies`` (installed by install_metrics)
    the answer is read as any error answer; without it, ``llm_call`` still turns the exception into the failed
    call it is. Either way: the status as the reason, one failed request event per call, both paths alike."""
    from geventhttpclient.useragent import UserAgent

    from llm_metrics.locust_fixes import tolerate_undecodable_error_bodies

    monkeypatch.setattr(UserAgent, "_conversation_str", UserAgent.__dict__["_conversation_str"])  # restored after
    if tolerant:
        tolerate_undecodable_error_bodies()
        tolerate_undecodable_error_bodies()  # once is enough: a second call changes nothing
    old_bytes, new_bytes, old_ev, new_ev = _both(["binary500"], stream=stream, n=2)
    assert new_bytes == old_bytes and len(new_bytes) == 2
    for a, b in zip(old_ev, new_ev, strict=True):
        if tolerant:
            _same_event(a, b)
        else:  # the event fired by llm_call for the request that raised: no response to show
            assert list(a) == list(b) and a["response"] is None and b["response"] is None
        for ev in (a, b):
            assert ev["context"]["llm"].error == "HTTP 500" and ev["exception"] is not None


class _Late(_Server):
    """Answers every request 50 ms after reading it (the answer is never there when the client starts waiting)."""

    def _answer(self, sock: Any, mode: str, stream: bool) -> bool:
        if mode != "silent":
            gevent.sleep(0.05)
        return super()._answer(sock, mode, stream)


@pytest.mark.parametrize("direct", [False, True])
def test_the_headers_are_read_once_the_socket_is_readable_on_the_direct_path(
    direct: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The direct path waits for the socket before the response's first read of the headers (no read that fails
    with EWOULDBLOCK first); Locust's path reads at once. A wait cut by the socket's timeout or the call's bound
    gives the socket back (closed): the pool's next request goes on a new connection, not stuck on the pool."""
    from geventhttpclient.response import HTTPSocketResponse

    readable: list[bool] = []
    stock = HTTPSocketResponse._read_headers

    def read_headers(self: Any, pre_buffered: bytes = b"") -> None:
        readable.append(bool(select.select([self._sock.fileno()], [], [], 0)[0]))
        stock(self, pre_buffered)

    monkeypatch.setattr(HTTPSocketResponse, "_read_headers", read_headers)
    srv = _Late(["stream"])
    try:
        evs = _call(srv.url, direct=direct, stream=True, n=3)
        assert [e["context"]["llm"].ok for e in evs] == [True] * 3
        assert readable == [direct] * 3
        # a wait cut by the bound, then calls on the same pool (one connection at most): new connections, answered
        srv.modes[:] = ["silent"]
        srv.requests.clear()
        hook = EventHook()
        session = _session(srv.url, hook, direct=direct, concurrency=1)
        payload = {"model": "m", "stream": True}
        rec = llm_call(session, PATH, payload, stream=True, scenario="s", timeouts=Timeouts(0.2, 5.0))
        assert rec.error == "timeout (headers)"
        srv.modes[:] = ["silent", "stream"]
        with gevent.Timeout(5):
            assert llm_call(session, PATH, payload, stream=True, scenario="s").ok
        assert len(srv.conns) == 3 and len(srv.requests) == 2  # the three calls above, then these two
    finally:
        srv.close()


@pytest.mark.parametrize("size", [100, 8 << 20])
def test_a_request_is_sent_whole_in_one_send_or_the_rest_by_gevents_sendall(
    size: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The direct path sends a request with one ``send`` of the plain socket (no ``getsockopt`` for gevent's
    chunk size); a body larger than the send buffer takes that ``send`` for what fits and gevent's ``sendall``
    for the rest: the same bytes as Locust's path either way."""
    sized: list[int] = []
    stock = gevent.socket.socket.getsockopt

    def getsockopt(self: Any, level: int, opt: int, *a: Any) -> Any:
        if (level, opt) == (socket.SOL_SOCKET, socket.SO_SNDBUF) and self.getpeername()[1] == srv.port:  # client
            sized.append(1)  # gevent's sendall asks the send buffer's size
        return stock(self, level, opt, *a)

    monkeypatch.setattr(gevent.socket.socket, "getsockopt", getsockopt)
    srv = _Late(["stream"])
    sent: dict[bool, list[bytes]] = {}
    asked: dict[bool, int] = {}
    try:
        for direct in (False, True):
            session = _session(srv.url, EventHook(), direct=direct)
            payload = {"model": "m", "messages": [{"role": "user", "content": "y" * size}], "stream": True}
            assert llm_call(session, PATH, payload, stream=True, scenario="s").ok  # connects
            sized.clear()
            assert llm_call(session, PATH, payload, stream=True, scenario="s").ok  # on the kept connection
            sent[direct], srv.requests = srv.requests, []
            asked[direct] = len(sized)
    finally:
        srv.close()
    assert sent[True] == sent[False] and len(sent[True]) == 2 and len(sent[True][1]) > size
    assert asked == {False: 1, True: 0 if size == 100 else 1}  # the direct path: gevent's sendall for the rest
