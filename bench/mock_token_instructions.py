"""Instructions per scheduled streamed token of the mock, for callgrind (deterministic on a shared machine).

The real mock (``MockServer``: uvloop, its sockets, its timerfd clock) serves C streamed chat completions of T
tokens each (ttft = itl, ``X-Mock-Timestamps: 1`` as the suite's SERVER_STAMPS ask) to C client sockets in the
same process, on a virtual ``time.perf_counter``: the requests arrive one every itl / C (so that, as with C
real streams, a clock wake-up releases C x 0.1 ms / itl tokens: 2 at 1,000 streams of 50 ms), and each time the
clock's timerfd fires (it is armed at virtual deadlines, all in the real past, so it fires at once) the virtual
time jumps to the earliest deadline waiting. Every token therefore waits for its deadline through the clock,
as in a paced run, whatever the speed of the process (callgrind's is 50x lower). The clients read nothing until
the end (each stream fits in the socket buffers), so the count is the mock's. Per token = (Ir of a run with T2
tokens - Ir of a run with T1) / (C x (T2 - T1)), which removes the start-up and the requests:

  valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.out python bench/mock_token_instructions.py 1000 40
  valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.out python bench/mock_token_instructions.py 1000 20

It checks that every stream ended complete with its T token events and prints the virtual lateness of the
tokens (``mock_sent_ns`` is the real clock, so it is not compared). Run it from a checkout to measure that
checkout (it puts its own tree first on ``sys.path``).
"""

from __future__ import annotations

import asyncio
import socket
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

ITL_S = 0.05
BODY = b'{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":true,"max_tokens":%d}'


class VirtualTime:
    """A ``time.perf_counter`` stand-in that moves only when told to."""

    def __init__(self) -> None:
        self.now = 1.0  # far below the real CLOCK_MONOTONIC: every deadline armed on the timerfd is due at once

    def __call__(self) -> float:
        return self.now


async def serve(streams: int, tokens: int, vt: VirtualTime) -> list[bytes]:
    from mock_llm.config import from_mapping
    from mock_llm.server import MockServer

    cfg = from_mapping({"port": 0, "ttft_ms": ITL_S * 1000, "itl_ms": ITL_S * 1000})
    server = MockServer(cfg)
    await server.start()
    app = server.app
    clock = app.clock
    fire = clock._fire
    idle = asyncio.Event()
    arriving = True

    def virtual_fire() -> None:
        heap = clock._heap
        if not arriving and heap:
            top = heap[0]
            top = top[0] if isinstance(top, tuple) else top  # (deadline, ...) before session 6
            vt.now = max(vt.now, top)
        fire()
        if not clock._heap:
            idle.set()

    clock._fire = virtual_fire  # type: ignore[method-assign]  # bound by the clock's first wait
    body = BODY % tokens
    head = b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    request = head + b"X-Mock-Timestamps: 1\r\nContent-Length: %d\r\n\r\n%b" % (len(body), body)
    socks = []
    for k in range(streams):
        sock = socket.create_connection(("127.0.0.1", server.port))
        sock.sendall(request)
        socks.append(sock)
        while app.index <= k:
            await asyncio.sleep(0)
        vt.now += ITL_S / streams
    arriving = False
    while app.stats.completed_streams < streams:
        idle.clear()
        await idle.wait()
        for _ in range(100):
            if app.stats.completed_streams >= streams:
                break
            await asyncio.sleep(0)
    out = []
    for sock in socks:
        data = b""
        sock.settimeout(5)
        while not data.endswith(b"\r\n0\r\n\r\n"):
            data += sock.recv(1 << 20)
        out.append(data)
        sock.close()
    await server.stop(0)
    return out


def main() -> int:
    streams = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    tokens = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    import uvloop

    vt = VirtualTime()
    time.perf_counter = vt  # the mock's modules read time.perf_counter at each call
    t0 = time.process_time()
    answers = uvloop.run(serve(streams, tokens, vt))
    cpu = time.process_time() - t0
    events = [a.count(b"data: {") for a in answers]
    bad = [n for n in events if n != tokens + 2]  # the role chunk, T tokens, the finish chunk
    print(f"streams {streams} tokens {tokens} virtual end {vt.now:.3f} s  cpu {cpu:.2f} s  bad streams {len(bad)}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
