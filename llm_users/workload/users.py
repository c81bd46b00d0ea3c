"""The workload suite: realistic LLM traffic of chosen prompt and answer lengths, conversations and traces.

``install_workload(events)`` (called by ``locustfiles/workload.py``) adds the knobs (``workload_options``),
validates them at start-up and runs one of three workloads; ``WorkloadUser`` does the calls:

* **closed** (default): every User holds a conversation of ``--turns`` turns: the first question is a synthetic
  prompt of ``--input-tokens`` (in the server's tokens), each next turn sends the history (earlier questions
  and answers) plus a ``--followup-tokens`` question, so the prompt grows and a prefix cache matters; then a new
  conversation. ``--think-time`` between turns. The load is the number of Users (``-u``, or a shape's).
* **open**: arrivals at ``--rate`` per second (whole test, divided across workers) handed to idle Users (k6's
  ``constant-arrival-rate``; none idle: ``dropped_iterations``); each arrival is the next turn of the taking
  User's conversation. ``environment.llm_rate_control.set_rate(r)`` changes the rate during the run (the
  capacity search's rate mode); the master forwards it to the workers.
* **trace**: ``--trace`` (JSONL, see ``workload_trace``) replayed at its offsets times ``--trace-time-scale``;
  each record's prompt and answer lengths, its conversation's history (a conversation's next request waits for
  the answer to the one before). ``llm_schedule_lag_ms`` shows how late each send was; the run lasts the trace
  (``-t`` not given, headless).

Prompt length: one process-wide calibration (``--calibrate``) sends two probes (``max_tokens: 1``, outside
Locust's statistics) and fits the server's ``usage.prompt_tokens`` against the generator's local count
(``synthetic.Calibration``). Every call whose whole prompt had a target length records how far the server's
count was from it: ``input_len_error_pct`` (trend, absolute %), ``input_tokens_requested`` and
``input_tokens_served`` (counters; their ratio is the bias). The summary's ``workload`` section and the console
report say how close it came, with each process's fit.

Tags: scenario ``workload`` (closed, open) or ``trace``; prompt ``turn1``, ``turn2``, ... (``trace`` for trace
records), so TTFT and prompt tokens per turn show in the tables.
"""

from __future__ import annotations

import json
import logging
import math
import random
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import gevent
from gevent.event import Event
from gevent.lock import Semaphore
from locust import FastHttpUser, task
from locust.runners import MasterRunner, WorkerRunner

from llm_metrics.engine.adherence import ArrivalLedger
from llm_metrics.engine.histogram import Histogram
from llm_metrics.engine.thresholds import MetricRegistry, default_registry
from llm_users.client.call import Timeouts, llm_call
from llm_users.client.openai_stream import JsonAnswer, StreamError, parse_chat_json
from llm_users.common.options import OptionError
from llm_users.common.prompts import PromptError
from llm_users.common.security import install_security
from llm_users.common.target_binding import LocalSecrets, local_secrets, no_redirect_opener
from llm_users.common.tokenizer import TokenCounter, add_tokenizer_argument, configure_from_options
from llm_users.common.tokenizer import active as tokenizer_active
from llm_users.pacing.arrival import ArrivalSpec, arrival_times
from llm_users.pacing.dispatch import ScheduleDispatcher
from llm_users.pacing.open_start import READY_S, spawn_pool_at_once
from llm_users.workload.conversation import Conversation, Conversations
from llm_users.workload.options import WorkloadSettings, add_workload_arguments, workload_settings
from llm_users.workload.synthetic import Calibration, SyntheticText, local_tokens
from llm_users.workload.trace import MIN_QUESTION_TOKENS, TraceError, TraceRecord, duration, schedule

__all__ = [
    "INPUT_ERROR",
    "INPUT_REQUESTED",
    "INPUT_SERVED",
    "WorkloadRuntime",
    "WorkloadUser",
    "install_workload",
    "runtime",
    "workload_registry",
]

