"""Instructions per network read of a paced stream, over a real socket, for callgrind (deterministic).

``read_stream`` (the client's whole reading loop: ``sse.iter_arrivals`` on geventhttpclient's response, the SSE
cut, the chat accumulator, each event's ``perf_counter()``) reads N 64-token chat answers (the mock's own bytes,
``bench/hot_path.py``), one HTTP chunk per event, from a loopback TCP socket in this process. A writer greenlet
sends the next event only once the loop is idle (``gevent.idle()``: the reader has read, decoded and gone back to
wait on its socket), so every event is one read after a wait, as when a server paces its tokens, and no clock
decides anything: the counts repeat. What a read costs then includes gevent's socket wait and libev; the
writer's send is in the figure too, the same in every tree. Per read = (Ir of a run with N answers - Ir of a run
with 0) / (N * 68): an answer is 68 events (role, 64 tokens, finish, usage, [DONE] with the chunked terminator),
each one read; the script prints the reads and exits 1 unless every one came after a wait.

  valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.out python bench/read_instructions.py 100
  valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.out python bench/read_instructions.py 0

By default each answer is read as ``answer.read_answer`` reads a stream: the socket's timeout off, the idle
bound on a ``CallWatch`` stamped at every read. ``--timeout`` reads with the socket's timeout on (60 s: a
``gevent.Timeout`` per wait, as non-streamed bodies are read) and no watch. Run it from a checkout to measure
that checkout (it puts its own tree first on ``sys.path``).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import gevent
import gevent.socket
from geventhttpclient.response import HTTPSocketResponse

from bench.hot_path import stream_events
from llm_metrics.engine.calls import CallRecord
from llm_users.client.answer import read_stream
from llm_users.client.bounds import CallWatch, Timeouts

HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"


def _chunk(event: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(event), event)


def _writer(conn: gevent.socket.socket, reader: gevent.socket.socket, answers: int, waited: list[int]) -> None:
    events = [_chunk(e) for e in stream_events(64, False)]
    events[-1] += b"0\r\n\r\n"  # [DONE] with the terminator: the reader has nothing left to drain
    for _ in range(answers):
        conn.sendall(HEAD)
        for data in events:
            gevent.idle()
            waited[0] += reader._read_event.active  # the reader waits on its socket: the read is paced
            waited[1] += 1
            conn.sendall(data)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("answers", type=int)
    ap.add_argument("--timeout", action="store_true", help="read with the socket's timeout (60 s) on")
    args = ap.parse_args()
    listener = gevent.socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    client = gevent.socket.create_connection(listener.getsockname())
    conn, _ = listener.accept()
    client.settimeout(60.0 if args.timeout else None)
    waited = [0, 0]
    writer = gevent.spawn(_writer, conn, client, args.answers, waited)
    events = 0
    for _ in range(args.answers):
        raw = HTTPSocketResponse(client)
        t0 = time.perf_counter()
        rec = CallRecord(scenario="chat_stream", name="/v1/chat/completions", t_start=t0)
        watch = None if args.timeout else CallWatch(t0, Timeouts(idle_s=60.0, total_s=600.0))
        if watch is not None:
            watch.body_started(time.perf_counter())
        _n, reason = read_stream(raw, rec, False, {}, watch=watch)
        if watch is not None:
            watch.close()
        if reason is not None or rec.content_events != 64:
            print(f"bad answer: {reason}, {rec.content_events} token events", file=sys.stderr)
            return 1
        events += rec.content_events
    writer.join()
    print(f"{args.answers} answers, {waited[1]} reads, {waited[0]} after a wait, {events} token events")
    return 0 if waited[0] == waited[1] else 1


if __name__ == "__main__":
    sys.exit(main())
