"""A test client of the mock: one HTTP/1.1 request on a raw socket, each line of the answer stamped with its
arrival time (``stream_request``), for the tests of the mock's protocol and timing.

``MockProcess`` and ``serve_in_thread`` (start the mock) live in ``mock_llm.launch`` and are re-exported here for
the tests that import them from this module; product code imports them from ``mock_llm.launch``.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mock_llm.launch import ControlClient, MockProcess, ThreadHandle, serve_in_thread

__all__ = ["ControlClient", "MockProcess", "StreamResult", "ThreadHandle", "serve_in_thread", "stream_request"]


@dataclass
class StreamResult:
    """What ``stream_request`` read: times are seconds since the request was sent."""

    status: int
    headers: dict[str, str]
    t_headers: float
    lines: list[tuple[float, bytes]] = field(default_factory=list)  # (arrival time, line) of the body
    complete: bool = False  # the body ended as announced (terminating chunk or Content-Length reached)
    timed_out: bool = False
    body: bytes = b""
    sent_at: float = 0.0  # time.perf_counter() when the request was sent (the clock of mock_sent_ns)

    def data(self) -> list[tuple[float, bytes]]:
        """The SSE ``data:`` payloads with their arrival times."""
        return [(t, ln[5:].strip()) for t, ln in self.lines if ln.startswith(b"data:")]

    def events(self) -> list[tuple[float, Any]]:
        """The SSE data payloads parsed as JSON (``[DONE]`` as the string "[DONE]")."""
        out: list[tuple[float, Any]] = []
        for t, payload in self.data():
            out.append((t, "[DONE]" if payload == b"[DONE]" else json.loads(payload)))
        return out

    def tokens(self) -> list[tuple[float, dict[str, Any]]]:
        """The chunks with a non-empty ``delta.content`` (role-only, usage and [DONE] left out)."""
        return [
            (t, e)
            for t, e in self.events()
            if e != "[DONE]" and e.get("choices") and e["choices"][0].get("delta", {}).get("content")
        ]

    def json(self) -> Any:
        return json.loads(self.body)


def stream_request(
    base_url: str,
    path: str,
    body: Any = None,
    headers: Mapping[str, str] | None = None,
    *,
    method: str = "POST",
    timeout: float = 10.0,
) -> StreamResult:
    """One HTTP/1.1 request on a raw socket, the body read as it arrives and split into lines, each
    stamped with its arrival time; chunked and Content-Length bodies; a cut body gives complete=False."""
    host, _, port = base_url.removeprefix("http://").rstrip("/").rpartition(":")
    payload = b"" if body is None else body if isinstance(body, bytes) else json.dumps(body).encode()
    head = f"{method} {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Length: {len(payload)}\r\n"
    if body is not None:
        head += "Content-Type: application/json\r\n"
    for k, v in (headers or {}).items():
        head += f"{k}: {v}\r\n"
    with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        t0 = time.perf_counter()
        sock.sendall(head.encode() + b"Connection: close\r\n\r\n" + payload)
        return _read_response(sock, t0)


def _read_response(sock: socket.socket, t0: float) -> StreamResult:
    raw = b""
    try:
        while b"\r\n\r\n" not in raw:
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError(f"connection closed before the response headers: {raw!r}")
            raw += chunk
    except TimeoutError:
        return StreamResult(0, {}, time.perf_counter() - t0, timed_out=True, sent_at=t0)
    t_headers = time.perf_counter() - t0
    head, _, raw = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    hdrs = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in header_lines)}
    result = StreamResult(int(status_line.split()[1]), hdrs, t_headers, sent_at=t0)
    chunked = hdrs.get("transfer-encoding", "").lower() == "chunked"
    length = int(hdrs.get("content-length", "-1"))
    body = b""  # decoded body
    pending = b""  # decoded bytes not yet split into lines
    now = t_headers
    while True:
        if chunked:
            while True:  # decode every complete chunk in raw
                size_line, sep, rest = raw.partition(b"\r\n")
                if not sep:
                    break
                size = int(size_line.split(b";")[0], 16)
                if len(rest) < size + 2:
                    break
                if size == 0:
                    result.complete = True
                    break
                body += rest[:size]
                pending += rest[:size]
                raw = rest[size + 2 :]
        else:
            body += raw
            pending += raw
            raw = b""
            result.complete = length >= 0 and len(body) >= length
        while b"\n" in pending:
            line, _, pending = pending.partition(b"\n")
            result.lines.append((now, line))
        if result.complete:
            break
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            result.timed_out = True
            break
        except ConnectionError:
            break
        now = time.perf_counter() - t0
        if not chunk:
            break
        raw += chunk
    if pending:
        result.lines.append((now, pending))
    result.body = body
    return result
