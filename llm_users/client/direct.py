"""One LLM call's request sent through the session's own geventhttpclient client, with Locust's layers around it
written out for the one kind of request ``llm_call`` makes (``DirectPath.request``).

``llm_call`` always makes the same request: a POST of a JSON string with its own headers, ``stream=True``,
``catch_response=True``, ``allow_redirects=False``, a name, no ``auth``/``json``/``params``/``files``. For it,
Locust's ``FastHttpSession.request`` and geventhttpclient's ``UserAgent.urlopen`` run a retry loop that a POST
never takes, a redirect loop that ``allow_redirects=False`` turns off (by swapping the client's
``redirect_response_codes`` for each request), keyword dictionaries and the safe-mode wrapper, and
``HTTPClient.request`` merges the same headers three times and checks and joins them into the same request head on
every call. ``DirectPath.request`` makes the same calls in the same order on the same objects, without the
loops: the same headers merged the same way (the client's default headers and User-Agent, the session's
``Authorization`` from URL credentials, ``Accept-Encoding``), the same cookie-jar calls, the same exceptions turned
into the same error responses, and the same ``ResponseContextManager`` with the same ``request_meta``: the request
event its ``with`` block fires is the one Locust's would fire. It never follows a redirect. The request head
(all but its ``Content-Length`` line, which comes last) is built by ``HTTPClient._build_request`` once per client,
URI and headers and kept (``_head``); the POST is then sent as ``HTTPClient.request`` sends it (``_send``: the
pool's socket, its liveness check, limits and timeouts, the same bytes, response and errors; a POST is never sent
twice). A head that is not a plain one (chunked, ``Expect``, a ``Content-Length`` of the caller's, a header of
several lines) is built by ``HTTPClient.request`` itself every time.

Fewer system calls per request than geventhttpclient's send and read, with the same bytes, bounds and errors
(``_send``): the request goes in one ``send`` of the plain socket (``_sendall``: gevent's ``sendall`` asks the
socket's send buffer size with ``getsockopt`` on every request); the response reads its headers once the socket
is readable (``_wait_readable``: gevent's ``recv`` first fails with EWOULDBLOCK, the answer is never there right
after the send); the answer is read in blocks of 64 KB instead of 4 KB (``_READ_BLOCK``: a 64-token answer sent
at once is one read, not four). bench/RESULTS.md (session 6, s6-call): about 14 system calls per request of the
chat suite before (the bench probe's clock reads apart), 10 after.

``direct_path(session)`` returns None for anything but a stock ``FastHttpSession`` over a stock
``LocustUserAgent`` (a subclass or an instance attribute overriding one of the methods used here): such a
session keeps Locust's path. ``tests/unit/test_client_direct.py`` compares both paths byte for byte on the wire
and key for key in the request event. Locust and geventhttpclient are pinned (design.md section 6).

The pool's liveness check of a kept-alive socket (``ConnectionPool._is_socket_alive``, gevent's ``select`` with a
zero timeout) is kept as it is. Skipping it loses requests: a POST sent on a socket the server closed while idle
fails (geventhttpclient resends only idempotent methods). Making it with the standard library's ``select`` (the
same system call without gevent's ``sleep(0)`` after it) was measured and not kept: that yield is where a User
stopped by Locust while its wait was ending is killed before it sends; without it, the request is sent and never
counted (the tests show both).
"""

from __future__ import annotations

import errno
import time
from inspect import getattr_static
from typing import Any

import gevent
import gevent.socket
from geventhttpclient.client import HTTPClient, _requests_100_continue, _uses_chunked_transfer
from geventhttpclient.header import _dict_items as _items
from geventhttpclient.response import HTTPSocketPoolResponse
from geventhttpclient.useragent import UserAgent, _make_request
from locust.contrib.fasthttp import (
    FAILURE_EXCEPTIONS,
    ErrorResponse,
    FastHttpSession,
    FastResponse,
    LocustUserAgent,
    ResponseContextManager,
    absolute_http_url_regexp,
)

_time = time.time
_perf = time.perf_counter
_absolute = absolute_http_url_regexp.match
_UNSEEN = object()
_PLAIN_SOCKET = gevent.socket.socket  # gevent's own socket class (a TLS socket is a subclass: never waited on)
_HEADS_MAX = 64  # request heads kept per session (a suite sends a handful; more are built each time)
_READ_BLOCK = 64 * 1024
"""Bytes asked of the socket per read of the answer (the client's ``block_size``, 4 KB by default, when larger):
an answer already there (64 tokens at once: about 12.5 KB) comes in one read instead of four; a paced stream's
read returns what came, as before (the read size changes no time taken: every event is timed when parsed)."""

# methods the direct path stands in for or calls: a session or agent with any of them changed keeps Locust's path
_SESSION_METHODS = ("request", "_send_request_safe_mode", "_build_url")
_AGENT_METHODS = (
    "urlopen", "_urlopen", "_verify_status", "_handle_error", "_handle_retries_exceeded", "_may_retry",
    "_make_request", "_conversation_str",
)  # fmt: skip


