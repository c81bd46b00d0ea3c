"""The metrics core's command-line options (``--thresholds``, ``--summary-json``, ``--html-report``,
``--accept-schedule-miss``, ``--accept-saturation``) and the start-up check of the output paths.

Every option also reads an environment variable (Locust's ``env_var``); the other parts of the metrics
(exporter, cluster, requests log, server scrape) add their own in ``llm_metrics.hooks``.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from llm_metrics.outputs.files import unwritable_reason

log = logging.getLogger(__name__)

OUTPUT_OPTIONS = (("summary_json", "--summary-json"), ("html_report", "--html-report"))


def check_output_paths(opts: Any) -> None:
    """Stop at start-up (exit 2) when an output file of the run (JSON summary, HTML report) cannot be written."""
    for attr, flag in OUTPUT_OPTIONS:
        path = str(getattr(opts, attr, "") or "")
        if not path:
            continue
        why = unwritable_reason(path)
        if why is not None:
            log.error("%s %s: cannot write the file there: %s", flag, path, why)
            sys.exit(2)


def add_metrics_arguments(parser: Any, suite: str, default_thresholds: str) -> None:
    parser.add_argument(
        "--thresholds",
        env_var="THRESHOLDS",
        default=default_thresholds,
        help="YAML file of k6-syntax thresholds and goodput SLOs (env THRESHOLDS)",
    )
    parser.add_argument(
        "--summary-json",
        env_var="SUMMARY_JSON",
        default=f"out/summary-{suite}.json",
        help="Where the JSON summary is written at the end; empty: not written (env SUMMARY_JSON)",
    )
    parser.add_argument(
        "--html-report",
        env_var="HTML_REPORT",
        default="",
        help="Where the HTML report (thresholds, tables, plots over time) is written at the end, after the "
        "thresholds are evaluated; empty: not written (env HTML_REPORT)",
    )
    parser.add_argument(
        "--accept-schedule-miss",
        env_var="ACCEPT_SCHEDULE_MISS",
        action="store_true",
        default=False,
        help="Open model: a schedule not kept (issued < 90%% of the expected arrivals, or over 5%% dropped) is "
        "reported but does not make the verdict untrustworthy (exit 98) (env ACCEPT_SCHEDULE_MISS)",
    )
    parser.add_argument(
        "--accept-saturation",
        env_var="ACCEPT_SATURATION",
        action="store_true",
        default=False,
        help="A saturated load generator (the saturation: rules of the thresholds file) is reported but does not "
        "make the verdict untrustworthy (exit 98) (env ACCEPT_SATURATION)",
    )
