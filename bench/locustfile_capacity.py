"""Bench locustfile: closed-loop Users that call the target as fast as they can, and a probe that measures them.

Pick one User class on the command line (the bench scripts do):

  SuiteStreamUser     the suite's hot path: ``llm_call(stream=True)`` (SSE read as bytes arrive, sse.iter_events,
                      ChatStreamAccumulator, CallRecord) with the full metrics layer (``install_metrics``)
  SuiteNonStreamUser  the same for ``stream=False``
  BareStreamUser      a plain FastHttpUser reading the same stream with the same raw reader
                      (``sse.iter_arrivals`` + ``sse.iter_events``, one ``perf_counter`` per event) and setting
                      the end-to-end response time, without JSON decoding and without llm_metrics
  BareNonStreamUser   a plain FastHttpUser POST reading the whole body

``BENCH_REFERENCE=1`` swaps the decoders back to the code before the speed-ups, for before/after runs under
the same conditions: sseclient-py alone for SSE (``sse.iter_events_sseclient``, also in the bare loop) and
``json.loads`` of every chunk (no accumulator template). ``BENCH_METRICS=0`` leaves ``install_metrics`` out
(the Suite Users then measure the client code alone, so the difference to ``BENCH_METRICS=1`` is the metrics
layer itself). ``BENCH_TOKENS`` (64) is ``max_tokens``; ``SERVER_STAMPS=true`` asks the mock for send stamps
(``llm_read_delay_ms``).

The probe (bench/probe.py, the same for every class) writes the steady rate, CPU share and reading delays.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from locust import FastHttpUser, constant, events, task

from bench.probe import install_probe
from llm_users.client import answer as client_answer
from llm_users.client import openai_stream, sse
from llm_users.client.call import llm_call
from llm_users.client.sse import iter_arrivals

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

iter_events = sse.iter_events
if os.environ.get("BENCH_REFERENCE", "0") == "1":
    iter_events = sse.iter_events_sseclient
    client_answer.iter_event_lists = sse.iter_events_sseclient  # pairs, read one by one
    openai_stream._TEMPLATE_TRIES = 0

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
        with self.client.request("POST", PATH, data=NONSTREAM_BODY, headers=JSON_HEADERS, catch_response=True) as resp:
            if resp.status_code == 200 and resp.content:
                resp.success()
            else:
                resp.failure(f"HTTP {resp.status_code}")


install_probe(events)
