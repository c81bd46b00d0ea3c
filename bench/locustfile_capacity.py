"""Bench locustfile: closed-loop Users that call the target as fast as they can, and a probe that measures them.

Pick one User class on the command line (the bench scripts do):

  SuiteStreamUser     the suite's hot path: ``llm_call(stream=True)`` (SSE read as bytes arrive, sseclient-py,
                      ChatStreamAccumulator, CallRecord) with the full metrics layer (``install_metrics``)
  SuiteNonStreamUser  the same for ``stream=False``
  BareStreamUser      a plain FastHttpUser reading the same stream with the same raw reader
                      (``sse.iter_arrivals`` + ``sse.iter_events``, one ``perf_counter`` per event) and setting
                      the end-to-end response time, without JSON decoding and without llm_metrics
  BareNonStreamUser   a plain FastHttpUser POST reading the whole body

``BENCH_METRICS=0`` leaves ``install_metrics`` out (the Suite Users then measure the client code alone, so
the difference to ``BENCH_METRICS=1`` is the metrics layer itself). ``BENCH_TOKENS`` (64) is ``max_tokens``;
``SERVER_STAMPS=true`` asks the mock for send stamps (``llm_read_delay_ms``).

The probe (always on, the same for every class: two integer increments per request event) samples the request
count and the process CPU time every 0.5 s and, at quit, writes ``BENCH_OUT`` (JSON): the rate and CPU share
over the steady window (from ``BENCH_WARMUP_S`` after the start to the stop), and the percentiles of the client
reading delays recorded after the warm-up (``context["llm_read_delays_ms"]``, what the suite records as
``llm_read_delay_ms``).
"""

from __future__ import annotations

import json
import os
import resource
import time
from typing import Any

import gevent
from locust import FastHttpUser, constant, events, task

from llm_metrics.histogram import Histogram
from llm_users.llm_http import llm_call
from llm_users.sse import iter_arrivals, iter_events

PATH = "/v1/chat/completions"
TOKENS = int(os.environ.get("BENCH_TOKENS", "64"))
STAMPS = os.environ.get("SERVER_STAMPS", "false").lower() in ("1", "true", "yes")
MESSAGES = [{"role": "user", "content": "In one sentence, what is a load test?"}]
STREAM_PAYLOAD: dict[str, Any] = {
    "model": "mock-llm",
    "messages": MESSAGES,
    "stream": True,
    "max_tokens": TOKENS,
    "stream_options": {"include_usage": True},
}
NONSTREAM_PAYLOAD: dict[str, Any] = {"model": "mock-llm", "messages": MESSAGES, "stream": False, "max_tokens": TOKENS}
STREAM_BODY = json.dumps(STREAM_PAYLOAD)
NONSTREAM_BODY = json.dumps(NONSTREAM_PAYLOAD)
STREAM_HEADERS = {
    "Content-Type": "application/json",
    "Accept": "text/event-stream",
    "Accept-Encoding": "identity",
    **({"X-Mock-Timestamps": "1"} if STAMPS else {}),
}
JSON_HEADERS = {"Content-Type": "application/json", "Accept": "application/json", "Accept-Encoding": "identity"}

if os.environ.get("BENCH_METRICS", "1") == "1":
    from llm_metrics.hooks import install_metrics

    install_metrics(events, suite="bench", default_thresholds="")


class SuiteStreamUser(FastHttpUser):
    wait_time = constant(0)

    @task
    def call(self) -> None:
        llm_call(self.client, PATH, STREAM_PAYLOAD, stream=True, scenario="chat_stream", prompt="short",
                 server_stamps=STAMPS)  # fmt: skip


class SuiteNonStreamUser(FastHttpUser):
    wait_time = constant(0)

    @task
    def call(self) -> None:
        llm_call(self.client, PATH, NONSTREAM_PAYLOAD, stream=False, scenario="chat_nonstream", prompt="short")


