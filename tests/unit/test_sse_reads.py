"""``sse.iter_arrivals`` over real sockets: a paced stream is read with one ``recv`` per read after waiting for the
socket (no ``recv`` that fails with EWOULDBLOCK first), a burst is read at once, and a timeout, a close, a reset,
the call's watch and a socket that buffers bytes itself (TLS) behave as with gevent's own ``recv``.

Every socket is a loopback TCP pair in this process (127.0.0.1, a port the system picks), closed by the test.
"""

from __future__ import annotations

import itertools
import shutil
import socket
import struct
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gevent
import gevent.event
import gevent.socket
import gevent.ssl
import pytest
from gevent.exceptions import ConcurrentObjectUseError, InvalidSwitchError
from geventhttpclient.response import HTTPSocketResponse
from hypothesis import given, settings
from hypothesis import strategies as st

from llm_users.client.bounds import TIMEOUT_IDLE, CallWatch, Timeouts, exception_reason
from llm_users.client.sse import StreamCut, iter_arrivals
from tests.support import missing_tool

HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


class _Counting:
    """Stands for a gevent socket's own ``_sock``: counts the reads and those that failed with EWOULDBLOCK."""

    def __init__(self, sock: Any) -> None:
        self.sock = sock
        self.reads = 0
        self.would_block = 0

    def recv(self, n: int) -> bytes:
        self.reads += 1
        try:
            return self.sock.recv(n)
        except BlockingIOError:
            self.would_block += 1
            raise

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sock, name)


@pytest.fixture
def pair() -> Iterator[tuple[gevent.socket.socket, gevent.socket.socket]]:
    """(client, server) connected over 127.0.0.1."""
    listener = gevent.socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    client = gevent.socket.create_connection(listener.getsockname())
    server, _ = listener.accept()
    listener.close()
    yield client, server
    client.close()
    server.close()


def _paced(server: Any, events: list[bytes], end: bytes = b"0\r\n\r\n") -> None:
    """Send each event once the reader has gone back to waiting (the loop is idle), then ``end``."""
    for ev in events:
        gevent.idle()
        server.sendall(_chunk(ev))
    gevent.idle()
    if end:
        server.sendall(end)


def test_a_paced_stream_is_read_one_recv_per_read_without_a_failed_recv(pair: Any) -> None:
    client, server = pair
    client.settimeout(None)
    events = [b"data: %d\n\n" % i for i in range(20)]
    server.sendall(HEAD)
    raw = HTTPSocketResponse(client)
    counting = client._sock = _Counting(client._sock)
    writer = gevent.spawn(_paced, server, events)
    with gevent.Timeout(5):
        got = list(iter_arrivals(raw))
    writer.join()
    assert got == events  # each event its own read, in order
    assert counting.would_block == 0
    assert counting.reads == len(events) + 1  # and the terminator


def test_the_socket_timeout_still_ends_the_wait_of_a_drained_socket(pair: Any) -> None:
    client, server = pair
    client.settimeout(0.2)
    server.sendall(HEAD + _chunk(b"data: 1\n\n"))
    raw = HTTPSocketResponse(client)
    it = iter_arrivals(raw)
    assert next(it) == b"data: 1\n\n"
    with gevent.Timeout(5), pytest.raises(socket.timeout):
        next(it)
    assert raw._sock is None  # released


def test_a_burst_larger_than_the_block_arrives_whole(pair: Any) -> None:
    client, server = pair
    client.settimeout(5.0)
    events = [b"data: %s\n\n" % (b"x" * (i * 7 % 50)) for i in range(200)]
    server.sendall(HEAD + b"".join(_chunk(ev) for ev in events) + b"0\r\n\r\n")
    raw = HTTPSocketResponse(client, block_size=64)
    with gevent.Timeout(5):
        assert b"".join(iter_arrivals(raw)) == b"".join(events)


def _first_event_read(pair: Any) -> tuple[Any, Any, Any]:
    """A response on a socket without timeout and its reader, its first event read: (response, reader, server)."""
    client, server = pair
    client.settimeout(None)
    server.sendall(HEAD + _chunk(b"data: 1\n\n"))
    raw = HTTPSocketResponse(client)
    it = iter_arrivals(raw)
    assert next(it) == b"data: 1\n\n"
    return raw, it, server


