"""HTTP/1.1 on a raw asyncio Protocol with httptools parsing (chosen by measurement, bench/RESULTS.md).

One ``Connection`` per socket: TCP_NODELAY, keep-alive, pipelined requests answered in order, bodies with
Content-Length, streams with chunked transfer whose headers are written at once. The application's
``handle(request, connection)`` either answers synchronously or returns a coroutine that the connection
runs as a task; when the client goes away the task is cancelled (no traceback), so ``finally`` blocks keep
the counters right. Writes respect transport flow control through ``drain()``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import struct
import time
from collections import deque
from collections.abc import Coroutine
from http import HTTPStatus
from typing import Any, Protocol, cast

import httptools

log = logging.getLogger("mock_llm")

MAX_BODY = 16 * 1024 * 1024
_MAX_PIPELINED = 32
_STATUS_LINES = {int(s): f"HTTP/1.1 {int(s)} {s.phrase}\r\n".encode() for s in HTTPStatus}
_SERVER = b"server: mock_llm\r\n"
_CLOSE = b"connection: close\r\n"
_CHUNKED = b"transfer-encoding: chunked\r\ncache-control: no-cache\r\n"


def status_line(status: int) -> bytes:
    line = _STATUS_LINES.get(status)
    return line if line is not None else f"HTTP/1.1 {status} Status {status}\r\n".encode()


def frame(data: bytes) -> bytes:
    """``data`` as one chunk of a chunked body."""
    return b"%x\r\n%b\r\n" % (len(data), data)


class Request:
    """A parsed request: method and path as str, header names lower-case bytes, body bytes."""

    __slots__ = ("body", "headers", "keep_alive", "method", "path", "query", "received", "tag")

    def __init__(
        self,
        method: str,
        path: str,
        query: str,
        headers: dict[bytes, bytes],
        body: bytes,
        keep_alive: bool,
        received: float,
    ) -> None:
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.body = body
        self.keep_alive = keep_alive
        self.received = received  # time.perf_counter() when the request was complete
        self.tag: str | None = None  # the application's label for the request (its stats key)

    def header(self, name: bytes) -> str | None:
        value = self.headers.get(name)
        return None if value is None else value.decode("latin-1")


class Application(Protocol):
    def handle(self, request: Request, conn: Connection) -> Coroutine[Any, Any, None] | None: ...


def is_loopback(peer: Any) -> bool:
    """True when a peer address (``getpeername()``) is a loopback address, IPv4-mapped ones included."""
    host = peer[0] if isinstance(peer, tuple) and peer else None
    if isinstance(host, str) and host.startswith("127.") and host.count(".") == 3:
        return True  # an IPv4 address of 127.0.0.0/8 (the usual client), without parsing it again per connection
    try:
        addr = ipaddress.ip_address(str(peer[0]).split("%", 1)[0])
    except (TypeError, ValueError, IndexError):
        return False
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return addr.is_loopback


class Connection(asyncio.Protocol):
    """One client connection."""

    def __init__(self, app: Application, connections: set[Connection], loop: asyncio.AbstractEventLoop) -> None:
        self._app = app
        self._connections = connections
        self._loop = loop
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpRequestParser(self)
        self._url = b""
        self._headers: dict[bytes, bytes] = {}
        self._body: list[bytes] = []
        self._body_size = 0
        self._pending: deque[Request] = deque()
        self._current: Request | None = None
        self._task: asyncio.Task[None] | None = None
        self._dispatching = False
        self._reading_paused = False
        self.write_paused = False  # the transport asked to stop writing (``drain()`` waits for it to resume)
        self._drain_waiter: asyncio.Future[None] | None = None
        self.busy = False  # a response is in progress
        self.started = False  # its status line was written
        self.closed = False
        self.closing = False  # close after the current response (shutdown)
        self.peer_loopback = False  # the client is on this machine (127.0.0.0/8, ::1)

    # --- asyncio.Protocol -----------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass it
        self.peer_loopback = is_loopback(transport.get_extra_info("peername"))
        sock = transport.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:  # pragma: no cover - not a TCP socket
                pass
        self._connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._connections.discard(self)
        if self._task is not None and not self._task.done():
            self._task.cancel()
        self._wake_drain()

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._reject(400, b"upgrade not supported")
        except httptools.HttpParserError:
            if self._body_size > MAX_BODY:
                self._reject(413, b"request body larger than %d bytes" % MAX_BODY)
            else:
                self._reject(400, b"malformed HTTP request")

    def eof_received(self) -> bool:
        # The client closed its side: treat it as gone (as uvicorn does), so that a response in progress
        # is cancelled at once and its generation slot freed, rather than when the next write fails.
        return False

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        self._wake_drain()

    # --- httptools callbacks --------------------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._url = b""
        self._headers = {}
        self._body = []
        self._body_size = 0

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers[name.lower()] = value

    def on_headers_complete(self) -> None:
        expect = self._headers.get(b"expect", b"").lower() == b"100-continue"
        if expect and not self.busy and not self._pending and self._transport is not None:
            self._transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")  # curl waits for it before a big body

    def on_body(self, body: bytes) -> None:
        self._body_size += len(body)
        if self._body_size > MAX_BODY:
            raise httptools.HttpParserError("body too large")
        self._body.append(body)

    def on_message_complete(self) -> None:
        path, _, query = self._url.partition(b"?")
        req = Request(
            self._parser.get_method().decode("latin-1"),
            path.decode("latin-1"),
            query.decode("latin-1"),
            self._headers,
            b"".join(self._body),
            self._parser.should_keep_alive(),
            time.perf_counter(),
        )
        self._pending.append(req)
        if len(self._pending) > _MAX_PIPELINED and not self._reading_paused and self._transport:
            self._transport.pause_reading()
            self._reading_paused = True
        if not self.busy and not self._dispatching:
            self._run_pending()

    # --- dispatch -------------------------------------------------------------------------------------

    def _run_pending(self) -> None:
        self._dispatching = True
        try:
            while self._pending and not self.busy and not self.closed:
                req = self._pending.popleft()
                self.busy = True
                self.started = False
                self._current = req
                try:
                    coro = self._app.handle(req, self)
                except Exception:
                    log.exception("handler failed")
                    if self.started:
                        self.close()
                    elif self.busy:
                        self.send(500, b'{"error":{"message":"internal error","type":"server_error"}}')
                    continue
                if coro is not None:
                    self._task = self._loop.create_task(self._run_task(coro))
        finally:
            self._dispatching = False
        if self._reading_paused and len(self._pending) <= _MAX_PIPELINED // 2 and self._transport:
            self._reading_paused = False
            self._transport.resume_reading()

    async def _run_task(self, coro: Coroutine[Any, Any, None]) -> None:
        try:
            await coro
        except asyncio.CancelledError:
            return  # the client went away or the server is shutting down
        except Exception:
            log.exception("handler failed")
            if not self.closed:
                if self.started:
                    self.close()
                else:
                    self.send(500, b'{"error":{"message":"internal error","type":"server_error"}}')
            return
        finally:
            self._task = None
        if self.busy and not self.closed:  # the handler returned without answering
            self.send(500, b'{"error":{"message":"no response","type":"server_error"}}')

    def _finish(self) -> None:
        """The current response is complete."""
        self.busy = False
        self.started = False
        req = self._current
        self._current = None
        if self.closed:
            return
        if req is None or not req.keep_alive or self.closing:
            self.close()
            return
        if self._pending and not self._dispatching:
            self._run_pending()

    def _reject(self, status: int, message: bytes) -> None:
        if self.closed or self._transport is None:
            return
        if not self.busy:
            body = b'{"error":{"message":"' + message + b'","type":"invalid_request_error"}}'
            self._transport.write(
                status_line(status)
                + _SERVER
                + b"content-type: application/json\r\ncontent-length: "
                + str(len(body)).encode()
                + b"\r\n"
                + _CLOSE
                + b"\r\n"
                + body
            )
        self.close()

    # --- responses ------------------------------------------------------------------------------------

    def send(
        self,
        status: int,
        body: bytes,
        content_type: bytes = b"application/json",
        headers: bytes = b"",
    ) -> None:
        """A complete response with Content-Length; ``headers`` are preformatted ``name: value\\r\\n`` lines."""
        transport = self._transport
        if self.closed or transport is None:
            self._finish()
            return
        req = self._current
        close = req is None or not req.keep_alive or self.closing
        head = b"".join(
            (
                status_line(status),
                _SERVER,
                b"content-type: ",
                content_type,
                b"\r\ncontent-length: ",
                str(len(body)).encode(),
                b"\r\n",
                headers,
                _CLOSE if close else b"",
                b"\r\n",
            )
        )
        if len(body) > 65536:
            transport.write(head)
            transport.write(body)
        else:
            transport.write(head + body)
        self._finish()

    def start_stream(self, status: int, content_type: bytes, headers: bytes = b"", first: bytes = b"") -> None:
        """Write the status line and headers of a chunked response now, and its ``first`` chunk when not empty (in
        the same write)."""
        self.started = True
        if self.closed or self._transport is None:
            return
        req = self._current
        close = req is None or not req.keep_alive or self.closing
        self._transport.write(
            b"".join(
                (
                    status_line(status),
                    _SERVER,
                    b"content-type: ",
                    content_type,
                    b"\r\n",
                    _CHUNKED,
                    headers,
                    _CLOSE if close else b"",
                    b"\r\n",
                    b"%x\r\n%b\r\n" % (len(first), first) if first else b"",
                )
            )
        )

    def write_chunk(self, data: bytes) -> None:
        """One chunk of a chunked body (written at once, not coalesced)."""
        if not self.closed and self._transport is not None and data:
            self._transport.write(b"%x\r\n%b\r\n" % (len(data), data))

    def write_framed(self, framed: bytes) -> None:
        """Chunks already framed with ``frame()``, in one write."""
        if framed and not self.closed and self._transport is not None:
            self._transport.write(framed)

    def end_stream(self, last: bytes = b"", before: bytes = b"") -> None:
        """Framed chunks ``before``, a last chunk ``last``, then the terminating chunk, in one write;
        the response is complete."""
        if not self.closed and self._transport is not None:
            if last:
                self._transport.write(b"%b%x\r\n%b\r\n0\r\n\r\n" % (before, len(last), last))
            else:
                self._transport.write(before + b"0\r\n\r\n")
        self._finish()

    @property
    def transport(self) -> asyncio.Transport | None:
        """The socket's transport (None before it is connected); ``write`` it only while ``closed`` is False."""
        return self._transport

    async def drain(self) -> None:
        """Wait until the transport's write buffer is below its low-water mark (or the client is gone)."""
        if not self.write_paused or self.closed:
            return
        waiter = self._loop.create_future()
        self._drain_waiter = waiter
        await waiter

    def _wake_drain(self) -> None:
        waiter = self._drain_waiter
        if waiter is not None:
            self._drain_waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def close(self) -> None:
        """Close after flushing what was written (a stream cut short ends without its last chunk)."""
        self.busy = False
        if not self.closed and self._transport is not None:
            self.closed = True
            self._transport.close()

    def reset(self) -> None:
        """Reset the connection: a TCP RST (SO_LINGER 0, then close now), as a crashed peer or a middlebox does."""
        transport = self._transport
        if transport is not None:
            sock = transport.get_extra_info("socket")
            if sock is not None:
                try:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                except OSError:
                    pass
        self.abort()

    def abort(self) -> None:
        """Close now, dropping unsent data."""
        self.busy = False
        if self._transport is not None:
            self.closed = True
            self._transport.abort()

    def shutdown(self) -> None:
        """Server is stopping: close now if idle, else after the current response."""
        self.closing = True
        if not self.busy:
            self.close()