log = logging.getLogger(__name__)

CHAT_PATH = "/v1/chat/completions"
SCENARIO = "workload"
TRACE_SCENARIO = "trace"
SHARE_MESSAGE = "llm_workload_share"
SHARE_REQUEST = "llm_workload_share_request"
CALIBRATION_MESSAGE = "llm_workload_calibration"
ACTIVE_WORKER_STATES = ("ready", "spawning", "running")
GRACEFUL_STOP_S = 30.0
PROBE_TOKENS = (8, 256, 1024)  # the smallest pins the template constant, the largest the ratio
MAX_TURN_TAG = 50
INPUT_ERROR = "input_len_error_pct"
INPUT_REQUESTED = "input_tokens_requested"
INPUT_SERVED = "input_tokens_served"


def workload_registry() -> MetricRegistry:
    """The default metrics plus the workload suite's prompt-length accuracy metrics."""
    reg = default_registry()
    reg.register(INPUT_ERROR, "trend")
    reg.register(INPUT_REQUESTED, "counter")
    reg.register(INPUT_SERVED, "counter")
    return reg


class _AnswerText:
    """A ``parse_json`` for ``llm_call`` that also keeps the answer's text (non-streamed chat calls; the other
    APIs' answers are replaced by a stand-in of their length in the history)."""

    __slots__ = ("parse", "text")

    def __init__(self, parse: Callable[[bytes], JsonAnswer] = parse_chat_json) -> None:
        self.text: str | None = None
        self.parse = parse

    def __call__(self, body: bytes) -> JsonAnswer:
        answer = self.parse(body)
        try:
            content = json.loads(body)["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError):
            content = None
        self.text = content if isinstance(content, str) else None
        return answer


class _Turns:
    """A trace conversation's requests in order: each waits for the answer of the one before (a user reads the
    answer before asking again); the wait shows in the schedule lag. Bounded: only conversations in flight."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[Semaphore, int]] = {}

    @contextmanager
    def turn(self, conversation_id: str) -> Iterator[None]:
        sem, users = self._locks.get(conversation_id, (None, 0))
        if sem is None:
            sem = Semaphore()
        self._locks[conversation_id] = (sem, users + 1)
        try:
            with sem:
                yield
        finally:
            sem, users = self._locks[conversation_id]
            if users <= 1:
                del self._locks[conversation_id]
            else:
                self._locks[conversation_id] = (sem, users - 1)


class WorkloadRuntime:
    """Per-environment state: settings, calibration, this process's share and dispatcher, trace conversations."""

    def __init__(self, environment: Any, settings: WorkloadSettings) -> None:
        self.environment = environment
        self.settings = settings
        self.rate = settings.rate
        self.rate_overridden = False  # set_rate (or the master's share) decides the rate until the run stops
        self.text = SyntheticText()
        self.calibration: Calibration | None = None
        self.calibration_note = ""
        self._calibrating: Event | None = None
        self.calibrations: dict[str, str] = {}  # master: each worker's fit, by client id
        self.conversations = Conversations()
        self.turns = _Turns()
        self.dispatcher: ScheduleDispatcher | None = None
        self._pending: gevent.Greenlet | None = None  # the first start, waiting for the calibration
        self.trace_t0: float | None = None
        self.rank = 0
        self.workers = 1
        self.share_ids: list[str] | None = None
        self.share_watch: Any = None
        self.share_known = False
        self.armed = False
        self.spawn_done = False
        self._user_seq = 0

    # -- users' generators -----------------------------------------------------------------------------

    def user_rng(self) -> random.Random:
        """A generator per User: distinct texts per User, repeatable with ``--seed`` (per process)."""
        self._user_seq += 1
        rank = self.rank if isinstance(self.environment.runner, WorkerRunner) else 0
        return random.Random(self.settings.seed * 1_000_003 + rank * 100_003 + self._user_seq)

    # -- calibration -----------------------------------------------------------------------------------

    def ensure_calibrated(self) -> Calibration:
        """The process's calibration; the first caller probes the server, the others wait for it."""
        if self.calibration is not None:
            return self.calibration
        if self._calibrating is not None:
            self._calibrating.wait(timeout=60.0)
            return self.calibration or Calibration()
        self._calibrating = Event()
        try:
            counter = tokenizer_active()
            if counter is not None:  # --tokenizer: prompts sized with the local tokenizer, no probe of the server
                self.calibration = self._fit_tokenizer(counter)
            else:
                self.calibration = self._probe() if self.settings.calibrate else Calibration()
                if not self.settings.calibrate:
                    self.calibration_note = "calibration off (--calibrate false)"
            log.info("workload: prompt length: %s", self.calibration_note or self.calibration.describe())
            runner = self.environment.runner
            if isinstance(runner, WorkerRunner):
                runner.send_message(CALIBRATION_MESSAGE, {"fit": self.calibration_note or self.calibration.describe()})
        finally:
            self._calibrating.set()
        return self.calibration

    def _fit_tokenizer(self, counter: TokenCounter) -> Calibration:
        """The generator's text counted by the local tokenizer at the probe lengths (``tokenizer``)."""
        rng = random.Random(self.settings.seed ^ 0xCA1)
        points = [(n, counter.count(self.text.text(n, rng))) for n in PROBE_TOKENS]
        try:
            fit = Calibration.fit(points)
        except ValueError as exc:
            self.calibration_note = f"not sized by the tokenizer {counter.source} ({exc})"
            return Calibration()
        self.calibration_note = f"sized with the tokenizer {counter.source}: {fit.describe()}"
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
            self.calibration_note = f"not calibrated ({problem or exc}); assuming the mock's counting rule"
            return Calibration()

    # -- schedules (open and trace workloads) ----------------------------------------------------------

    def _items(self, skip_before: float) -> Iterable[tuple[float, Any]]:
        s = self.settings
        if s.mode == "open":
            return ((t, None) for t in arrival_times(ArrivalSpec(self.rate, s.arrival), self.rank, self.workers))
        assert s.trace is not None
        return (
            (t, rec) for t, rec in schedule(s.trace, s.trace_time_scale, self.rank, self.workers) if t >= skip_before
        )

    def start(self) -> None:
        """(Re)start this process's schedule; a trace keeps its start time, so a re-division resumes it.

        The first schedule waits for the calibration (the Users wait for it too, in ``on_start``): the arrivals
        of that time are not issued (a burst of them afterwards would overload the target at once), and the
        ledger of expected arrivals (``llm_metrics.engine.adherence``) counts them as missing. Every schedule starts
        ``READY_S`` after the dispatcher exists, so that the first arrivals find the Users idle.
        """
        self.stop()
        s = self.settings
        if s.mode == "closed" or (s.mode == "open" and self.rate <= 0):
            return
        if self.calibration is None:
            self._pending = gevent.spawn(self._start_when_calibrated)
            return
        self._start_now()

    def _start_when_calibrated(self) -> None:
        self.ensure_calibrated()
        self._pending = None
        self._start_now()

    def _start_now(self) -> None:
        s = self.settings
        # the schedule starts READY_S from now: the Users, napping until a dispatcher exists, are waiting in
        # take() by then, so the first arrivals are not dropped for want of an idle User
        now = time.perf_counter() + READY_S
        t0 = now
        skip = 0.0
        if s.mode == "trace":
            if self.trace_t0 is None:
                self.trace_t0 = now
            t0 = self.trace_t0
            skip = now - t0 - 1e-6 if now > t0 else 0.0
        self.dispatcher = ScheduleDispatcher(self._items(skip), self._dropped, t0, on_issue=self._issued)
        self.dispatcher.start()

    def stop(self) -> None:
        if self._pending is not None:
            self._pending.kill(block=False)
            self._pending = None
        if self.dispatcher is not None:
            self.dispatcher.stop()
            self.dispatcher = None

    def share_ready(self) -> bool:
        return self.share_known or not isinstance(self.environment.runner, WorkerRunner)

    def on_spawning_complete(self, **_kw: Any) -> None:
        self.spawn_done = True
        if self.armed and self.dispatcher is None and self.share_ready():
            self.start()

    def _issued(self, payload: Any) -> None:
        metrics = getattr(self.environment, "llm_metrics", None)
        if metrics is not None:
            metrics.tally(f"issued:{TRACE_SCENARIO if isinstance(payload, TraceRecord) else SCENARIO}")

    def start_ledger(self) -> None:
        """Master or local runner, at test start: the arrivals the run should issue (llm_metrics.engine.adherence)."""
        metrics = getattr(self.environment, "llm_metrics", None)
        s = self.settings
        if metrics is None or s.mode == "closed":
            return
        if s.mode == "trace" and s.trace is not None:
            offsets = [t for t, _rec in schedule(s.trace, s.trace_time_scale, 0, 1)]
            ledger = ArrivalLedger(kind="trace", offsets={TRACE_SCENARIO: offsets})
            ledger.start(time.time())
        else:
            ledger = ArrivalLedger(kind=s.arrival)
            ledger.start(time.time(), {SCENARIO: self.rate})
        metrics.arrival_ledger = ledger

    def _dropped(self, payload: Any) -> None:
        metrics = getattr(self.environment, "llm_metrics", None)
        if metrics is not None:
            scenario = TRACE_SCENARIO if isinstance(payload, TraceRecord) else SCENARIO
            metrics.count("dropped_iterations", {"scenario": scenario})
            metrics.tally(f"dropped:{scenario}")  # this run's ledger (the metric covers the whole session)

    # -- rate control (the capacity search's rate mode) ------------------------------------------------

    def set_rate(self, rate: float) -> None:
        """Change the open workload's arrival rate (whole test) now; master or local runner."""
        if self.settings.mode != "open":
            raise RuntimeError(
                f"the arrival rate can change only in the open workload (--workload open), not {self.settings.mode!r}"
            )
        if not (rate >= 0 and math.isfinite(rate)):
            raise ValueError(f"arrival rate must be a number >= 0, got {rate!r}")
        self.rate = float(rate)
        self.rate_overridden = True
        metrics = getattr(self.environment, "llm_metrics", None)
        ledger = getattr(metrics, "arrival_ledger", None)
        if ledger is not None and ledger.running:
            ledger.set_rates(time.time(), {SCENARIO: self.rate})
        runner = self.environment.runner
        if isinstance(runner, MasterRunner):
            _send_shares(runner, self, _active_workers(runner))
        elif self.armed:
            self.start()

    # -- summary ---------------------------------------------------------------------------------------

    def summary(self) -> dict[str, Any]:
        s = self.settings
        out: dict[str, Any] = {
            "mode": s.mode,
            "api": s.api.name,
            "stream": s.stream and s.api.streams,
            "output_tokens": str(s.output_tokens),
            "ignore_eos": s.ignore_eos,
            "seed": s.seed if s.seed_given else None,
        }
        if s.mode != "trace":
            out.update(input_tokens=str(s.input_tokens), turns=s.turns, followup_tokens=str(s.followup_tokens))
        if s.mode == "closed":
            out["think_time_s"] = str(s.think_time)
        if s.mode == "open":
            out.update(rate=self.rate, arrival=s.arrival)
        if s.mode == "trace" and s.trace is not None:
            out["trace"] = {
                "file": s.trace_path,
                "records": len(s.trace),
                "conversations": len({r.conversation_id for r in s.trace if r.conversation_id}),
                "time_scale": s.trace_time_scale,
                "duration_s": duration(s.trace, s.trace_time_scale),
            }
        out["calibration"] = self._calibration_json()
        out["input_accuracy"] = input_accuracy(getattr(self.environment, "llm_metrics", None))
        return out

    def _calibration_json(self) -> dict[str, Any]:
        if self.calibrations:
            return {"per_worker": dict(sorted(self.calibrations.items()))}
        cal = self.calibration
        if cal is None:
            return {"note": "no calibration in this process"}
        out: dict[str, Any] = {"overhead": round(cal.overhead, 3), "ratio": round(cal.ratio, 5)}
        out["probes"] = [{"local_tokens": x, "prompt_tokens": y} for x, y in cal.points]
        if self.calibration_note:
            out["note"] = self.calibration_note
        return out

    def text_section(self) -> str:
        data = self.summary()
        lines = [f"WORKLOAD: {data['mode']}"]
        acc = data["input_accuracy"]
        if acc.get("calls"):
            lines.append(
                f"  prompt length vs target (server's usage.prompt_tokens): {acc['calls']} calls, "
                f"error p50 {acc['error_pct_p50']:.1f}%, p95 {acc['error_pct_p95']:.1f}%, "
                f"max {acc['error_pct_max']:.1f}%; served/requested {acc['served_over_requested']:.3f}"
            )
        else:
            lines.append("  prompt length vs target: no call reported usage.prompt_tokens")
        cal = data["calibration"]
        if "per_worker" in cal:
            for worker, text in cal["per_worker"].items():
                lines.append(f"  calibration ({worker}): {text}")
        elif self.calibration is not None:
            lines.append(f"  calibration: {self.calibration_note or self.calibration.describe()}")
        if "trace" in data:
            tr = data["trace"]
            lines.append(
                f"  trace {tr['file']}: {tr['records']} requests, {tr['conversations']} conversations, "
                f"{tr['duration_s']:.1f} s at time scale {tr['time_scale']:g}"
            )
        return "\n".join(lines) + "\n"


def input_accuracy(metrics: Any) -> dict[str, Any]:
    """How close the prompts came to their target lengths, from the (merged) store."""
    if metrics is None:
        return {}
    store = metrics.store
    h: Histogram | None = store.select_hist(INPUT_ERROR)
    requested = store.select_counter(INPUT_REQUESTED) or 0.0
    served = store.select_counter(INPUT_SERVED) or 0.0
    if h is None or not h.count:
        return {"calls": 0}
    p50, p95 = h.percentiles((50.0, 95.0))
    return {
        "calls": h.count,
        "error_pct_p50": p50,
        "error_pct_p95": p95,
        "error_pct_max": h.vmax,
        "error_pct_avg": h.mean,
        "requested_tokens": requested,
        "served_tokens": served,
        "served_over_requested": served / requested if requested else None,
    }


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


# -- distributed: shares of the open and trace workloads ------------------------------------------------


def _active_workers(runner: Any, joining: str | None = None) -> list[str]:
    ids = {c.id for c in list(runner.clients.values()) if c.state in ACTIVE_WORKER_STATES}
    if joining:
        ids.add(joining)
    return sorted(ids)


def _send_shares(runner: Any, rt: WorkloadRuntime, ids: list[str]) -> None:
    rt.share_ids = ids
    runner.send_message(
        SHARE_MESSAGE, {"workers": len(ids), "ranks": {cid: i for i, cid in enumerate(ids)}, "rate": rt.rate}
    )


def _watch_workers(runner: Any, rt: WorkloadRuntime) -> None:
    while True:
        gevent.sleep(1.0)
        ids = _active_workers(runner)
        if ids and ids != rt.share_ids:
            log.info("workload: %d active workers (were %d): schedules re-divided", len(ids), len(rt.share_ids or ()))
            _send_shares(runner, rt, ids)


def _stop_watch(rt: WorkloadRuntime) -> None:
    if rt.share_watch is not None:
        rt.share_watch.kill(block=False)
        rt.share_watch = None
    rt.share_ids = None


def _attach_sections(environment: Any, rt: WorkloadRuntime) -> None:
    """The ``workload`` part of the JSON summary and of the console report (once; where the verdict is made)."""
    metrics = getattr(environment, "llm_metrics", None)
    if metrics is None or "workload" in metrics.json_sections:
        return
    metrics.json_sections["workload"] = lambda: runtime(environment).summary()
    metrics.text_sections.append(lambda: runtime(environment).text_section())


def runtime(environment: Any) -> WorkloadRuntime:
    rt = getattr(environment, "llm_workload", None)
    if rt is None:
        raise RuntimeError(
            "the workload suite is not installed: call llm_users.workload.users.install_workload(events)"
        )
    return rt


def _settings_or_exit(opts: Any, local: LocalSecrets | None = None) -> WorkloadSettings:
    try:
        return workload_settings(opts, local)
    except (OptionError, TraceError, PromptError) as exc:
        log.error("workload suite: %s", exc)
        sys.exit(2)


def install_workload(events: Any) -> None:
    """Register the workload suite's arguments and listeners on Locust's ``events``."""
    install_security(events)  # first: the suite reads the secrets as it binds them

    @events.init_command_line_parser.add_listener
    def _args(parser: Any, **_kw: Any) -> None:
        add_workload_arguments(parser)
        add_tokenizer_argument(parser)

    @events.init.add_listener
    def _init(environment: Any, **_kw: Any) -> None:
        opts = environment.parsed_options
        if opts is None:
            return
        configure_from_options(opts)
        settings = _settings_or_exit(opts, local_secrets(environment))
        rt = WorkloadRuntime(environment, settings)
        environment.llm_workload = rt
        # open and trace: the Users are a pool spawned at once, the schedule runs from the test start
        spawn_pool_at_once(environment, "workload", lambda: rt.settings.mode != "closed")
        environment.events.spawning_complete.add_listener(rt.on_spawning_complete)
        if not opts.worker and not getattr(opts, "stop_timeout", None):
            opts.stop_timeout = environment.stop_timeout = GRACEFUL_STOP_S  # calls in flight finish (k6 gracefulStop)
        if opts.base or not environment.host:
            environment.host = settings.base
        if (
            settings.mode == "trace"
            and settings.trace is not None
            and getattr(opts, "headless", False)
            and not getattr(opts, "run_time", None)
            and not opts.worker
            and environment.shape_class is None
        ):
            # the Users are spawned at once (open_start): the trace plus a margin for the last answers
            opts.run_time = math.ceil(duration(settings.trace, settings.trace_time_scale) + 2)
        runner = environment.runner
        if not isinstance(runner, WorkerRunner):
            environment.llm_rate_control = rt
            _attach_sections(environment, rt)
        if isinstance(runner, WorkerRunner):

            def _share(environment: Any, msg: Any, **_k: Any) -> None:
                before = (rt.rank, rt.workers, rt.rate)
                rt.workers = max(1, int(msg.data.get("workers", 1)))
                rt.rank = int(msg.data.get("ranks", {}).get(runner.client_id, 0)) % rt.workers
                rt.rate = float(msg.data.get("rate", rt.rate))
                rt.rate_overridden = rt.share_known = True
                changed = rt.dispatcher is not None and (rt.rank, rt.workers, rt.rate) != before
                waiting = rt.dispatcher is None and rt.armed
                if changed or waiting:
                    rt.start()  # a new share, or the test started before the share came

            runner.register_message(SHARE_MESSAGE, _share)
            if runner.worker_state in ("spawning", "running"):
                rt.armed = rt.spawn_done = True
            runner.send_message(SHARE_REQUEST)
        if isinstance(runner, MasterRunner):

            def _share_request(environment: Any, msg: Any, **_k: Any) -> None:
                if rt.share_ids is not None:
                    _send_shares(runner, rt, _active_workers(runner, msg.node_id))

            def _calibration(environment: Any, msg: Any, **_k: Any) -> None:
                rt.calibrations[str(msg.node_id)] = str((msg.data or {}).get("fit", ""))

            runner.register_message(SHARE_REQUEST, _share_request)
            runner.register_message(CALIBRATION_MESSAGE, _calibration)

    @events.test_start.add_listener
    def _start(environment: Any, **_kw: Any) -> None:
        rt = getattr(environment, "llm_workload", None)
        if rt is None:
            return
        runner = environment.runner
        if environment.parsed_options is not None:
            try:  # the web UI may have changed the knobs since start-up
                rt.settings = workload_settings(environment.parsed_options, local_secrets(environment))
                if not rt.rate_overridden:  # the capacity search (or the master) may have set it already
                    rt.rate = rt.settings.rate
            except (OptionError, TraceError, PromptError) as exc:
                log.error("workload suite: %s; stopping", exc)
                runner.quit()
                return
        rt.trace_t0 = None
        if not isinstance(runner, WorkerRunner):
            _attach_sections(environment, rt)  # install_metrics may have come after install_workload
            rt.start_ledger()
        if isinstance(runner, MasterRunner):
            _stop_watch(rt)
            _send_shares(runner, rt, _active_workers(runner))
            rt.share_watch = gevent.spawn(_watch_workers, runner, rt)
            return
        rt.armed = True
        rt.spawn_done = False
        if rt.share_ready():
            rt.start()  # the schedule runs from the test start (the Users are spawned at once, open_start)

    def _halt(environment: Any, **_kw: Any) -> None:
        rt = getattr(environment, "llm_workload", None)
        if rt is not None:
            rt.armed = False
            rt.stop()
            _stop_watch(rt)

    def _stopped(environment: Any, **kw: Any) -> None:
        _halt(environment, **kw)
        rt = getattr(environment, "llm_workload", None)
        if rt is not None:
            rt.rate_overridden = False

    events.test_stopping.add_listener(_halt)
    events.test_stop.add_listener(_stopped)


class WorkloadUser(FastHttpUser):
    """Runs conversations (closed, open) or replays trace records (trace); see the module docstring."""

    abstract = True  # the locustfile declares the concrete class

    def wait_time(self) -> float:
        rt = runtime(self.environment)
        if rt.settings.mode != "closed":
            return 0.0
        return rt.settings.think_time.sample(self.rng)

    def on_start(self) -> None:
        rt = runtime(self.environment)
        self.rng = rt.user_rng()
        self.conversation: Conversation | None = None
        self._conversations = 0
        rt.ensure_calibrated()

    @task
    def work(self) -> None:
        rt = runtime(self.environment)
        mode = rt.settings.mode
        if mode == "closed":
            self.turn(None)
            return
        dispatcher = rt.dispatcher
        if dispatcher is None:
            gevent.sleep(0.05)
            return
        ticket = dispatcher.take(timeout=1.0)
        if ticket is None:
            return
        if isinstance(ticket.payload, TraceRecord):
            self.replay(ticket.payload, ticket.scheduled)
        else:
            self.turn(ticket.scheduled)

    # -- conversations (closed, open) ------------------------------------------------------------------

    def turn(self, scheduled: float | None) -> None:
        """The next turn of this User's conversation (a new conversation after ``--turns`` turns)."""
        rt = runtime(self.environment)
        s = rt.settings
        conv = self.conversation
        if conv is None or conv.turns >= s.turns:
            self._conversations += 1
            conv = self.conversation = Conversation(f"{id(self):x}-{self._conversations}")
        cal = rt.calibration or Calibration()
        target: int | None = None  # a later turn: the history's length is the server's, only the question is sized
        if not conv.history:
            target = s.input_tokens.sample_int(self.rng)
            local = cal.local_for(target)
        else:
            local = cal.local_for(s.followup_tokens.sample_int(self.rng), with_overhead=False)
        question = rt.text.text(local, self.rng)
        number = conv.turns + 1
        tag = f"turn{number}" if number < MAX_TURN_TAG else f"turn{MAX_TURN_TAG}+"
        self._call(conv, question, s.output_tokens.sample_int(self.rng), SCENARIO, tag, scheduled, target)

    # -- trace records ---------------------------------------------------------------------------------

    def replay(self, record: TraceRecord, scheduled: float) -> None:
        """One trace record: its prompt length (history included), its answer length, its conversation."""
        if record.conversation_id is None:
            self._replay(record, scheduled)
            return
        with runtime(self.environment).turns.turn(record.conversation_id):
            self._replay(record, scheduled)

    def _replay(self, record: TraceRecord, scheduled: float) -> None:
        rt = runtime(self.environment)
        cal = rt.calibration or Calibration()
        conv = rt.conversations.get(record.conversation_id) if record.conversation_id is not None else None
        if conv is not None and conv.history:
            history = conv.history_tokens
            if history is None:  # no usage came back: estimate the history with the calibration
                history = round(cal.predict(sum(local_tokens(m["content"]) for m in conv.history)))
            new = max(MIN_QUESTION_TOKENS, record.input_tokens - history)
            question = rt.text.text(cal.local_for(new, with_overhead=False), self.rng)
        else:
            question = rt.text.text(cal.local_for(record.input_tokens), self.rng)
        self._call(conv, question, record.output_tokens, TRACE_SCENARIO, TRACE_SCENARIO, scheduled, record.input_tokens)

    # -- one call --------------------------------------------------------------------------------------

    def _call(
        self,
        conv: Conversation | None,
        question: str,
        max_tokens: int,
        scenario: str,
        tag: str,
        scheduled: float | None,
        target: int | None,
    ) -> None:
        rt = runtime(self.environment)
        s = rt.settings
        messages = conv.messages(question) if conv is not None else [{"role": "user", "content": question}]
        sent_with = len(messages) - 1
        api = s.api
        stream = s.stream and api.streams
        payload = api.payload(s.model, messages, stream=stream, max_tokens=max_tokens, tools=s.tools)
        if s.ignore_eos and api.name in ("chat", "completions"):
            payload["ignore_eos"] = True
        answer = _AnswerText(api.parse_json)
        rec = llm_call(
            self.client,
            api.path,
            payload,
            stream=stream,
            scenario=scenario,
            prompt=tag,
            name=f"{api.path} ({scenario}, {tag})",
            headers=api.headers(s.target.headers_for(self.host or "")),
            decoder=api.decoder,
            scheduled=scheduled,
            timeouts=Timeouts(s.target.idle_timeout_s, s.target.call_timeout_s),
            server_stamps=s.target.server_stamps,
            parse_json=answer,
        )
        served = rec.usage_prompt_tokens
        if rec.ok and target and served:
            _record_accuracy(self.environment, scenario, target, served)
        if conv is None:
            return
        if not rec.ok:
            conv.failed()
            return
        text = answer.text
        if text is None:  # a streamed answer's text is not kept: a stand-in of its length
            cal = rt.calibration or Calibration()
            n = rec.output_tokens or max_tokens
            text = rt.text.text(cal.local_for(max(1, n), with_overhead=False), self.rng)
        conv.answered(question, text, served, rec.usage_completion_tokens, sent_with)


def _record_accuracy(environment: Any, scenario: str, target: int, served: int) -> None:
    metrics = getattr(environment, "llm_metrics", None)
    if metrics is None:
        return
    tags = {"scenario": scenario}
    metrics.add(INPUT_ERROR, tags, abs(served - target) / target * 100.0)
    metrics.count(INPUT_REQUESTED, tags, target)
    metrics.count(INPUT_SERVED, tags, served)