def _stock(obj: Any, base: type, names: tuple[str, ...]) -> bool:
    cls = type(obj)
    inst = getattr(obj, "__dict__", {})
    return all(getattr_static(cls, n) is getattr_static(base, n) and n not in inst for n in names)


class DirectPath:
    """A stock ``FastHttpSession``'s request path for ``llm_call``'s requests (module docstring)."""

    __slots__ = ("agent", "heads", "session")

    def __init__(self, session: Any) -> None:
        self.session = session
        self.agent = session.client
        self.heads: dict[tuple[Any, ...], str | None] = {}
        """request heads without their ``Content-Length`` line (``_head``); None: not kept, the client builds it."""

    def usable(self) -> bool:
        """The session still has the agent this path was made for, with Locust's response class."""
        agent = self.session.client
        return agent is self.agent and agent.response_type is FastResponse

    def request(self, path: str, body: str, headers: dict[str, str], name: str, context: dict[str, Any]) -> Any:
        """``session.request("POST", path, data=body, headers=headers, name=name, stream=True,
        catch_response=True, context=context, allow_redirects=False)``, as Locust runs it (module docstring)."""
        session = self.session
        # FastHttpSession.request: name is never empty here, so session.request_name is never read
        url = path if _absolute(path) else f"{session.base_url}{path}"
        start_time = _time()
        user = session.user
        if user:
            context = {**user.context(), **context}
        headers = dict(headers)
        if session.auth_header:
            headers["Authorization"] = session.auth_header
        if "Accept-Encoding" not in headers and "accept-encoding" not in headers:
            headers["Accept-Encoding"] = "gzip, deflate, br"
        t0 = _perf()
        response = self._send(url, body, headers)
        meta: dict[str, Any] = {
            "request_type": "POST",
            "name": name or path,
            "context": context,
            "response": response,
            "exception": None,
            "start_time": start_time,
            "url": url,
        }
        meta["response_length"] = 0
        rh = response.headers
        if rh and "content-length" in rh:
            meta["response_length"] = int(rh["content-length"])
        meta["response_time"] = (_perf() - t0) * 1000
        try:
            response.raise_for_status()
        except FAILURE_EXCEPTIONS as e:
            meta["exception"] = e
        return ResponseContextManager(response, session.request_event, meta, True)

    def _send(self, url: str, body: str, headers: dict[str, str]) -> Any:
        """``FastHttpSession._send_request_safe_mode`` of ``UserAgent.urlopen`` for one POST: no retry (a POST
        is never retried) and no redirect (``allow_redirects=False``)."""
        agent = self.agent
        try:
            req_headers = agent.default_headers.copy()
            req_headers.update(headers)
            req = _make_request(url, "POST", headers=req_headers, payload=body, request_type=agent.request_type)
            jar = agent.cookiejar
            if jar is not None:
                jar.add_cookie_header(req)
            try:
                resp = self._urlopen(req)
            except gevent.GreenletExit:
                raise
            except BaseException as e:  # UserAgent.urlopen: a POST's error ends the request
                e.request = req  # type: ignore[attr-defined]
                last_error = agent._handle_error(e, url=req.url)  # raises what is not a temporary error
                agent._handle_retries_exceeded(url, last_error=last_error)  # raises RetriesExceeded
            if jar is not None:
                jar.extract_cookies(resp, req)
            try:
                agent._verify_status(resp.status_code, url=req.url)
            except Exception as e:
                e.response = resp  # type: ignore[attr-defined]
                e.request = req  # type: ignore[attr-defined]
                e.http_log = agent._conversation_str(req.url, resp, payload=req.payload)  # type: ignore[attr-defined]
                resp.release()
                agent._handle_error(e, url=req.url)  # raises it: a bad status is not a temporary error
                agent._handle_retries_exceeded(url, last_error=e)  # (never reached with the stock agent)
            return resp
        except FAILURE_EXCEPTIONS as e:
            if hasattr(e, "response"):
                resp = e.response
                resp.error = e
                return resp
            req = agent._make_request(url, method="POST", headers=headers, payload=body, params=None)
            return ErrorResponse(req, e)

    def _urlopen(self, req: Any) -> Any:
        """``LocustUserAgent._urlopen``."""
        client = self.agent.clientpool.get_client(req.url_split)
        split = req.url_split
        uri = getattr(split, "quoted_uri", split.request_uri)
        resp = self._post(client, uri, req.payload, req.headers)
        return FastResponse(resp, request=req, sent_request=resp._sent_request)

    def _post(self, client: Any, uri: str, body: Any, headers: Any) -> Any:
        """``client.request("POST", uri, body=body, headers=headers)``, its request head (all but the
        ``Content-Length`` line) kept per client, URI and headers (``_head``)."""
        if type(body) is not str or type(client) is not HTTPClient:
            return client.request("POST", uri, body=body, headers=headers)
        try:  # what _build_request reads, but the body (its length is the last line)
            key = (client, uri, client.version, tuple(_items(headers)), tuple(_items(client.default_headers)))
            prefix = self.heads.get(key, _UNSEEN)
        except TypeError:  # a field of several lines (a list) is not hashable
            return client.request("POST", uri, body=body, headers=headers)
        if prefix is _UNSEEN:
            prefix = _head(client, uri, body, headers)
            if len(self.heads) < _HEADS_MAX:
                self.heads[key] = prefix
        if prefix is None:
            return client.request("POST", uri, body=body, headers=headers)
        data = body.encode("utf-8")
        return _send(client, f"{prefix}Content-Length: {len(data)}\r\n\r\n", data)


