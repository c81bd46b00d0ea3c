"""The inference server's own metrics beside the client's: ``--server-metrics URL`` for every suite.

The sidecar suite has its own configurable sampler (``llm_users.sidecar.server_metrics``); this module is the
general one. The master (or the single process; never a worker) scrapes each URL given (repeat the flag for
several replicas; env ``SERVER_METRICS``, comma-separated) at the start of the run, every
``--server-metrics-interval`` seconds (default 2) and at the end, with its own plain HTTP client: the scrapes
are not Locust requests.

Which series are read (the presets of vLLM, SGLang, TGI and llama.cpp), how each kind is summed over replicas
and turned into points, and the JSON section (``server_series``) are in ``server_series``; this module is the
Locust glue: the flags, the scrape loop and the hooks into the run's summary and console text.
"""

from __future__ import annotations

import logging
import math
import time
import urllib.error
import urllib.request
from typing import Any

from llm_metrics.monitors.server_series import JSON_KEY, ServerSeries, format_report, parse_urls

__all__ = ["add_server_scrape_arguments", "install_server_scrape"]

log = logging.getLogger(__name__)


def add_server_scrape_arguments(parser: Any) -> None:
    parser.add_argument(
        "--server-metrics",
        env_var="SERVER_METRICS",
        action="append",
        default=[],
        include_in_web_ui=False,
        help="Prometheus /metrics URL of the inference server, scraped by the master during the run (repeat for "
        "replicas; env SERVER_METRICS: comma-separated); vLLM, SGLang, TGI and llama.cpp series are recognised",
    )
    parser.add_argument(
        "--server-metrics-interval",
        env_var="SERVER_METRICS_INTERVAL",
        type=float,
        default=2.0,
        include_in_web_ui=False,
        help="Seconds between two scrapes of --server-metrics (env SERVER_METRICS_INTERVAL; default 2)",
    )


def _fetch(url: str, timeout: float) -> tuple[bytes | None, str | None]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.read(1 << 24), None
    except urllib.error.HTTPError as exc:
        return None, f"HTTP {exc.code}"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return None, str(reason) or type(exc).__name__


def install_server_scrape(environment: Any, m: Any) -> None:
    """On the master or the single process: scrape ``--server-metrics`` during each run (exit 2 on a bad URL)."""
    import sys

    import gevent
    from locust.runners import WorkerRunner

    opts = environment.parsed_options
    if opts is None or isinstance(environment.runner, WorkerRunner):
        return
    try:
        urls = parse_urls(getattr(opts, "server_metrics", None))
    except ValueError as exc:
        log.error("%s", exc)
        sys.exit(2)
    if not urls:
        return
    interval = float(getattr(opts, "server_metrics_interval", 2.0) or 0.0)
    if not math.isfinite(interval) or interval <= 0:
        log.error("--server-metrics-interval/SERVER_METRICS_INTERVAL: expected seconds > 0, got %r", interval)
        sys.exit(2)
    data = ServerSeries(urls, interval)
    timeout = min(interval, 5.0)
    state: dict[str, Any] = {"greenlet": None}

    def scrape() -> None:
        bodies = []
        for url in urls:
            body, reason = _fetch(url, timeout)
            bodies.append((url, body, reason))
        data.add_round(time.time(), bodies)

    def loop() -> None:
        while True:
            t0 = time.monotonic()
            scrape()
            gevent.sleep(max(0.0, interval - (time.monotonic() - t0)))

    def on_start(**_kw: Any) -> None:
        data.reset()
        if state["greenlet"] is None:
            state["greenlet"] = gevent.spawn(loop)

    def on_stop(**_kw: Any) -> None:
        g = state["greenlet"]
        if g is not None:
            g.kill(block=True)
            state["greenlet"] = None
            scrape()  # the end values

    def client_ttft() -> dict[str, Any] | None:
        h = m.store.select_hist("llm_ttft_ms")
        if h is None:
            return None
        p50, p95 = h.percentiles((50.0, 95.0))
        return {"metric": "llm_ttft_ms", "p50_ms": p50, "p95_ms": p95, "count": h.count}

    environment.events.test_start.add_listener(on_start)
    environment.events.test_stop.add_listener(on_stop)
    m.on_reset.append(data.reset)
    m.json_sections[JSON_KEY] = lambda: data.report(client_ttft())
    m.text_sections.append(lambda: format_report(data.report(client_ttft())))
