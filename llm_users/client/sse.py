"""Server-sent events read as the bytes arrive.

Two layers: ``iter_arrivals`` yields the body of a geventhttpclient response as each network read arrives
(design.md section 6: ``read(n)`` and Locust's ``iter_content``/``iter_lines`` wait for n bytes and batch tokens),
and ``iter_events`` decodes any stream of byte chunks into SSE events with sseclient-py's semantics (its
common case decoded here, the rest by sseclient-py itself: see ``iter_event_lists``, which hands over the
events of each read together), so the split of the bytes into chunks never changes the events. No Locust import.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterable, Iterator
from typing import Any

from sseclient import SSEClient

_perf = time.perf_counter
_GEVENT_PARTS: tuple[Any, Any, Any, Any] | None = None
# b"\r" as an int, which ``in`` looks for directly: ``bytes in bytes`` first tries its argument as an int, raising
# and clearing a TypeError (its message formatted) every time, ~1,850 instructions per read (bench/RESULTS.md)
_CR = 13
_LF = 10


class StreamCut(Exception):
    """The connection closed before the HTTP message was complete."""


def _gevent_parts() -> tuple[Any, Any, Any, Any]:
    """gevent's plain socket class, geventhttpclient's ``HTTPResponse.feed`` and ``HTTPResponse._on_body`` and
    llhttp's parser ``feed``, imported at the first read (the SSE decoding here is pure: importing this module
    imports no gevent)."""
    global _GEVENT_PARTS
    if _GEVENT_PARTS is None:
        import gevent.socket
        from geventhttpclient._parser import HTTPResponseParser
        from geventhttpclient.response import HTTPResponse

        _GEVENT_PARTS = (gevent.socket.socket, HTTPResponse.feed, HTTPResponseParser.feed, HTTPResponse._on_body)
    return _GEVENT_PARTS


def iter_arrivals(raw: Any, count: Any = None) -> Iterator[bytes]:
    """Yield the decoded (de-chunked) body bytes of ``raw`` as each socket read arrives.

    ``raw`` is geventhttpclient's ``HTTPSocketPoolResponse`` (``FastResponse._response``): this reads its
    private ``_body_buffer``/``_sock``/``feed`` the same way its own ``readline`` does, which is why the
    geventhttpclient version is pinned and covered by an accuracy test. Socket timeouts propagate.
    ``count`` (``answer.Counted``), when given, counts the bytes here (no generator level of its own): its ``n``
    grows by each read, its ``watch.last`` (when it has a watch) is stamped with the read's time, and more than
    ``limit`` bytes beyond its ``mark`` raise ``count.too_large()``.

    After a read shorter than the block (the socket was drained: tokens paced by the server) the next read waits
    for the socket to be readable first, then reads once, instead of a ``recv`` that fails with EWOULDBLOCK
    before gevent waits (a syscall and an exception per read; bench/RESULTS.md, issue 19): the wait gevent's
    ``recv`` makes after a failed read, then the plain socket's own ``_sock.recv`` once (what gevent's ``recv``
    calls first; woken with nothing, gevent's ``recv``, which waits again); see ``_plain_parts``. Only on a
    plain gevent socket that blocks: any other (TLS: bytes may wait decrypted inside the SSL object while the
    descriptor is not readable), or a non-blocking one, reads at once, as before.
    After a full read (a burst) it reads at once, as before; the first read too when the headers came with bytes
    of the body (else the server sent its headers alone, as a stream's server does before its first token). The
    bytes go to llhttp's parser itself (``HTTPResponseParser.feed``): ``HTTPResponse.feed`` only adds a catch for
    a HEAD answer's stray body, and a HEAD answer is complete at its headers, never read here. llhttp hands each
    HTTP chunk's bytes to the response's ``_on_body``, geventhttpclient's ``self._body_buffer += buf``; that is
    set, on the response, to the same buffer's ``extend`` (the same bytes appended to the same buffer, which
    geventhttpclient never rebinds, without a Python frame per chunk).
    """
    buf: bytearray = raw._body_buffer
    drained = not buf
    plain, response_feed, parser_feed, body_cb = _gevent_parts()
    rtype = type(raw)
    if getattr(rtype, "feed", None) is response_feed:
        feed = parser_feed.__get__(raw)
        if getattr(rtype, "_on_body", None) is body_cb:
            raw._on_body = buf.extend
    else:
        feed = raw.feed
    watch = count.watch if count is not None else None
    parts_of: Any = None  # the plain socket whose parts are in event, wait and recv
    event: Any = None
    wait: Any = None
    recv: Any = None
    while True:
        if buf:
            data = bytes(buf)
            buf.clear()
            if count is not None:
                if watch is not None:
                    watch.last = _perf()
                count.n += len(data)
                if count.n - count.mark > count.limit:
                    raise count.too_large()
            yield data
        if raw.message_complete:
            return
        sock = raw._sock
        if sock is None:
            raise StreamCut("connection closed before the end of the body")
        block = raw.block_size
        try:
            if drained and type(sock) is plain:
                if sock is not parts_of or sock._read_event is not event:
                    parts_of, event, wait, recv = _plain_parts(sock)
                if event is None:
                    data = sock.recv(block)
                else:
                    wait(event)
                    try:
                        data = recv(block)  # gevent's recv makes this call first
                    except BlockingIOError:  # woken with nothing to read: gevent's recv waits again
                        data = sock.recv(block)
            else:
                data = sock.recv(block)
        except BaseException:
            raw.release()
            raise
        if not data:
            raw.release()
            raise StreamCut("connection closed before the end of the body")
        drained = len(data) < block
        feed(data)


def _plain_parts(sock: Any) -> tuple[Any, Any, Any, Any]:
    """``(sock, read watcher, wait, own recv)`` of a plain gevent socket for ``iter_arrivals``' wait-then-read; the
    watcher is None (read at once with gevent's ``recv``) for a non-blocking socket (timeout 0) or a closed one.
    The wait is gevent's (``socket._wait`` on the read watcher, under the socket's timeout: ``socket.timeout``
    after it, a ``gevent.Timeout`` thrown in, a close by another greenlet, all as from ``recv``), or for a socket
    without timeout (a stream read under its ``CallWatch``) ``_wait_readable``'s. Taken once per socket and
    body read (again when its read watcher changes: a close drops it; the socket's timeout is read here, set
    before the body is read), not at every read: gevent's socket class has a ``__getattr__``, which makes each
    attribute read of it slow (bench/RESULTS.md)."""
    timeout = sock.timeout
    event = sock._read_event if timeout != 0.0 else None
    wait = sock._wait if timeout is not None or event is None else _wait_readable(sock, event)
    return sock, event, wait, sock._sock.recv


def _wait_readable(sock: Any, event: Any) -> Any:
    """The wait of a socket without timeout for its read watcher ``event``, as gevent's ``Hub.wait`` makes it
    (``socket._wait`` without timeout) without its ``Waiter`` object: the watcher started with the waiting
    greenlet's ``switch`` (given the watcher itself, which the wait checks it gets back, as ``Hub.wait`` checks it
    gets its ``Waiter``), the hub switched to, the watcher stopped however the wait ends. A ``gevent.Timeout`` or
    any exception thrown in comes out of the hub's ``switch``; a close by another greenlet throws its error into
    the greenlet the watcher's callback belongs to (``Hub.cancel_wait``), as it throws into a ``Waiter``'s; a
    watcher some other greenlet already waits on raises gevent's ``ConcurrentObjectUseError`` (its own wait)."""
    import gevent
    from gevent.exceptions import InvalidSwitchError

    getcurrent = gevent.getcurrent
    hub_switch = sock.hub.switch
    gevent_wait = sock._wait

    def wait(_event: Any) -> None:
        if event.callback is not None:
            gevent_wait(event)  # raises ConcurrentObjectUseError
        event.start(getcurrent().switch, event)
        try:
            woke = hub_switch()
        finally:
            event.stop()
        if woke is not event:
            raise InvalidSwitchError(f"Invalid switch into {getcurrent()}: got {woke!r} (expected {event!r})")

    return wait