def _head(client: Any, uri: str, body: str, headers: Any) -> str | None:
    """``HTTPClient._build_request``'s head of a POST of ``body`` without its last line, ``Content-Length``, when
    that line is the last and the request is a plain one: HTTP/1.1, not chunked, no ``Expect: 100-continue``, no
    ``Content-Length`` of its own, a head that encodes in latin-1. Else None (``HTTPClient.request`` sends it)."""
    data = body.encode("utf-8")
    merged = client.headers_type()
    merged.update(client.default_headers)
    merged.update(headers)
    if not data or client.version != HTTPClient.HTTP_11 or "content-length" in merged:
        return None
    if _uses_chunked_transfer(merged, data) or _requests_100_continue(merged):
        return None
    try:
        head: str = client._build_request("POST", uri, body=data, headers=headers, chunked=False)
        head.encode("latin-1")
    except (ValueError, UnicodeError):  # HTTPClient.request raises it again
        return None
    tail = f"Content-Length: {len(data)}\r\n\r\n"
    return head[: -len(tail)] if head.endswith("\r\n" + tail) else None


def _send(client: Any, head: str, data: bytes) -> Any:
    """``HTTPClient.request``'s send of a POST whose head is built: the same socket calls, errors and response (a
    POST is never sent twice: the errors it would retry for an idempotent method are raised)."""
    pool = client._connection_pool
    sock = pool.get_socket()
    try:
        _sendall(sock, head.encode("latin-1") + data)
    except gevent.socket.error as e:
        if e.errno not in (errno.ECONNRESET, errno.EPIPE):
            pool.release_socket(sock)
            raise
        # the server may have answered before closing: read that answer (the response releases the socket)
    else:
        _wait_readable(sock, pool)
    response = HTTPSocketPoolResponse(sock, pool, block_size=max(client.block_size, _READ_BLOCK), method="POST",
                                      headers_type=client.headers_type)  # fmt: skip
    response._sent_request = head
    return response


def _sendall(sock: Any, data: bytes) -> None:
    """``sock.sendall(data)``. A plain gevent socket that blocks first gets one ``send`` of its own socket (what
    gevent's ``sendall`` makes first, without its ``getsockopt`` system call for the chunk size, its clock read and
    its memoryview slices): a request fits the socket's send buffer, so that is all; what is left after a partial
    send, or after EWOULDBLOCK, goes through gevent's ``sendall`` (waits for the socket, under its timeout). Any
    other error is raised as gevent's ``send`` raises it. Any other socket: ``sendall`` itself."""
    if type(sock) is _PLAIN_SOCKET and sock.timeout != 0.0 and data:
        try:
            sent = sock._sock.send(data)
        except BlockingIOError:  # the send buffer is full: gevent's sendall waits for it
            sent = 0
        if sent == len(data):
            return
        data = memoryview(data)[sent:]  # type: ignore[assignment]
    sock.sendall(data)


def _wait_readable(sock: Any, pool: Any) -> None:
    """Wait for a plain gevent socket that blocks to be readable before the response reads its headers: the wait
    gevent's ``recv`` makes after its first read fails (the answer is never there right after the send), without
    that failed read (a system call and an ``OSError`` raised and caught). The same bounds as that wait: the
    socket's timeout (``socket.timeout``), a ``gevent.Timeout`` thrown in (the call's watch), a close by another
    greenlet; on any of them the socket goes back to the pool as the response's would (closed, not reused). A TLS
    socket (bytes may wait decrypted in the SSL object), a non-blocking one or any other object: no wait, the
    response reads at once as before."""
    if type(sock) is not _PLAIN_SOCKET or sock.timeout == 0.0:
        return
    event = sock._read_event
    if event is None:
        return
    try:
        sock._wait(event)
    except BaseException:
        pool.release_socket(sock)  # HTTPSocketPoolResponse.release of an answer not read: the socket is closed
        raise


def direct_path(session: Any) -> DirectPath | None:
    """The direct path for ``session``, or None when it is not a stock Locust ``FastHttpSession``."""
    if not isinstance(session, FastHttpSession) or not _stock(session, FastHttpSession, _SESSION_METHODS):
        return None
    agent = getattr(session, "client", None)
    if not isinstance(agent, LocustUserAgent) or not _stock(agent, LocustUserAgent, _AGENT_METHODS):
        return None
    if type(agent).urlopen is not UserAgent.urlopen or agent.response_type is not FastResponse:
        return None
    return DirectPath(session)


__all__ = ["DirectPath", "direct_path"]
