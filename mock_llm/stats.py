"""The mock's own counters, served as JSON by ``GET /mock/stats`` and as Prometheus text by ``GET /metrics``.

Requests are counted per ``"METHOD /path"`` when they are dispatched, statuses when the response starts
(a connection closed before any response, by a fault or by the client, has no status). Control
endpoints are not counted. Gauges (active, queued) are read from the admission queue at render time.
"""

from __future__ import annotations

import bisect
import time
from collections import defaultdict
from typing import Any

_MAX_KEYS = 1000  # distinct "METHOD /path" keys kept; others are pooled, so random paths cannot grow memory
OTHER = "OTHER"
TTFT_BUCKETS_S = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
"""Upper bounds of the TTFT histogram (vLLM's ``time_to_first_token_seconds`` buckets up to 10 s)."""


class Stats:
    """Counters since start or since the last reset."""

    def __init__(self) -> None:
        self.started = time.time()
        self.reset()

    def reset(self) -> None:
        self.requests: dict[str, int] = defaultdict(int)
        self.statuses: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
        self.faults: dict[str, int] = defaultdict(int)
        self.tokens_served = 0
        self.rate_limited = 0
        self.budget_exceeded = 0
        self.unauthorized = 0
        self.completed_streams = 0
        self.client_disconnects = 0
        self.tool_calls = 0
        self.ttft_buckets = [0] * (len(TTFT_BUCKETS_S) + 1)  # the last one: above every bound (+Inf)
        self.ttft_sum = 0.0
        self.reset_at = time.time()

    def observe_ttft(self, seconds: float) -> None:
        """Time from a streamed call's arrival to its first token (the server's TTFT), into the histogram."""
        self.ttft_buckets[bisect.bisect_left(TTFT_BUCKETS_S, seconds)] += 1
        self.ttft_sum += seconds

    def key(self, method: str, path: str) -> str:
        """The counter key of a request; pooled as OTHER once too many distinct keys exist."""
        key = f"{method} {path}"
        if key in self.requests or len(self.requests) < _MAX_KEYS:
            return key
        return OTHER

    def snapshot(self, active: int, max_active: int, queued: int) -> dict[str, Any]:
        return {
            "requests": dict(self.requests),
            "statuses": {k: {str(s): n for s, n in v.items()} for k, v in self.statuses.items()},
            "faults": dict(self.faults),
            "tokens_served": self.tokens_served,
            "rate_limited": self.rate_limited,
            "budget_exceeded": self.budget_exceeded,
            "unauthorized": self.unauthorized,
            "completed_streams": self.completed_streams,
            "client_disconnects": self.client_disconnects,
            "tool_calls": self.tool_calls,
            "active": active,
            "max_active": max_active,
            "queued": queued,
            "since_s": round(time.time() - self.reset_at, 3),
        }


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _vllm_style(stats: Stats, active: int, queued: int) -> list[str]:
    """The same numbers under vLLM's names (the ``vllm`` preset of ``--server-metrics`` reads them)."""
    lines = [
        "# HELP vllm:num_requests_running Requests generating (the mock's active generations).",
        "# TYPE vllm:num_requests_running gauge",
        f'vllm:num_requests_running{{model_name="mock"}} {active}',
        "# HELP vllm:num_requests_waiting Requests waiting for a generation slot.",
        "# TYPE vllm:num_requests_waiting gauge",
        f'vllm:num_requests_waiting{{model_name="mock"}} {queued}',
        "# HELP vllm:generation_tokens_total Output tokens sent.",
        "# TYPE vllm:generation_tokens_total counter",
        f'vllm:generation_tokens_total{{model_name="mock"}} {stats.tokens_served}',
        "# HELP vllm:time_to_first_token_seconds Streamed calls: arrival to first token, as the mock measures it.",
        "# TYPE vllm:time_to_first_token_seconds histogram",
    ]
    cumulative = 0
    for bound, n in zip((*(str(b) for b in TTFT_BUCKETS_S), "+Inf"), stats.ttft_buckets, strict=True):
        cumulative += n
        lines.append(f'vllm:time_to_first_token_seconds_bucket{{le="{bound}",model_name="mock"}} {cumulative}')
    lines.append(f'vllm:time_to_first_token_seconds_sum{{model_name="mock"}} {stats.ttft_sum}')
    lines.append(f'vllm:time_to_first_token_seconds_count{{model_name="mock"}} {cumulative}')
    return lines


def render_prometheus(stats: Stats, prefix: str, active: int, queued: int) -> bytes:
    """Prometheus text exposition format 0.0.4 of the counters and gauges."""
    p = prefix
    lines = [
        f"# HELP {p}_requests_total Requests answered by the mock, by method, path and status.",
        f"# TYPE {p}_requests_total counter",
    ]
    for key, by_status in stats.statuses.items():
        method, _, path = key.partition(" ")
        for status, n in by_status.items():
            lines.append(f'{p}_requests_total{{method="{_label(method)}",path="{_label(path)}",status="{status}"}} {n}')
    lines += [
        f"# HELP {p}_requests_received_total Requests received, by method and path (before any answer).",
        f"# TYPE {p}_requests_received_total counter",
    ]
    for key, n in stats.requests.items():
        method, _, path = key.partition(" ")
        lines.append(f'{p}_requests_received_total{{method="{_label(method)}",path="{_label(path)}"}} {n}')
    lines += [
        f"# HELP {p}_tokens_generated_total Output tokens sent.",
        f"# TYPE {p}_tokens_generated_total counter",
        f"{p}_tokens_generated_total {stats.tokens_served}",
        f"# HELP {p}_faults_injected_total Faults injected, by kind.",
        f"# TYPE {p}_faults_injected_total counter",
    ]
    lines += [f'{p}_faults_injected_total{{kind="{k}"}} {n}' for k, n in stats.faults.items()]
    lines += [
        f"# HELP {p}_rate_limited_total Calls refused with 429.",
        f"# TYPE {p}_rate_limited_total counter",
        f"{p}_rate_limited_total {stats.rate_limited}",
        f"# HELP {p}_budget_exceeded_total Calls refused with 402.",
        f"# TYPE {p}_budget_exceeded_total counter",
        f"{p}_budget_exceeded_total {stats.budget_exceeded}",
        f"# HELP {p}_active_requests Generations in progress.",
        f"# TYPE {p}_active_requests gauge",
        f"{p}_active_requests {active}",
        f"# HELP {p}_queue_length Requests waiting for a generation slot.",
        f"# TYPE {p}_queue_length gauge",
        f"{p}_queue_length {queued}",
    ]
    lines += _vllm_style(stats, active, queued)
    return ("\n".join(lines) + "\n").encode()