def drain(raw: Any, limit: int = 1 << 20) -> int:
    """Read what is left of the body (after ``[DONE]``) so the connection can be reused; return its size."""
    n = 0
    for data in iter_arrivals(raw):
        n += len(data)
        if n > limit:
            raw.release()
            break
    return n


class _Source:
    """The event source SSEClient wants: an iterator of bytes with a ``close``."""

    __slots__ = ("_chunks", "_it")

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = chunks
        self._it = iter(chunks)

    def __iter__(self) -> Iterator[bytes]:
        return self._it

    def __next__(self) -> bytes:
        return next(self._it)

    def close(self) -> None:
        close = getattr(self._chunks, "close", None)
        if close is not None:
            close()


def iter_events(chunks: Iterable[bytes]) -> Iterator[tuple[str, str]]:
    """Decode byte chunks into ``(event type, data)`` pairs, exactly as sseclient-py does.

    Comment lines (keep-alives such as ``: ping``) and events without data are not yielded. Lines that are
    not UTF-8 raise ``UnicodeDecodeError`` (as sseclient-py does); nothing else is raised for any bytes.
    The events are cut by ``iter_event_lists``; each event's text is decoded by ``text_events``.
    """
    for item in iter_event_lists(chunks):
        if isinstance(item, tuple):
            yield item
        else:
            yield from text_events([item] if isinstance(item, str) else item)


def text_events(texts: list[str]) -> Iterator[tuple[str, str]]:
    """The ``(event type, data)`` pairs of event texts from ``iter_event_lists``, as ``iter_events`` gives them."""
    for ev in texts:
        if ev.startswith("data: ") and "\n" not in ev:
            yield "message", ev[6:]
        else:
            yield from _other_event(ev)


