"""The catalogue of the metrics core's extension points: what a suite, a shape or an output may plug in.

Each extension point is one typed attribute of :class:`Extensions`, documented where it is declared (the
model is Locust's ``Events``). The metrics core (``LLMMetrics``) is an ``Extensions``: a suite reaches the
points on it, e.g. ``state(environment).metrics.text_sections.append(fn)``. Every point runs where the
verdict is made (the master, or the local runner) unless its docstring says otherwise; a worker writes only
its own view (``json_sections``).

Two more points are not on ``LLMMetrics``:

* ``install_metrics(..., registry=...)``: a suite's own metric names (``MetricRegistry.register``), so its
  thresholds can name them;
* ``SuiteState.extra_secrets`` (``llm_metrics.state``): secrets to mask, given before the metrics exist
  (``llm_users.common.security.add_extra_secret``).

No Locust import; nothing happens at import.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from llm_metrics.core import LLMMetrics
    from llm_metrics.engine.thresholds import ThresholdResult

Verdict = Callable[["LLMMetrics"], tuple[list["ThresholdResult"], bool]]
"""A verdict that replaces the whole-run evaluation: the threshold results to report, and whether the run passed."""


class Extensions:
    """The extension points of the metrics core; each starts empty."""

    before_verdict: list[Callable[[LLMMetrics], None]]
    """Called at quit, in order, before the thresholds are evaluated, e.g. to record the gateway's
    ``recovery_time`` into the store or take the sidecar's last server scrape."""

    verdict: Verdict | None
    """When set (the capacity search), replaces the whole-run evaluation at quit: returns the threshold results
    to report and whether the run passed (the exit code follows it). Also keeps the abortOnFail checks off."""

    trust_checks: list[Callable[[], list[str]]]
    """Each gives the reasons (if any) why the merged data is incomplete, e.g. a lost worker; any reason makes
    the verdict not trustworthy (exit 98 when every threshold passed)."""

    no_data_needs: dict[str, str]
    """Metric name -> what the metric needs from an answer, said better by a suite than ``nodata.NEEDS``
    (e.g. the gateway suite's configured header names for ``gateway_latency``); shown for a threshold
    without data."""

    json_sections: dict[str, Callable[[], Any]]
    """Extra top-level parts of the JSON summary: name -> function giving JSON-able data. Also written into a
    worker's own view (``write_worker_view``) and shown by the web UI's report."""

    text_sections: list[Callable[[], str]]
    """Extra parts of the console report, printed after the tables, in order."""

    after_summary: list[Callable[[dict[str, Any]], None]]
    """Called at quit with the JSON summary once it is written, e.g. to write the HTML report; an exception is
    reported in the console and does not change the verdict."""

    secret_sources: list[Callable[[], list[str]]]
    """Each gives secret values to mask in every output, beyond the secret options and
    ``SuiteState.extra_secrets``; read whenever an output is written."""

    on_reset: list[Callable[[], None]]
    """Called by ``LLMMetrics.reset`` after the store and the series are emptied (Locust's "Reset stats", or a
    new run in the same process), e.g. to empty the live charts or the server-metrics series."""

    def __init__(self) -> None:
        self.before_verdict = []
        self.verdict = None
        self.trust_checks = []
        self.no_data_needs = {}
        self.json_sections = {}
        self.text_sections = []
        self.after_summary = []
        self.secret_sources = []
        self.on_reset = []
