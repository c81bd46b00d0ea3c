"""CPU cost of each piece of the streamed-call hot path, in process (no sockets), before and after the speed-ups.

The stream is the mock's own bytes (``mock_llm.chunks.ChatChunks``): a role chunk, N content chunks, a finish
chunk, a usage chunk and ``[DONE]``, cut into network reads of one event each (tokens paced by the server) or
of 16 events (tokens already due, the mock's batch). Each figure is the best of ``--repeat`` timings (other
work on the machine only ever adds time), in microseconds per stream.

  sse decode            ``sse.iter_events_sseclient`` (sseclient-py alone, the code before) against
                        ``sse.iter_events`` (own cut of LF-only streams, sseclient-py for the rest)
  chunk JSON            ``ChatStreamAccumulator.feed`` of every event, template off (every chunk through
                        ``json.loads``, the code before) and on
  client decode         both together, with a ``perf_counter()`` per event as ``answer.read_stream`` does
  metrics layer         ``LLMMetrics.on_request`` of one streamed call (store, goodput, per-second series)
                        and of one non-streamed call

Usage: python bench/hot_path.py [--tokens 64] [--repeat 7] [--metrics-only]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
import timeit
from collections.abc import Callable
from functools import partial
from pathlib import Path
from types import SimpleNamespace
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from llm_metrics.core import LLMMetrics
from llm_metrics.engine.calls import CallRecord, GoodputSLO
from llm_users.client.openai_stream import ChatStreamAccumulator
from llm_users.client.sse import iter_events, iter_events_sseclient
from mock_llm.chunks import DONE, ChatChunks

WORDS = [b"The ", b"load ", b"test ", b"checks ", b"how ", b"a ", b"service ", b"behaves ", b"under ", b"stress. "]


def stream_events(tokens: int, stamps: bool) -> list[bytes]:
    enc = ChatChunks("chatcmpl-mock1f", 1763900000, "mock-llm", stamps)
    out = [enc.role()]
    out += [enc.content(WORDS[i % len(WORDS)]) for i in range(tokens)]
    out += [enc.finish("length"), enc.usage(12, tokens, 0), DONE]
    return out


def reads(events: list[bytes], per_read: int) -> list[bytes]:
    return [b"".join(events[i : i + per_read]) for i in range(0, len(events), per_read)]


def list_events(decoder: Any, chunks: list[bytes]) -> list[tuple[str, str]]:
    return list(decoder(chunks))


def best_us(fn: Callable[[], Any], repeat: int, number: int) -> float:
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number * 1e6


def decode(chunks: list[bytes], decoder: Any, template: bool, stamps: bool) -> ChatStreamAccumulator:
    acc = ChatStreamAccumulator(collect_server_stamps=stamps)
    if not template:
        acc.disable_template()
    perf = time.perf_counter
    for _event, data in decoder(chunks):
        if acc.feed(data, perf()):
            break
    return acc


def streamed_record(tokens: int, spread: bool = False) -> CallRecord:
    """A successful streamed call: chunks every 20 ms, or (``spread``) at seeded gaps from 5 µs to 30 ms
    (log-uniform: the chunk gaps fall into many histogram buckets, as when reads carry several chunks)."""
    t0 = time.perf_counter()
    times = [t0 + 0.2 + i * 0.02 for i in range(tokens)] or [t0 + 0.2]
    if spread:
        rnd = random.Random(1)
        for i in range(1, len(times)):
            times[i] = times[i - 1] + 10 ** rnd.uniform(-5.3, -1.5)
    return CallRecord(scenario="chat_stream", name="/v1/chat/completions", prompt="short", status=200, t_start=t0,
                      t_headers=t0 + 0.01, t_first_content=times[0], chunk_times=times, t_end=times[-1] + 0.001,
                      usage_completion_tokens=tokens, usage_prompt_tokens=12, content_events=tokens,
                      t_scheduled=t0 - 0.0001)  # fmt: skip


def bench_metrics() -> LLMMetrics:
    env = SimpleNamespace(parsed_options=None, runner=None)
    return LLMMetrics(env, "bench", [], GoodputSLO(ttft_ms=1000, tpot_ms=100), "", "")


def run_calls(calls: int, tokens: int) -> int:
    """``calls`` streamed calls through ``on_request``, a worker's report every 1,000 calls (as every 3 s)."""
    m = bench_metrics()
    rec = streamed_record(tokens, spread=True)
    ctx = {"scenario": "chat_stream", "llm": rec}
    on_request = m.on_request
    for i in range(calls):
        on_request("POST", "/v1/chat/completions", 1500.0, 0, None, ctx)
        if i % 1000 == 999:
            m.on_report_to_master("w", {})
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--metrics-only", action="store_true", help="only the metrics layer's rows")
    ap.add_argument("--calls", type=int, default=0,
                    help="only run LLMMetrics.on_request of this many streamed calls, untimed (for callgrind: "
                         "the instructions of two counts' difference per call)")  # fmt: skip
    args = ap.parse_args()
    if args.calls:
        return run_calls(args.calls, args.tokens)
    n = 200
    rows: list[tuple[str, float, float]] = []
    for stamps in () if args.metrics_only else (False, True):
        evs = stream_events(args.tokens, stamps)
        tag = " (mock stamps)" if stamps else ""
        for per_read in (1, 16):
            ch = reads(evs, per_read)
            before = best_us(partial(list_events, iter_events_sseclient, ch), args.repeat, n)
            after = best_us(partial(list_events, iter_events, ch), args.repeat, n)
            rows.append((f"sse decode, {per_read} event(s) per read{tag}", before, after))
        data = [d for _, d in iter_events(evs)]

        def feed_all(template: bool, data: list[str] = data, stamps: bool = stamps) -> None:
            acc = ChatStreamAccumulator(collect_server_stamps=stamps)
            if not template:
                acc.disable_template()
            for i, d in enumerate(data):
                if acc.feed(d, 1.0 + i):
                    break

        rows.append((f"chunk JSON (accumulator feed){tag}", best_us(lambda: feed_all(False), args.repeat, n),
                     best_us(lambda: feed_all(True), args.repeat, n)))  # fmt: skip
        ch = reads(evs, 1)
        rows.append((
            f"client decode: sse + feed + perf_counter, 1 event per read{tag}",
            best_us(partial(decode, ch, iter_events_sseclient, False, stamps), args.repeat, n),
            best_us(partial(decode, ch, iter_events, True, stamps), args.repeat, n),
        ))  # fmt: skip
        a = decode(ch, iter_events, True, stamps)
        b = decode(ch, iter_events_sseclient, False, stamps)
        assert a.state.chunk_times and len(a.state.chunk_times) == len(b.state.chunk_times) == args.tokens
        assert a.state.completion_tokens == args.tokens
    m = bench_metrics()
    rec = streamed_record(args.tokens)
    ctx = {"scenario": "chat_stream", "llm": rec}
    on_stream = best_us(lambda: m.on_request("POST", "/v1/chat/completions", 1500.0, 0, None, ctx), args.repeat, n)
    nrec = streamed_record(0)
    nrec.stream = False
    nrec.chunk_times = []
    nrec.usage_completion_tokens = args.tokens
    nctx = {"scenario": "chat_nonstream", "llm": nrec}
    on_non = best_us(lambda: m.on_request("POST", "/v1/chat/completions", 100.0, 0, None, nctx), args.repeat, n)
    print(f"python {sys.version.split()[0]}, {args.tokens} tokens per stream, best of {args.repeat} x {n}")
    print()
    print("| piece | before µs/stream | after µs/stream | after / before |")
    print("|---|---|---|---|")
    for name, before, after in rows:
        print(f"| {name} | {before:,.1f} | {after:,.1f} | {after / before:.2f} |")
    print(f"| metrics layer: LLMMetrics.on_request, streamed call ({args.tokens} chunks) | | {on_stream:,.1f} | |")
    print(f"| metrics layer: LLMMetrics.on_request, non-streamed call | | {on_non:,.1f} | |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