@pytest.mark.parametrize("how", ["close", "reset"])
def test_a_close_or_a_reset_while_waiting_ends_the_read_as_before(pair: Any, how: str) -> None:
    raw, it, server = _first_event_read(pair)

    def end() -> None:
        gevent.idle()
        if how == "reset":
            server.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        server.close()

    gevent.spawn(end)
    with gevent.Timeout(5), pytest.raises(StreamCut if how == "close" else ConnectionResetError):
        next(it)
    assert raw._sock is None


def test_the_call_watch_ends_the_wait_with_its_idle_reason(pair: Any) -> None:
    client, server = pair
    client.settimeout(None)  # as a stream is read: the idle bound is the watch's
    server.sendall(HEAD + _chunk(b"data: 1\n\n"))
    raw = HTTPSocketResponse(client)
    watch = CallWatch(0.0, Timeouts(idle_s=0.2, total_s=None))
    try:
        watch.body_started(gevent.get_hub().loop.now())
        counted = _Watched(watch)
        it = iter_arrivals(raw, counted)
        assert next(it) == b"data: 1\n\n"
        with gevent.Timeout(5), pytest.raises(gevent.Timeout) as exc:
            next(it)
        assert exception_reason(exc.value, watch) == TIMEOUT_IDLE
        assert raw._sock is None
    finally:
        watch.close()


class _Watched:
    """What ``iter_arrivals`` counts into (``answer.Counted``'s fields)."""

    def __init__(self, watch: CallWatch) -> None:
        self.watch = watch
        self.n = 0
        self.mark = 0
        self.limit = 1 << 20


class _Buffering(gevent.socket.socket):
    """A gevent socket that holds bytes of its own, as a TLS socket holds decrypted bytes while its descriptor
    is not readable: ``recv`` gives them first."""

    held: bytes = b""

    def recv(self, *args: Any) -> bytes:
        if self.held:
            data, self.held = self.held, b""
            return data
        return super().recv(*args)


def test_a_socket_holding_bytes_itself_is_read_at_once_not_waited_on() -> None:
    listener = gevent.socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    client = _Buffering()
    client.connect(listener.getsockname())
    server, _ = listener.accept()
    listener.close()
    try:
        server.sendall(HEAD)
        raw = HTTPSocketResponse(client)
        server.sendall(_chunk(b"data: 1\n\n"))
        it = iter_arrivals(raw)
        assert next(it) == b"data: 1\n\n"  # a short read: a plain socket would now wait for its descriptor
        client.held = _chunk(b"data: 2\n\n") + b"0\r\n\r\n"
        with gevent.Timeout(2):  # nothing more comes on the wire: a wait would last for ever
            assert list(it) == [b"data: 2\n\n"]
    finally:
        client.close()
        server.close()


