"""CPU cost of decoding one streamed answer of each API (``API`` knob), in process (no sockets).

The stream is the mock's own bytes for each API (``mock_llm.chunks`` / ``mock_llm.formats``): N output tokens
(and optionally R reasoning tokens first), cut into network reads of one event each (tokens paced by the
server). The client decode is what ``answer.read_stream`` does per stream: ``sse.iter_events`` (or
sseclient-py alone, the reference) and the API's accumulator fed with a ``perf_counter()`` per event. Each
figure is the best of ``--repeat`` timings, in microseconds per stream.

Usage: python bench/api_decoders.py [--tokens 64] [--reasoning 0] [--repeat 7]
"""

from __future__ import annotations

import argparse
import sys
import time
import timeit
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from llm_users.client.apis import APIS
from llm_users.client.sse import iter_events, iter_events_sseclient
from mock_llm.chunks import ChatChunks
from mock_llm.formats import AnthropicEvents, CompletionChunks, ResponsesEvents

WORDS = [b"The ", b"load ", b"test ", b"checks ", b"how ", b"a ", b"service ", b"behaves ", b"under ", b"stress. "]


def events(api: str, tokens: int, reasoning: int) -> list[bytes]:
    enc: Any = {
        "chat": lambda: ChatChunks("chatcmpl-mock1f", 1763900000, "mock-llm", False),
        "completions": lambda: CompletionChunks("cmpl-mock1f", 1763900000, "mock-llm", False),
        "responses": lambda: ResponsesEvents("resp_mock1f", 1763900000, "mock-llm", False),
        "anthropic": lambda: AnthropicEvents("msg_mock1f", 1763900000, "mock-llm", False, 12),
    }[api]()
    out = [enc.start()]
    out += [enc.reasoning(WORDS[i % len(WORDS)]) for i in range(reasoning)]
    out += [enc.content(WORDS[i % len(WORDS)]) for i in range(tokens)]
    out.append(enc.end("length", True, 12, reasoning + tokens, reasoning, None))
    return [e for e in out if e]


def decode(api: str, chunks: list[bytes], reference: bool) -> int:
    acc = APIS[api].decoder(False)
    perf = time.perf_counter
    for _ev, data in (iter_events_sseclient if reference else iter_events)(chunks):
        if acc.feed(data, perf()):
            break
    return len(acc.state.chunk_times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--reasoning", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()
    print(f"{args.tokens} output + {args.reasoning} reasoning tokens, one event per read, us per stream")
    print(f"{'API':<12} {'bytes':>7} {'sseclient+acc':>14} {'fast path+acc':>14}")
    for api in ("chat", "completions", "responses", "anthropic"):
        chunks = events(api, args.tokens, args.reasoning)
        assert decode(api, chunks, False) == decode(api, chunks, True) == args.tokens + args.reasoning
        ref = min(timeit.repeat(partial(decode, api, chunks, True), number=200, repeat=args.repeat)) / 200 * 1e6
        fast = min(timeit.repeat(partial(decode, api, chunks, False), number=200, repeat=args.repeat)) / 200 * 1e6
        print(f"{api:<12} {sum(map(len, chunks)):>7} {ref:>14.0f} {fast:>14.0f}")


if __name__ == "__main__":
    main()
