"""The engine and the report's pure parts import neither Locust, gevent nor Flask (design.md section 8)."""

from __future__ import annotations

import subprocess
import sys

PURE = (
    "llm_metrics.monitors.server_series",
    "llm_metrics.outputs.charts",
    "llm_metrics.outputs.compare",
    "llm_metrics.outputs.report_capacity",
    "llm_metrics.outputs.report_html",
    "llm_metrics.outputs.report_plots",
    "llm_metrics.outputs.report_sections",
    "llm_metrics.outputs.report_server",
)


def test_every_engine_module_and_the_report_modules_import_no_locust() -> None:
    code = (
        "import importlib, pkgutil, sys, llm_metrics.engine as engine\n"
        "names = ['llm_metrics.engine.' + m.name for m in pkgutil.iter_modules(engine.__path__)]\n"
        f"names += {list(PURE)!r}\n"
        "for name in names: importlib.import_module(name)\n"
        "print(len(names), sorted(m for m in ('flask', 'locust', 'gevent') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    count, loaded = out.stdout.strip().split(" ", 1)
    assert int(count) > len(PURE) + 10, out.stdout  # the engine's modules were found and imported
    assert loaded == "[]", out.stdout