def test_a_tls_stream_is_read_whole_with_records_waiting_in_the_ssl_object(tmp_path: Path) -> None:
    """Over real TLS (a self-signed certificate made by ``openssl``): several events in separate TLS records sent
    at once and then nothing more, the connection left open; every event comes out (a TLS socket is read as
    before: it is never waited on while its SSL object may hold bytes)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        missing_tool("the openssl command line tool is needed to make a test certificate (install openssl)")
    assert openssl is not None
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    listener = gevent.socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    server_ctx = gevent.ssl.SSLContext(gevent.ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(str(cert), str(key))
    client_ctx = gevent.ssl.SSLContext(gevent.ssl.PROTOCOL_TLS_CLIENT)
    client_ctx.load_verify_locations(str(cert))
    events = [b"data: %d\n\n" % i for i in range(6)]
    held = gevent.event.Event()

    def serve() -> None:
        conn, _ = listener.accept()
        with server_ctx.wrap_socket(conn, server_side=True) as tls:
            tls.recv(1)  # the client's go
            tls.sendall(HEAD)
            for ev in events:  # one TLS record each, all sent before the client reads
                tls.sendall(_chunk(ev))
            held.wait(10)  # the connection stays open and silent until the client has read

    server = gevent.spawn(serve)
    plain = gevent.socket.create_connection(listener.getsockname())
    client = client_ctx.wrap_socket(plain, server_hostname="127.0.0.1")
    try:
        assert isinstance(client, gevent.socket.socket) and type(client) is not gevent.socket.socket
        client.sendall(b"g")
        gevent.sleep(0.2)  # every record in the client's kernel buffer before the first read
        raw = HTTPSocketResponse(client)
        got = []
        with gevent.Timeout(5):
            for data in iter_arrivals(raw):
                got.append(data)
                if b"".join(got) == b"".join(events):
                    break
        assert b"".join(got) == b"".join(events)
    finally:
        held.set()
        server.join(5)
        client.close()
        listener.close()


class _Pieces:
    """Stands for a socket (not a gevent one: read at once) that gives ``pieces`` one per ``recv``, then closes."""

    def __init__(self, pieces: list[bytes]) -> None:
        self.pieces = list(pieces)

    def recv(self, _n: int) -> bytes:
        return self.pieces.pop(0) if self.pieces else b""

    def close(self) -> None:
        self.pieces = []


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    at = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(at) if b > a]


_BODIES = st.lists(st.binary(min_size=1, max_size=40), min_size=0, max_size=8)


@settings(max_examples=300, deadline=None)
@given(_BODIES, st.lists(st.integers(min_value=0), max_size=12), st.booleans())
def test_the_body_read_through_the_buffers_extend_is_geventhttpclients_own(
    chunks: list[bytes], cuts: list[int], ext: bool
) -> None:
    """``iter_arrivals`` sets the response's ``_on_body`` to its body buffer's ``extend``: for any chunked body
    (chunk extensions or not, the terminator and trailers) split into reads anywhere, the bytes read, the end
    state and what geventhttpclient's own ``read`` gives after it are those of geventhttpclient alone."""
    body = b"".join(b"%x%s\r\n%s\r\n" % (len(c), b";x=1" if ext else b"", c) for c in chunks)
    wire = HEAD + body + b"0\r\nX-T: 1\r\n\r\n"
    pieces = _split(wire, cuts)
    mine = HTTPSocketResponse(_Pieces(pieces))
    got = b"".join(iter_arrivals(mine))
    theirs = HTTPSocketResponse(_Pieces(pieces))
    assert got == theirs.read() == b"".join(chunks)
    assert mine.message_complete and theirs.message_complete
    assert mine.should_keep_alive() == theirs.should_keep_alive()
    assert "_on_body" in vars(mine) and mine.read() == b""  # the extend stays: geventhttpclient reads on


def test_the_body_buffers_extend_fills_the_buffer_geventhttpclient_reads() -> None:
    """After ``iter_arrivals`` stops early (a consumer that takes one read), geventhttpclient's own ``read`` gets
    the rest of the body through the ``extend`` left on the response."""
    events = [b"data: %d\n\n" % i for i in range(5)]
    pieces = [HEAD + _chunk(events[0])] + [_chunk(ev) for ev in events[1:]] + [b"0\r\n\r\n"]
    raw = HTTPSocketResponse(_Pieces(pieces))
    it = iter_arrivals(raw)
    assert next(it) == events[0]
    del it  # the generator closed: its reads stop
    assert raw.read() == b"".join(events[1:])


def _waiting_reader(pair: Any) -> tuple[Any, Any]:
    """A response on a socket without timeout, its first event read, and a greenlet waiting on the socket for the
    next: (response, greenlet)."""
    raw, it, _ = _first_event_read(pair)
    reader = gevent.spawn(next, it)
    gevent.idle()  # the reader now waits on the socket
    return raw, reader


def test_a_second_reader_of_a_socket_without_timeout_gets_geventss_error(pair: Any) -> None:
    """The wait of a socket without timeout (``_wait_readable``) refuses a watcher another greenlet waits on, with
    gevent's own ``ConcurrentObjectUseError``; the response is released (its socket closed: the first reader's
    wait ends with gevent's error for a socket closed by another greenlet), as with gevent's wait."""
    raw, reader = _waiting_reader(pair)
    with gevent.Timeout(5), pytest.raises(ConcurrentObjectUseError):
        next(iter_arrivals(raw))
    assert raw._sock is None
    with pytest.raises(OSError, match="closed in another greenlet"):
        reader.get(timeout=5)


def test_a_switch_into_the_wait_from_elsewhere_is_refused(pair: Any) -> None:
    """A greenlet switched into while it waits on its socket (not by its read watcher) raises gevent's
    ``InvalidSwitchError``, as a wait on a ``Waiter`` does; the response is released."""
    raw, reader = _waiting_reader(pair)
    gevent.get_hub().loop.run_callback(reader.switch, "not the watcher")
    with pytest.raises(InvalidSwitchError):
        reader.get(timeout=5)
    assert raw._sock is None
