"""The measuring probe of the bench locustfiles: steady-state rate, CPU share and reading delays of one process.

``install_probe(events)`` (a bench locustfile calls it) adds a request listener (two integer increments per
request event, the same for every User measured), samples the request count and the process CPU time every
0.5 s and, at quit, writes ``BENCH_OUT`` (JSON): the rate and CPU share over the steady window (from
``BENCH_WARMUP_S`` after the test start to ``test_stopping``, before the Users wind down), and the percentiles
of the client reading delays recorded after the warm-up (``context["llm_read_delays_ms"]``, what the suite
records as ``llm_read_delay_ms``).

With ``time_listeners=True`` (``bench/locustfile_capacity.py``, read by ``bench/client_capacity.py``) it also
times every other request listener (Locust's own statistics, the suite's ``LLMMetrics.on_request``) with the
thread's CPU clock, so the share of the process's CPU each one takes in the steady window is measured inside the
same run (``listeners_cpu``): a figure that other work on the machine does not blur as it blurs a comparison of
two runs. That costs the process two reads of the thread's CPU clock per listener and request event (a system
call each, about 3 µs on this machine's VM: about 18 µs per call of the chat suite, whose three listeners are
Locust's statistics, the metrics layer and the live charts, some 6% of its CPU per streamed call), so the
comparisons that do not read the shares (``bench/locustfile_chat.py``: ``bench/k6_compare.py``,
``bench/chat_instructions.py``) leave it off (``time_listeners=False``): the process measured is then the suite's
own work plus the probe's two increments per request, as k6's is its own.

``BENCH_STOP_AFTER=N`` quits the run once N request events were counted (a fixed request budget, for counting
instructions per call under callgrind: ``bench/chat_instructions.py``); the run's ``-t`` still bounds it.

With ``--processes N`` every forked worker writes ``BENCH_OUT.worker<pid>`` and the master ``BENCH_OUT``;
``bench/common.py`` sums the rates and CPU shares and merges the reading delays.
"""

from __future__ import annotations

import json
import os
import resource
import time
from typing import Any

import gevent
from locust.runners import WorkerRunner

from llm_metrics.engine.histogram import Histogram

_cpu = time.thread_time


class _Timed:
    """A request listener wrapped to add up the CPU time it takes (after the warm-up)."""

    def __init__(self, probe: _Probe, fn: Any) -> None:
        self.probe = probe
        self.fn = fn
        owner = getattr(fn, "__self__", None)
        self.name = f"{type(owner).__name__}.{fn.__name__}" if owner is not None else getattr(fn, "__qualname__", "?")
        self.cpu = 0.0

    def __call__(self, **kw: Any) -> None:
        if not self.probe.warm:
            self.fn(**kw)
            return
        c0 = _cpu()
        try:
            self.fn(**kw)
        finally:
            self.cpu += _cpu() - c0


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
        self.timed: list[_Timed] = []
        self.cpu_at_warm: float | None = None
        self.stop_after = int(os.environ.get("BENCH_STOP_AFTER", "0") or 0)
        self.runner: Any = None

    def on_request(self, exception: Any = None, context: Any = None, **_kw: Any) -> None:
        if exception is None:
            self.ok += 1
        else:
            self.failed += 1
        if self.warm and context:
            d = context.get("llm_read_delays_ms")
            if d:
                self.delays.record_many(d)
        if self.stop_after and self.ok + self.failed == self.stop_after and self.runner is not None:
            gevent.spawn(self.runner.quit)  # not from inside the request event

    def sample(self) -> None:
        t = os.times()
        self.samples.append((time.monotonic(), self.ok, self.failed, t.user + t.system))

    def loop(self) -> None:
        while True:
            self.sample()
            if not self.warm and self.t_start is not None and time.monotonic() - self.t_start >= self.warmup_s:
                t = os.times()
                self.cpu_at_warm = t.user + t.system
                self.warm = True
            gevent.sleep(0.5)

    def stop(self) -> None:
        """The run is stopping (``test_stopping``): the steady window ends here, before the Users wind down."""
        if self._g is not None:
            self._g.kill(block=False)
            self._g = None
            self.sample()

    def result(self) -> dict[str, Any]:
        if self._g is not None:
            self.stop()
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
            "delays_wire": d.to_wire(),
            "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "listeners_cpu": self.listeners_cpu(),
        }

    def listeners_cpu(self) -> dict[str, Any]:
        """CPU seconds each wrapped listener took after the warm-up, and its share of the process's CPU."""
        if self.cpu_at_warm is None:
            return {}
        t = os.times()
        total = t.user + t.system - self.cpu_at_warm
        return {w.name: {"cpu_s": w.cpu, "share": w.cpu / total if total > 0 else 0.0} for w in self.timed}

    def wrap_listeners(self, hook: Any) -> None:
        handlers = hook._handlers
        for i, fn in enumerate(handlers):
            if fn != self.on_request and not isinstance(fn, _Timed):
                handlers[i] = w = _Timed(self, fn)
                self.timed.append(w)


def install_probe(events: Any, *, time_listeners: bool = True) -> _Probe:
    """The probe of one bench locustfile's process; ``time_listeners``: time every other request listener
    (``listeners_cpu``, module docstring)."""
    probe = _Probe()

    @events.init.add_listener
    def _init(environment: Any, **_kw: Any) -> None:
        environment.events.request.add_listener(probe.on_request)
        probe.runner = environment.runner

    @events.test_start.add_listener
    def _start(environment: Any, **_kw: Any) -> None:
        if probe.t_start is None:
            if time_listeners:
                probe.wrap_listeners(environment.events.request)
            probe.t_start = time.monotonic()
            probe._g = gevent.spawn(probe.loop)

    @events.test_stopping.add_listener
    def _stopping(**_kw: Any) -> None:
        probe.stop()

    @events.quitting.add_listener
    def _quit(environment: Any, **_kw: Any) -> None:
        out = os.environ.get("BENCH_OUT")
        if out and isinstance(environment.runner, WorkerRunner):
            # --processes N (or --worker): each process writes its own file next to the master's;
            # bench/common.py adds them up
            out = f"{out}.worker{os.getpid()}"
        res = probe.result()
        stats = environment.stats.total
        res["locust_total"] = {"requests": stats.num_requests, "failures": stats.num_failures}
        if out:
            with open(out, "w", encoding="utf-8") as f:
                json.dump(res, f)

    return probe