class BareStreamUser(FastHttpUser):
    wait_time = constant(0)

    @task
    def call(self) -> None:
        perf = time.perf_counter
        t0 = perf()
        with self.client.request(
            "POST", PATH, data=STREAM_BODY, headers=STREAM_HEADERS, stream=True, catch_response=True
        ) as resp:
            raw = resp._response
            events_seen = 0
            last = t0
            if raw is not None and resp.status_code == 200:
                for _event, _data in iter_events(iter_arrivals(raw)):
                    last = perf()
                    events_seen += 1
            resp.request_meta["response_time"] = (last - t0) * 1000.0
            if events_seen:
                resp.success()
            else:
                resp.failure("no events")


class BareNonStreamUser(FastHttpUser):
    wait_time = constant(0)

    @task
    def call(self) -> None:
        with self.client.request(
            "POST", PATH, data=NONSTREAM_BODY, headers=JSON_HEADERS, catch_response=True
        ) as resp:
            if resp.status_code == 200 and resp.content:
                resp.success()
            else:
                resp.failure(f"HTTP {resp.status_code}")


class _Probe:
    def __init__(self) -> None:
        self.ok = 0
        self.failed = 0
        self.samples: list[tuple[float, int, int, float]] = []
        self.delays = Histogram()
        self.t_start: float | None = None
        self.warm = False
        self.warmup_s = float(os.environ.get("BENCH_WARMUP_S", "3"))
        self._g: Any = None

    def on_request(self, exception: Any = None, context: Any = None, **_kw: Any) -> None:
        if exception is None:
            self.ok += 1
        else:
            self.failed += 1
        if self.warm and context:
            d = context.get("llm_read_delays_ms")
            if d:
                self.delays.record_many(d)

    def sample(self) -> None:
        t = os.times()
        self.samples.append((time.monotonic(), self.ok, self.failed, t.user + t.system))

    def loop(self) -> None:
        while True:
            self.sample()
            if not self.warm and self.t_start is not None and time.monotonic() - self.t_start >= self.warmup_s:
                self.warm = True
            gevent.sleep(0.5)

    def result(self) -> dict[str, Any]:
        self.sample()
        warm = [s for s in self.samples if self.t_start is not None and s[0] - self.t_start >= self.warmup_s]
        steady: dict[str, Any] = {"rate": 0.0, "cpu": 0.0, "requests": 0, "failures": 0, "seconds": 0.0}
        if len(warm) >= 2:
            a, b = warm[0], warm[-1]
            dt = b[0] - a[0]
            steady = {
                "rate": (b[1] - a[1]) / dt,
                "cpu": (b[3] - a[3]) / dt,
                "requests": b[1] - a[1],
                "failures": b[2] - a[2],
                "seconds": dt,
            }
        pcts = (50.0, 90.0, 99.0, 99.9)
        d = self.delays
        return {
            "steady": steady,
            "total_ok": self.ok,
            "total_failed": self.failed,
            "read_delay_ms": {
                "count": d.count,
                **{f"p{p:g}": v for p, v in zip(pcts, d.percentiles(pcts), strict=True)},
                "max": d.vmax,
            },
            "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        }


_probe = _Probe()


@events.init.add_listener
def _init(environment: Any, **_kw: Any) -> None:
    environment.events.request.add_listener(_probe.on_request)


@events.test_start.add_listener
def _start(**_kw: Any) -> None:
    _probe.t_start = time.monotonic()
    _probe._g = gevent.spawn(_probe.loop)


@events.quitting.add_listener
def _quit(environment: Any, **_kw: Any) -> None:
    out = os.environ.get("BENCH_OUT")
    res = _probe.result()
    stats = environment.stats.total
    res["locust_total"] = {"requests": stats.num_requests, "failures": stats.num_failures}
    if out:
        with open(out, "w", encoding="utf-8") as f:
            json.dump(res, f)
