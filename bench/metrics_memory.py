"""Memory (RSS) of a worker's metrics over 1,000,000 recorded requests, driven in process (no HTTP).

A real Locust ``Environment`` with a local runner (so Locust's own request statistics listen too) and the
suite's ``LLMMetrics.on_request`` on its request event; each request event carries a synthetic ``CallRecord``
as ``llm_call`` fires it: by default 70% streamed calls of 64 content events (64 chunk times, usage, schedule
lag, reading delays from mock stamps on one call in ten) and 30% non-streamed, over 2 scenarios x 4 prompts,
1% failed (HTTP 500) and 1% answered 429. The per-second series runs on a simulated clock of ``--rate``
requests per second (1,000: the 1,000,000 requests span 1,000 s of series, as a real run would), and with
``--role worker`` the store and series hand their deltas over every 3 simulated seconds (``report_to_master``),
as a worker does: the store keeps its totals (the worker's own view), the series only the seconds not yet sent.

RSS (``/proc/self/status`` VmRSS) is read after a warm-up of 10,000 requests (every series exists, the
allocator is warm) and every 100,000 requests after; the growth from the warm-up to the end is the result.

Usage: python bench/metrics_memory.py [--requests 1000000] [--role local|worker] [--rate 1000]
"""

from __future__ import annotations

import argparse
import gc
import random
import sys
import time
import types
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from locust import events
from locust.env import Environment

from llm_metrics import core
from llm_metrics.core import LLMMetrics
from llm_metrics.engine.calls import CallRecord, GoodputSLO

PROMPTS = ("short", "cot", "long", "code")
NAME = "/v1/chat/completions"


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Clock:
    def __init__(self, t0: float) -> None:
        self.now = t0

    def time(self) -> float:
        return self.now


def make_call(rng: random.Random, i: int, tokens: int) -> tuple[CallRecord, dict[str, Any], float, Any]:
    stream = rng.random() < 0.7
    scenario = "chat_stream" if stream else "chat_nonstream"
    prompt = PROMPTS[i % len(PROMPTS)]
    t0 = 1000.0 + i * 0.001
    status = 200
    roll = rng.random()
    if roll < 0.01:
        status = 500
    elif roll < 0.02:
        status = 429
    ok = status == 200
    rec = CallRecord(scenario=scenario, name=f"{NAME} ({scenario}, {prompt})", prompt=prompt, status=status,
                     stream=stream, t_start=t0, t_scheduled=t0 - rng.random() * 0.002, t_headers=t0 + 0.01)  # fmt: skip
    ctx: dict[str, Any] = {"scenario": scenario, "llm": rec}
    if ok and stream:
        first = t0 + 0.05 + rng.random() * 0.2
        rec.chunk_times = [first + k * 0.02 + rng.random() * 0.004 for k in range(tokens)]
        rec.t_first_content = first
        rec.t_end = rec.chunk_times[-1] + 0.001
        rec.content_events = tokens
        rec.usage_completion_tokens = tokens
        rec.usage_prompt_tokens = 40
        if i % 10 == 0:
            ctx["llm_read_delays_ms"] = [rng.random() * 2 for _ in range(tokens)]
    elif ok:
        rec.t_first_content = rec.t_end = t0 + 0.5 + rng.random()
        rec.usage_completion_tokens = tokens
        rec.usage_prompt_tokens = 40
    else:
        rec.ok = False
        rec.error = f"HTTP {status}"
        rec.t_end = t0 + 0.01
    exc = None if ok else RuntimeError(rec.error)
    return rec, ctx, (rec.t_end - t0) * 1000.0, exc


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=1_000_000)
    ap.add_argument("--role", choices=("local", "worker"), default="worker")
    ap.add_argument("--rate", type=float, default=1000.0, help="simulated requests per second (default 1000)")
    ap.add_argument("--tokens", type=int, default=64)
    args = ap.parse_args()
    env = Environment(events=events)
    env.create_local_runner()  # Locust's own stats listen to the request event, as in a real process
    clock = Clock(time.time())
    core.time = types.SimpleNamespace(time=clock.time)  # type: ignore[assignment]  # the series' clock
    m = LLMMetrics(env, "bench", [], GoodputSLO(ttft_ms=1000, tpot_ms=100), "", "")
    env.events.request.add_listener(m.on_request)
    if args.role == "worker":
        m.series.keep_totals = False  # as llm_metrics.hooks sets it on a worker
    rng = random.Random(1)
    pool = [make_call(rng, i, args.tokens) for i in range(2000)]  # reused: the records themselves are not kept
    fire = env.events.request.fire
    warm = 10_000
    report_every = max(1, int(args.rate * 3))
    points: list[tuple[int, float, float]] = []
    base = 0.0
    t_run = time.perf_counter()
    for i in range(args.requests):
        rec, ctx, rt, exc = pool[i % len(pool)]
        clock.now += 1.0 / args.rate
        fire(request_type="POST", name=rec.name, response_time=rt, response_length=0, response=None,
             context=ctx, exception=exc, start_time=clock.now, url=NAME)  # fmt: skip
        if args.role == "worker" and (i + 1) % report_every == 0:
            m.on_report_to_master("bench", {})
        if i + 1 == warm or (i + 1) % 100_000 == 0:
            gc.collect()
            r = rss_mb()
            if i + 1 == warm:
                base = r
            points.append((i + 1, r, time.perf_counter() - t_run))
            print(f"{i + 1:>9,} requests  RSS {r:7.1f} MB  (+{r - base:5.1f} MB since {warm:,})  "
                  f"{time.perf_counter() - t_run:6.1f} s", flush=True)  # fmt: skip
    final = points[-1][1]
    hists = sum(1 for _ in m.store.histograms())
    secs = len(m.series.seconds())
    print()
    print(f"python {sys.version.split()[0]}; role {args.role}; {args.requests:,} request events "
          f"({args.requests / points[-1][2]:,.0f}/s in process); series clock {args.rate:g} req/s")  # fmt: skip
    print(f"RSS after {warm:,}: {base:.1f} MB; after {args.requests:,}: {final:.1f} MB; growth {final - base:.1f} MB")
    print(f"store: {hists} histogram series; per-second series: {secs} seconds; Locust stats entries: "
          f"{len(env.stats.entries)}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