def iter_event_lists(chunks: Iterable[bytes]) -> Iterator[list[str] | str | tuple[str, str]]:
    """The SSE events of byte chunks, cut as sseclient-py cuts them: per network read, the list of the texts of
    its complete events (each without its blank line; ``text_events`` decodes them), the text alone when the read
    is exactly one event, or one decoded ``(event type, data)`` pair where sseclient-py decodes the rest (below).

    Fast path (measured in bench/RESULTS.md: sseclient-py took about 40% of the CPU of a streamed call): while
    the stream's line endings are LF only, events are cut at each ``\\n\\n`` here and the common events, one
    ``data: ...`` line, or one ``event: ...`` line then one ``data: ...`` line (the Responses and Anthropic
    APIs), are decoded directly; any other event (comments, ``id:`` fields, several data lines) is handed to
    sseclient-py alone. The complete events of a read are decoded from UTF-8 at once and cut as text (bench/
    RESULTS.md, issue 19: 0.6x the instructions of cutting event by event). At the first ``\\r`` in the stream the
    rest, with the bytes not yet cut, goes to sseclient-py. For LF-only streams sseclient-py cuts an event at the
    first ``\\n\\n`` after the previous cut whatever the chunking, and a lone ``data: X`` line is the event
    ``("message", X)``, so the events are the same; ``iter_events_sseclient`` is the reference (tests compare).
    A reader that handles a read's events together (``answer.read_stream``) still takes each one's time when it
    comes to it.
    """
    it = iter(chunks)
    buf = b""
    for chunk in it:
        if _CR in chunk:
            yield from iter_events_sseclient(_Resumed(buf, chunk, it, chunks))
            return
        if buf:
            # what is left of buf holds no blank line: a new one lies in the new bytes or across the seam (not
            # rescanning a long unfinished event at every chunk: that was quadratic)
            joined = chunk.startswith(b"\n") and buf.endswith(b"\n")
            buf += chunk
            if not joined and chunk.find(b"\n\n") < 0:
                continue
        elif chunk.find(b"\n") == len(chunk) - 2 and chunk[-1] == _LF:  # its first "\n" opens its blank line
            yield chunk[:-2].decode()  # one read, one event (tokens paced by the server): its text alone
            continue
        elif chunk.find(b"\n\n") >= 0:
            buf = chunk
        else:
            buf = chunk
            continue
        # the events complete so far: up to the last blank line, decoded at once and cut at each "\n\n" from the
        # left, as sseclient-py cuts them; an odd run of newlines at the end leaves one "\n" not yet cut
        last = buf.rfind(b"\n\n") + 2
        done, buf = buf[:last], buf[last:]
        try:
            events = done.decode().split("\n\n")
        except UnicodeDecodeError:  # one by one, so that the events before the bad bytes come out first
            yield from _cut_bytes(done)  # raises at the event that holds them
            raise
        if events.pop():
            buf = b"\n" + buf
        yield events
    if buf:  # sseclient-py dispatches what is left at the end of the body, even without the blank line
        yield from iter_events_sseclient((buf,))


def _other_event(ev: str) -> Iterator[tuple[str, str]]:
    """An event that is not one ``data: ...`` line: ``event: X`` then ``data: Y`` (Responses, Anthropic) decoded
    here, any other (comments, ``id:`` fields, several data lines) by sseclient-py."""
    nl = ev.find("\n")
    if nl >= 0 and ev.startswith("event: ") and ev.startswith("data: ", nl + 1) and ev.find("\n", nl + 1) < 0:
        yield ev[7:nl] or "message", ev[nl + 7 :]
    else:
        yield from iter_events_sseclient((ev.encode() + b"\n\n",))


def _cut_bytes(done: bytes) -> Iterator[tuple[str, str]]:
    """The events of ``done`` (complete events holding bytes that are not UTF-8) one at a time, up to the first
    that cannot be decoded, which raises ``UnicodeDecodeError`` as sseclient-py does."""
    parts = done.split(b"\n\n")
    parts.pop()
    for part in parts:
        yield from _other_event(part.decode())


class _Resumed:
    """The rest of a stream for sseclient-py: the bytes not yet cut into events, then every chunk left."""

    __slots__ = ("_it", "_source")

    def __init__(self, pending: bytes, chunk: bytes, rest: Iterator[bytes], source: Iterable[bytes]) -> None:
        self._it = itertools.chain((pending, chunk) if pending else (chunk,), rest)
        self._source = source

    def __iter__(self) -> Iterator[bytes]:
        return self._it

    def close(self) -> None:
        close = getattr(self._source, "close", None)
        if close is not None:
            close()


def iter_events_sseclient(chunks: Iterable[bytes]) -> Iterator[tuple[str, str]]:
    """Decode byte chunks into ``(event type, data)`` pairs with sseclient-py alone (the reference decoder)."""
    for ev in SSEClient(_Source(chunks)).events():
        yield ev.event, ev.data
