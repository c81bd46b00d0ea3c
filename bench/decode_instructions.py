"""Instructions per streamed answer of the client's decoding, for callgrind (deterministic on a shared machine).

Decodes a 64-token chat stream (the mock's own bytes, ``bench/hot_path.py``) N times: ``sse1``/``sse16`` run
``sse.iter_events`` over reads of 1 or 16 events; ``feed1``/``feed16`` also feed every event to
``ChatStreamAccumulator`` with a ``perf_counter()`` per event, as ``answer.read_stream`` did before issue 19's
session 4; ``read1``/``read16`` run ``answer.read_stream`` itself (byte counts, the SSE cut, the accumulator)
over a stand-in for geventhttpclient's response that hands over one read at a time; ``think1``/``think16`` run
``read_stream`` over an answer of 32 reasoning and 32 content tokens (``reasoning_content``). Per answer =
(Ir of a run with N - Ir of a run with 0) / N, which removes the start-up:

  valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.out python bench/decode_instructions.py sse1 300
  valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.out python bench/decode_instructions.py sse1 0

Run it from a checkout to measure that checkout (it puts its own tree first on ``sys.path``).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.hot_path import reads, stream_events
from llm_metrics.engine.calls import CallRecord
from llm_users.client.answer import read_stream
from llm_users.client.openai_stream import ChatStreamAccumulator
from llm_users.client.sse import iter_events
from mock_llm.chunks import ChatChunks


class _Raw:
    """What ``sse.iter_arrivals`` reads of geventhttpclient's response: its body buffer, fed one read a time."""

    block_size = 65536

    def __init__(self, chunks: list[bytes]) -> None:
        self._body_buffer = bytearray()
        self._chunks = list(reversed(chunks))
        self.message_complete = False
        self._sock: _Raw | None = self

    def recv(self, _n: int) -> bytes:
        return self._chunks.pop()

    def feed(self, data: bytes) -> None:
        self._body_buffer += data
        self.message_complete = not self._chunks

    def release(self) -> None:
        self._sock = None


def main() -> int:
    what, n = sys.argv[1], int(sys.argv[2])
    kind, per_read = what.rstrip("0123456789"), int(what.lstrip("sefdrathink"))
    events = stream_events(64, False)
    if kind == "think":
        enc = ChatChunks("chatcmpl-mock1f", 1763900000, "mock-llm", False)
        events = [events[0], *(enc.reasoning(b"hmm%d " % i) for i in range(32)), *events[1:33], *events[-3:]]
        kind = "read"
    chunks = reads(events, per_read)
    perf = time.perf_counter
    for _ in range(n):
        if kind == "sse":
            for _ev in iter_events(chunks):
                pass
        elif kind == "read":
            rec = CallRecord(scenario="s", name="n", t_start=0.0)
            read_stream(_Raw(chunks), rec, False, {})
        else:
            acc = ChatStreamAccumulator(False)
            for _event, data in iter_events(chunks):
                if acc.feed(data, perf()):
                    break
    return 0


if __name__ == "__main__":
    sys.exit(main())
