"""Helpers for tests that run Locust as users do: a subprocess with the suite's locustfiles."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llm_metrics.histogram import Histogram

ROOT = Path(__file__).resolve().parents[1]
LOCUSTFILES = ROOT / "locustfiles"


@dataclass
class LocustRun:
    returncode: int
    output: str
    summary: dict[str, Any] | None

    def rollup(self, metric: str, scenario: str = "") -> dict[str, Any] | None:
        assert self.summary is not None, self.output[-3000:]
        want = {"scenario": scenario} if scenario else {}
        for r in self.summary["rollups"]:
            if r["name"] == metric and r["tags"] == want:
                return r
        return None

    def hist(self, metric: str, **filt: str) -> Histogram:
        """The merge of every series of ``metric`` whose tags contain ``filt``."""
        assert self.summary is not None, self.output[-3000:]
        h = Histogram()
        for m in self.summary["metrics"]:
            if m["name"] == metric and all(m["tags"].get(k) == v for k, v in filt.items()):
                h.merge(Histogram.from_wire(m["hist"]))
        return h

    def counter(self, metric: str, **filt: str) -> float:
        assert self.summary is not None, self.output[-3000:]
        return sum(
            c["count"]
            for c in self.summary["counters"]
            if c["name"] == metric and all(c["tags"].get(k) == v for k, v in filt.items())
        )

    def rate(self, metric: str, **filt: str) -> tuple[int, int]:
        assert self.summary is not None, self.output[-3000:]
        hits = total = 0
        for r in self.summary["rates"]:
            if r["name"] == metric and all(r["tags"].get(k) == v for k, v in filt.items()):
                hits += r["hits"]
                total += r["total"]
        return hits, total


def locust_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOCUST_", "PYTEST_"))}
    for knob in ("BASE", "BASE_URL", "OSIRIS_URL", "API_KEY", "LOADTEST_TOKEN", "THRESHOLDS", "SUMMARY_JSON", "API"):
        env.pop(knob, None)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


def run_locust(
    locustfile: str,
    args: list[str],
    env: dict[str, str],
    tmp_path: Path,
    timeout: float = 90.0,
) -> LocustRun:
    """Run ``locust -f locustfiles/<locustfile> <args>`` headless; read the JSON summary it writes."""
    summary = tmp_path / f"summary-{len(list(tmp_path.iterdir()))}.json"
    full_env = locust_env({"SUMMARY_JSON": str(summary), **env})
    cmd = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILES / locustfile), "--headless", *args]
    proc = subprocess.run(
        cmd, cwd=ROOT, env=full_env, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
    )
    output = proc.stdout + proc.stderr
    data = json.loads(summary.read_text()) if summary.exists() else None
    return LocustRun(proc.returncode, output, data)
