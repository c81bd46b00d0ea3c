"""The load generator measures itself: event-loop lag and CPU share per process, and the saturation guard.

Every process that runs Users (the local runner, each worker) runs a ``SelfMonitor`` during the test:

* ``client_loop_lag_ms`` (trend): a greenlet asks to wake ``LAG_INTERVAL_S`` from now and records how late it
  woke. While the gevent hub is blocked (CPU-bound code, garbage collection, a long report), every greenlet
  waits, among them the ones reading the answers: a stream chunk that arrives then is stamped late by about
  as much, so the lag is an estimate of the error in every TTFT, TPOT and chunk gap, against any server.
  gevent's timers run on the loop's cached clock; the probe refreshes it before each sleep so the wake-up is
  due exactly ``LAG_INTERVAL_S`` after the stamp it is compared with.
* ``client_cpu_pct`` (trend): the process's CPU time over wall time each second, in % of one core (a gevent
  process uses one core; 100% is its ceiling).

Both are recorded into the metric store (tag ``process``: ``local`` or ``worker<N>``), merged on the master
like every metric, and usable in thresholds. With ``record_banded``, each lag sample is recorded again with the
band of LLM calls open in the process (``gauge.LOAD``), with the open calls themselves, and each second the token
events read per second: ``load_limit`` finds from them how much one process held within the lag limit.

The saturation guard (``SaturationRules``, the ``saturation:`` key of the thresholds file) judges the merged
data: loop lag p99 over ``loop_lag_p99_ms`` (10 ms), or CPU at or above ``cpu_pct`` (90%) for more than
``cpu_share`` (10%) of the seconds sampled (judged from ``MIN_JUDGED_S`` seconds of lag probing and ``MIN_CPU_SECONDS``
seconds of CPU samples on: fewer are a start-up, not a run). A saturated generator distorts its own timings: the verdict
is not trustworthy (exit 98) and the console says ``LOAD GENERATOR SATURATED`` with the figures and what
to do. ``saturation: false`` turns the guard off. Every run also gets the per-process limit (``load_limit``:
``per_process`` in the figures), saturated or not.

The rules and their judgement are pure; ``SelfMonitor`` uses gevent, not Locust.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from llm_metrics.engine.histogram import GAMMA, Histogram, bucket_value
from llm_metrics.monitors.gauge import LOAD
from llm_metrics.monitors.load_limit import (
    CLIENT_LAG_AT_LOAD,
    CLIENT_OPEN_CALLS,
    CLIENT_TOKENS_READ,
    LoadBands,
    open_calls_band,
    per_process_limit,
)

__all__ = [
    "CLIENT_CPU",
    "CLIENT_LOOP_LAG",
    "SaturationError",
    "SaturationRules",
    "SelfMonitor",
    "judge",
    "parse_saturation",
    "share_at_or_above",
]

CLIENT_LOOP_LAG = "client_loop_lag_ms"
CLIENT_CPU = "client_cpu_pct"
LAG_INTERVAL_S = 0.05
CPU_INTERVAL_S = 1.0
MIN_JUDGED_S = 5.0
"""Less than this many seconds of lag probing (summed over processes) are not judged: the p99 of so few
samples is their maximum, one start-up hiccup."""
MIN_CPU_SECONDS = 5
"""Fewer seconds of CPU samples are not judged: one busy start-up second would be over 10% of them."""
ADVICE = (
    "run more load-generator processes (--processes N on this machine, or more workers: master + workers on "
    "other machines), or fewer Users / a lower rate per process"
)


class SaturationError(ValueError):
    """A ``saturation:`` section that cannot be used; the message names the key."""


@dataclass(frozen=True, slots=True)
class SaturationRules:
    """When the load generator counts as saturated (module docstring)."""

    enabled: bool = True
    loop_lag_p99_ms: float = 10.0
    cpu_pct: float = 90.0
    cpu_share: float = 0.10


_KEYS = {"loop_lag_p99_ms": (0.0, None), "cpu_pct": (0.0, 100.0), "cpu_share": (0.0, 1.0)}


def parse_saturation(data: Any, source: str) -> SaturationRules:
    """``saturation:`` of a thresholds file: absent or true (defaults), false (off), or a mapping of limits."""
    if data is None or data is True:
        return SaturationRules()
    if data is False:
        return SaturationRules(enabled=False)
    if not isinstance(data, Mapping):
        raise SaturationError(
            f"{source}: saturation: expected true, false or a mapping such as {{loop_lag_p99_ms: 10, cpu_pct: 90, "
            f"cpu_share: 0.1}}, got {data!r}"
        )
    values: dict[str, Any] = {}
    for key, val in data.items():
        if key == "enabled":
            if not isinstance(val, bool):
                raise SaturationError(f"{source}: saturation.enabled: expected true or false, got {val!r}")
            values[key] = val
            continue
        if key not in _KEYS:
            raise SaturationError(f"{source}: saturation.{key}: unknown key (expected enabled, {', '.join(_KEYS)})")
        lo, hi = _KEYS[key]
        if isinstance(val, bool) or not isinstance(val, int | float) or not (val > lo) or (hi is not None and val > hi):
            bound = f"> {lo:g}" + (f" and <= {hi:g}" if hi is not None else "")
            raise SaturationError(f"{source}: saturation.{key}: expected a number {bound}, got {val!r}")
        values[key] = float(val)
    return SaturationRules(**values)


def share_at_or_above(h: Histogram, x: float) -> float:
    """The share of ``h``'s values at or above ``x`` (to the histogram's 1%); 0 when empty."""
    if not h.count:
        return 0.0
    n = sum(c for i, c in h.buckets.items() if bucket_value(i) >= x / GAMMA)  # a value of x may read 1% low
    if x <= 0:
        n += h.zero
    return n / h.count


def judge(
    lag: Histogram | None, cpu: Histogram | None, rules: SaturationRules, bands: LoadBands | None = None
) -> tuple[list[str], dict[str, Any]]:
    """Why the generator was saturated (empty: it was not), and the figures for the summary (``per_process``:
    the per-process limit found in ``bands``, ``load_limit.per_process_limit``)."""
    figures: dict[str, Any] = {"rules": {k: getattr(rules, k) for k in ("enabled", *_KEYS)}}
    findings: list[str] = []
    if lag is not None and lag.count:
        p50, p99, p999 = lag.percentiles((50.0, 99.0, 99.9))
        figures["loop_lag_ms"] = {"samples": lag.count, "p50": p50, "p99": p99, "p99_9": p999, "max": lag.vmax}
        probed_s = lag.count * LAG_INTERVAL_S + lag.sum / 1000.0  # each sample: the interval plus its lag
        figures["loop_lag_ms"]["probed_s"] = probed_s
        if rules.enabled and probed_s >= MIN_JUDGED_S and p99 is not None and p99 > rules.loop_lag_p99_ms:
            findings.append(
                f"event-loop lag p99 {p99:.1f} ms (over {rules.loop_lag_p99_ms:g} ms; p99.9 {p999:.1f} ms, max "
                f"{lag.vmax or 0:.1f} ms): every time stamp of a call can be late by as much"
            )
    if cpu is not None and cpu.count:
        share = share_at_or_above(cpu, rules.cpu_pct)
        figures["cpu_pct"] = {
            "seconds": cpu.count,
            "avg": cpu.mean,
            "p50": cpu.percentile(50.0),
            "max": cpu.vmax,
            f"share_at_or_above_{rules.cpu_pct:g}": share,
        }
        if rules.enabled and cpu.count >= MIN_CPU_SECONDS and share > rules.cpu_share:
            findings.append(
                f"CPU at or above {rules.cpu_pct:g}% of a core for {share:.0%} of the seconds sampled (over "
                f"{rules.cpu_share:.0%}; average {cpu.mean or 0:.0f}%)"
            )
    figures["saturated"] = bool(findings)
    figures["findings"] = findings
    figures["per_process"] = per_process_limit(bands, rules.loop_lag_p99_ms, LAG_INTERVAL_S)
    return findings, figures


class SelfMonitor:
    """Loop-lag probe and CPU sampler of one process (gevent greenlets); ``record(metric, value)`` stores, and
    ``record_banded(metric, band, value)`` (optional) stores with the open-calls band (module docstring)."""

    def __init__(
        self,
        record: Callable[[str, float], None],
        *,
        record_banded: Callable[[str, str, float], None] | None = None,
        lag_interval_s: float = LAG_INTERVAL_S,
        cpu_interval_s: float = CPU_INTERVAL_S,
    ) -> None:
        self.record = record
        self.record_banded = record_banded
        self.lag_interval_s = lag_interval_s
        self.cpu_interval_s = cpu_interval_s
        self._greenlets: list[Any] = []

    def start(self) -> None:
        import gevent

        if not self._greenlets:
            self._greenlets = [gevent.spawn(self._lag_loop), gevent.spawn(self._cpu_loop)]

    def stop(self) -> None:
        for g in self._greenlets:
            g.kill(block=False)
        self._greenlets = []

    @property
    def running(self) -> bool:
        return any(not g.dead for g in self._greenlets)

    def _lag_loop(self) -> None:
        import gevent

        loop = gevent.get_hub().loop
        interval = self.lag_interval_s
        perf = time.perf_counter
        record, banded, load = self.record, self.record_banded, LOAD
        while True:
            loop.update_now()  # the timer counts from now, not from the loop's cached time
            asked = perf()
            gevent.sleep(interval)
            late_ms = (perf() - asked - interval) * 1000.0
            lag = late_ms if late_ms > 0.0 else 0.0
            record(CLIENT_LOOP_LAG, lag)
            if banded is not None:
                n = load[0]  # the calls open as the probe woke: the load it was late under
                band = open_calls_band(n)
                banded(CLIENT_LAG_AT_LOAD, band, lag)
                banded(CLIENT_OPEN_CALLS, band, float(n))

    def _cpu_loop(self) -> None:
        import gevent

        perf, cpu, load = time.perf_counter, time.process_time, LOAD
        w0, c0, t0 = perf(), cpu(), load[1]
        while True:
            gevent.sleep(self.cpu_interval_s)
            w1, c1, t1 = perf(), cpu(), load[1]
            if w1 > w0:
                self.record(CLIENT_CPU, 100.0 * (c1 - c0) / (w1 - w0))
                if self.record_banded is not None:
                    self.record_banded(CLIENT_TOKENS_READ, open_calls_band(load[0]), (t1 - t0) / (w1 - w0))
            w0, c0, t0 = w1, c1, t1
