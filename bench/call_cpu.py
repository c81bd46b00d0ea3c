"""CPU time per streamed call of ``llm_call`` (the whole hot path, over real sockets), in one process.

A noisy shared machine blurs throughput; the CPU time a process spends per call blurs much less. This runs
``--users`` greenlets, each making streamed calls in a loop with a Locust ``FastHttpSession`` against the mock
(pinned to core 0; this process to core 1) until ``--calls`` calls are done, and divides the process CPU time
(``time.process_time``: user + system) by the calls. The request event goes to Locust's own statistics (a local
runner's) and, unless ``--no-metrics``, to ``LLMMetrics.on_request``, as in a worker. ``--repeat`` rounds;
the median and the minimum are printed with the load average.

``--no-stream`` makes the same calls non-streamed (the whole answer in one JSON body).

``--itl-ms 0`` (default): the mock sends the answer at once (few network reads per call, as in the capacity
runs); ``--itl-ms 1``: one read per token (64 socket waits per call, as open streams are read).

Run it from a checkout to measure that checkout (it puts its own tree first on ``sys.path``).

Usage: taskset -c 1 python bench/call_cpu.py [--calls 3000] [--users 50] [--repeat 7] [--itl-ms 0] [--no-metrics]
       [--no-stream]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import gevent
from locust import events
from locust.contrib.fasthttp import FastHttpSession
from locust.env import Environment

from bench.common import machine, mock
from llm_metrics.core import LLMMetrics
from llm_metrics.engine.calls import GoodputSLO
from llm_users.client.call import llm_call

PATH = "/v1/chat/completions"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, default=3000)
    ap.add_argument("--users", type=int, default=50)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--itl-ms", type=float, default=0.0)
    ap.add_argument("--no-metrics", action="store_true")
    ap.add_argument("--no-stream", action="store_true", help="non-streamed calls (one JSON body)")
    args = ap.parse_args()
    payload = {
        "model": "mock-llm",
        "messages": [{"role": "user", "content": "In one sentence, what is a load test?"}],
        "stream": not args.no_stream,
        "max_tokens": args.tokens,
    }
    if not args.no_stream:
        payload["stream_options"] = {"include_usage": True}
    margs = ["--ttft-ms", "0", "--itl-ms", f"{args.itl_ms:g}", "--output-tokens", str(args.tokens)]
    with mock(margs) as m:
        env = Environment(events=events)
        env.create_local_runner()
        if not args.no_metrics:
            lm = LLMMetrics(env, "bench", [], GoodputSLO(ttft_ms=1000, tpot_ms=100), "", "")
            env.events.request.add_listener(lm.on_request)
        session = FastHttpSession(m.base_url, env.events.request, user=None, concurrency=args.users)
        left = [0]
        failed = [0]
        stream = not args.no_stream
        scenario = "chat_stream" if stream else "chat"

        def worker() -> None:
            while left[0] > 0:
                left[0] -= 1
                rec = llm_call(session, PATH, payload, stream=stream, scenario=scenario, prompt="short")
                if not rec.ok:
                    failed[0] += 1

        per_call: list[float] = []
        for r in range(args.repeat + 1):  # round 0 warms up (connections, caches, series)
            left[0] = args.calls
            c0, w0 = time.process_time(), time.perf_counter()
            gevent.joinall([gevent.spawn(worker) for _ in range(args.users)])
            cpu, wall = time.process_time() - c0, time.perf_counter() - w0
            if r:
                per_call.append(cpu / args.calls * 1e6)
                print(f"round {r}: {cpu / args.calls * 1e6:7.1f} µs CPU per call, {args.calls / wall:7.0f} calls/s, "
                      f"CPU {cpu / wall:.0%}, load {os.getloadavg()[0]:.2f}", flush=True)  # fmt: skip
    print(machine())
    kind = "streamed" if stream else "non-streamed"
    print(f"CPU µs per {kind} call ({args.tokens} tokens, itl {args.itl_ms:g} ms, {args.users} users, "
          f"metrics {'off' if args.no_metrics else 'on'}): median {statistics.median(per_call):.1f}, "
          f"min {min(per_call):.1f}, max {max(per_call):.1f} over {len(per_call)} rounds; "
          f"failed calls {failed[0]}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
