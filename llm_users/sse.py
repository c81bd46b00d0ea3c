"""Server-sent events read as the bytes arrive.

Two layers: ``iter_arrivals`` yields the body of a geventhttpclient response as each network read arrives
(design.md section 6: ``read(n)`` and Locust's ``iter_content``/``iter_lines`` wait for n bytes and batch tokens),
and ``iter_events`` decodes any stream of byte chunks into SSE events with sseclient-py, so the split of the
bytes into chunks never changes the events. No Locust import.
"""

from __future__ import annotations

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
    """Decode byte chunks into ``(event type, data)`` pairs with sseclient-py.

    Comment lines (keep-alives such as ``: ping``) and events without data are not yielded.
    """
    for ev in SSEClient(_Source(chunks)).events():
        yield ev.event, ev.data
