"""The workload suite's prompt-length calibration: one fit per process of the server's prompt tokens.

``--calibrate`` (default on) sends two or three probes (``max_tokens: 1``, outside Locust's statistics) and fits
the server's ``usage.prompt_tokens`` against the generator's local count (``synthetic.Calibration``);
``--tokenizer`` sizes the prompts with the local tokenizer instead, without probing. The first User of a
process to need it runs the calibration; the others wait for it. A worker tells the master its fit
(``CALIBRATION_MESSAGE``), which the summary lists per worker.
"""

from __future__ import annotations

import json
import logging
import random
import urllib.error
import urllib.request
from typing import Any

from gevent.event import Event
from locust.runners import WorkerRunner

from llm_users.client.openai_stream import StreamError
from llm_users.common.target_binding import no_redirect_opener
from llm_users.common.tokenizer import TokenCounter
from llm_users.common.tokenizer import active as tokenizer_active
from llm_users.workload.options import WorkloadSettings
from llm_users.workload.synthetic import Calibration, SyntheticText

__all__ = ["CALIBRATION_MESSAGE", "PROBE_TOKENS", "Calibrator", "probe_prompt_tokens"]

log = logging.getLogger(__name__)

CALIBRATION_MESSAGE = "llm_workload_calibration"
PROBE_TOKENS = (8, 256, 1024)  # the smallest pins the template constant, the largest the ratio


class Calibrator:
    """This process's calibration (``calibration``, ``None`` until run) and, on the master, each worker's fit."""

    def __init__(self, environment: Any, settings: WorkloadSettings, text: SyntheticText) -> None:
        self.environment = environment
        self.settings = settings
        self.text = text
        self.calibration: Calibration | None = None
        self.note = ""
        self.per_worker: dict[str, str] = {}  # master: each worker's fit, by client id
        self._running: Event | None = None

    def ensure(self) -> Calibration:
        """The process's calibration; the first caller probes the server, the others wait for it."""
        if self.calibration is not None:
            return self.calibration
        if self._running is not None:
            self._running.wait(timeout=60.0)
            return self.calibration or Calibration()
        self._running = Event()
        try:
            counter = tokenizer_active()
            if counter is not None:  # --tokenizer: prompts sized with the local tokenizer, no probe of the server
                self.calibration = self._fit_tokenizer(counter)
            else:
                self.calibration = self._probe() if self.settings.calibrate else Calibration()
                if not self.settings.calibrate:
                    self.note = "calibration off (--calibrate false)"
            log.info("workload: prompt length: %s", self.describe())
            runner = self.environment.runner
            if isinstance(runner, WorkerRunner):
                runner.send_message(CALIBRATION_MESSAGE, {"fit": self.describe()})
        finally:
            self._running.set()
        return self.calibration

    def describe(self) -> str:
        """The note, or the fit (a calibration must have run)."""
        assert self.calibration is not None
        return self.note or self.calibration.describe()

    def received(self, environment: Any, msg: Any, **_kw: Any) -> None:
        """Master: a worker's fit (``CALIBRATION_MESSAGE``)."""
        self.per_worker[str(msg.node_id)] = str((msg.data or {}).get("fit", ""))

    def _fit_tokenizer(self, counter: TokenCounter) -> Calibration:
        """The generator's text counted by the local tokenizer at the probe lengths (``tokenizer``)."""
        rng = random.Random(self.settings.seed ^ 0xCA1)
        points = [(n, counter.count(self.text.text(n, rng))) for n in PROBE_TOKENS]
        try:
            fit = Calibration.fit(points)
        except ValueError as exc:
            self.note = f"not sized by the tokenizer {counter.source} ({exc})"
            return Calibration()
        self.note = f"sized with the tokenizer {counter.source}: {fit.describe()}"
        return fit

    def _probe(self) -> Calibration:
        s = self.settings
        points: list[tuple[int, int]] = []
        rng = random.Random(s.seed ^ 0xCA1)
        base = str(self.environment.host or s.base).rstrip("/")  # a worker gets the host from the master
        problem = ""
        for n in PROBE_TOKENS:
            try:
                served = probe_prompt_tokens(s, base, self.text.text(n, rng))
            except (OSError, ValueError) as exc:  # e.g. a probe longer than the model's context: use the others
                problem = str(exc)
                log.warning("workload: calibration probe of %d tokens failed: %s", n, exc)
                continue
            if served is None:
                problem = "the server sent no usage.prompt_tokens"
                break
            points.append((n, served))
        try:
            return Calibration.fit(points)
        except ValueError as exc:
            self.note = f"not calibrated ({problem or exc}); assuming the mock's counting rule"
            return Calibration()

    def json(self) -> dict[str, Any]:
        """The summary's ``workload.calibration``."""
        if self.per_worker:
            return {"per_worker": dict(sorted(self.per_worker.items()))}
        cal = self.calibration
        if cal is None:
            return {"note": "no calibration in this process"}
        out: dict[str, Any] = {"overhead": round(cal.overhead, 3), "ratio": round(cal.ratio, 5)}
        out["probes"] = [{"local_tokens": x, "prompt_tokens": y} for x, y in cal.points]
        if self.note:
            out["note"] = self.note
        return out


def probe_prompt_tokens(s: WorkloadSettings, base: str, text: str) -> int | None:
    """One non-streamed call with ``max_tokens: 1`` outside Locust's statistics: the server's prompt tokens
    (of the API the run uses, read by its own parser)."""
    api = s.api
    body = json.dumps(api.payload(s.model, [{"role": "user", "content": text}], stream=False, max_tokens=1)).encode()
    headers = {
        "Content-Type": "application/json",
        "Accept": "application/json",
        **api.headers(s.target.headers_for(base)),
    }
    req = urllib.request.Request(base + api.path, data=body, headers=headers, method="POST")
    timeout = min(s.target.call_timeout_s, 60.0)
    try:
        with no_redirect_opener().open(req, timeout=timeout) as resp:
            raw = resp.read()
    except urllib.error.HTTPError as exc:
        raise OSError(f"probe answered HTTP {exc.code}") from None
    try:
        value = api.parse_json(raw).prompt_tokens
    except StreamError:
        return None
    return value if isinstance(value, int) and value > 0 else None
