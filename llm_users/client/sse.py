"""Server-sent events read as the bytes arrive.

Two layers: ``iter_arrivals`` yields the body of a geventhttpclient response as each network read arrives
(design.md section 6: ``read(n)`` and Locust's ``iter_content``/``iter_lines`` wait for n bytes and batch tokens),
and ``iter_events`` decodes any stream of byte chunks into SSE events with sseclient-py's semantics (its
common case decoded here, the rest by sseclient-py itself: see ``iter_events``), so the split of the bytes into
chunks never changes the events. No Locust import.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from typing import Any

from sseclient import SSEClient


class StreamCut(Exception):
    """The connection closed before the HTTP message was complete."""


def iter_arrivals(raw: Any) -> Iterator[bytes]:
    """Yield the decoded (de-chunked) body bytes of ``raw`` as each socket read arrives.

    ``raw`` is geventhttpclient's ``HTTPSocketPoolResponse`` (``FastResponse._response``): this reads its
    private ``_body_buffer``/``_sock``/``feed`` the same way its own ``readline`` does, which is why the
    geventhttpclient version is pinned and covered by an accuracy test. Socket timeouts propagate.
    """
    buf: bytearray = raw._body_buffer
    while True:
        if buf:
            data = bytes(buf)
            del buf[:]
            yield data
        if raw.message_complete:
            return
        sock = raw._sock
        if sock is None:
            raise StreamCut("connection closed before the end of the body")
        try:
            data = sock.recv(raw.block_size)
        except BaseException:
            raw.release()
            raise
        if not data:
            raw.release()
            raise StreamCut("connection closed before the end of the body")
        raw.feed(data)


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

    Fast path (measured in bench/RESULTS.md: sseclient-py took about 40% of the CPU of a streamed call): while
    the stream's line endings are LF only, events are cut at each ``\\n\\n`` here and the common events, one
    ``data: ...`` line, or one ``event: ...`` line then one ``data: ...`` line (the Responses and Anthropic
    APIs), are decoded directly; any other event (comments, ``id:`` fields, several data lines) is handed to
    sseclient-py alone. At the first ``\\r`` in the stream the rest, with the bytes not yet
    cut, goes to sseclient-py. For LF-only streams sseclient-py cuts an event at the first ``\\n\\n`` after the
    previous cut whatever the chunking, and a lone ``data: X`` line is the event ``("message", X)``, so the
    events are the same; ``iter_events_sseclient`` is the reference, and tests compare the two.
    """
    it = iter(chunks)
    buf = b""
    for chunk in it:
        if b"\r" in chunk:
            yield from iter_events_sseclient(_Resumed(buf, chunk, it, chunks))
            return
        # what is left of buf holds no blank line: one can only end in the new bytes, so the search starts at
        # buf's last byte (not at 0: rescanning a long unfinished event at every chunk was quadratic)
        scan = len(buf) - 1 if buf else 0
        buf = buf + chunk if buf else chunk
        start = 0
        while True:
            end = buf.find(b"\n\n", start if start > scan else scan)
            if end < 0:
                break
            nl = buf.find(b"\n", start, end)
            if nl < 0 and buf.startswith(b"data: ", start):
                yield "message", buf[start + 6 : end].decode()
            elif (
                nl >= 0
                and buf.startswith(b"event: ", start)
                and buf.startswith(b"data: ", nl + 1)
                and buf.find(b"\n", nl + 1, end) < 0
            ):  # a named event (Responses, Anthropic): one event line, one data line
                yield buf[start + 7 : nl].decode() or "message", buf[nl + 7 : end].decode()
            else:
                yield from iter_events_sseclient((buf[start : end + 2],))
            start = end + 2
        if start:
            buf = buf[start:]
    if buf:  # sseclient-py dispatches what is left at the end of the body, even without the blank line
        yield from iter_events_sseclient((buf,))


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
