"""``CapacityShape``: the Locust load shape that searches for the highest load meeting the SLOs.

Use it with any suite whose locustfile installs the metrics (``llm_metrics.hooks.install_metrics``)::

    locust -f locustfiles/workload.py,locustfiles/capacity.py --headless            # closed model: Users
    locust -f locustfiles/workload.py,locustfiles/capacity.py --headless --workload open --capacity-mode rate
    locust -f locustfiles/capacity.py,locustfiles/gateway.py --headless             # first file's shape wins

Settings: ``conf/capacity.yaml`` (``--capacity-conf``, env ``CAPACITY_CONF``; format in
``shapes.capacity_config``), a few keys also as flags (``--capacity-mode``, ``--capacity-start``,
``--capacity-max``, ``--capacity-resolution``, ``--capacity-settle``, ``--capacity-hold``,
``--capacity-cooldown``, ``--capacity-min-limit``). The thresholds are the suite's (``--thresholds``).

How a step is judged on the master's merged data: ``LLMMetrics.open_window()`` starts a second store that
local requests and every worker report feed from then on; the shape opens it when the step's settling time
ends, and at the end of the hold (after every worker has reported once more, in a distributed run) it
evaluates the thresholds on that store alone (``thresholds.evaluate(thresholds, window, elapsed)``). Workers
need nothing new: they send their usual deltas every 3 s. In rate mode the suite must offer
a rate control, ``llm_metrics.state.RateControl`` (``state(environment).rate_control.set_rate(rate)``; the workload
suite's open model offers one); the shape sets the rate at each step, the suite sends each worker its share
(``llm_users.pacing.share_protocol``), and the shape runs a pool of idle Users sized for it.

Users stopped between steps (a lower level, a cooldown) are stopped at once, their calls cut and never
recorded: the shape sets the environment's stop timeout to 0 (Locust would otherwise let each finish its
call, up to ``--stop-timeout``, before the next step could start).

At the end (the search stops by itself; in the web UI the run then stops), the summary gets a ``capacity``
section (every step: level, verdict, failing thresholds, requests/s, goodput, TTFT, ...), the console report
a table, and the HTML report plots of latency and goodput against load. The verdict replaces the whole-run
thresholds (the search overloads the target on purpose): the thresholds table shows the step at the limit,
and the run passes (exit 0) when a limit was found at or above ``min_limit``, else fails (99). The pure logic
is in ``shapes.capacity_search``.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import MutableMapping
from typing import Any

from locust.env import Environment
from locust.event import Events
from locust.runners import MasterRunner, WorkerRunner
from locust.shape import LoadTestShape

from llm_metrics.core import LLMMetrics
from llm_metrics.engine.thresholds import ThresholdResult, evaluate
from llm_metrics.state import RateControl, state
from llm_users.pacing.shares import active_workers
from shapes.capacity_config import (
    CAPACITY_CONF_ENV,
    CAPACITY_CONF_FLAG,
    DEFAULT_CAPACITY_FILE,
    OVERRIDES,
    CapacityConfigError,
    CapacityPlan,
    load_capacity,
)
from shapes.capacity_report import result_json, result_text, step_stats
from shapes.capacity_search import CapacitySearch, SearchDriver, SearchResult, StepOutcome, judge

__all__ = ["CapacityShape", "add_capacity_arguments", "install_capacity"]

log = logging.getLogger(__name__)

REPORT_INTERVAL_S = 3.0


class CapacitySetupError(RuntimeError):
    """The run cannot search: no metrics, or rate mode without a rate control."""


class CapacityShape(LoadTestShape):
    """Raises the load in steps, judges each on its own data, bisects to the highest passing load, stops."""

    def __init__(self, conf: str | None = None, overrides: dict[str, object] | None = None) -> None:
        super().__init__()
        self._conf_arg = conf
        self._overrides_arg = dict(overrides or {})
        self.plan: CapacityPlan | None = None
        self.driver: SearchDriver | None = None
        self._users = 0
        self._rate: float | None = None
        self._just_started = False
        self._ended = False
        self._reports_at_open: dict[str, float] = {}

    # -- options -----------------------------------------------------------------------------------------

    def _options(self) -> Any:
        runner = self.runner
        return runner.environment.parsed_options if runner is not None else None

    def resolve(self) -> CapacityPlan:
        """The plan of the options (``CapacityConfigError`` naming the file or the flag)."""
        opts = self._options()
        conf = self._conf_arg if self._conf_arg is not None else getattr(opts, "capacity_conf", "") or None
        overrides: dict[str, tuple[str, object]] = {}
        for key, flag, env, _help in OVERRIDES:
            if key in self._overrides_arg:
                overrides[key] = (key, self._overrides_arg[key])
            elif opts is not None:
                overrides[key] = (f"{flag} (env {env})", getattr(opts, flag[2:].replace("-", "_"), ""))
        return load_capacity(conf, overrides)

    # -- Locust's interface ------------------------------------------------------------------------------

    def reset_time(self) -> None:
        """A new run: a new search (a master calls this twice per run; the search its first tick began stays)."""
        super().reset_time()
        if self._just_started:
            self._just_started = False
        else:
            self.driver = None
            self._ended = False

    def tick(self) -> tuple[int, float] | None:
        self._just_started = False
        if self._ended:
            return None
        if self.driver is None:
            try:
                self._begin()
            except (CapacityConfigError, CapacitySetupError) as exc:
                log.error("CapacityShape: %s; stopping the run", exc)
                self._fail()
                return None
            self._just_started = True
        assert self.driver is not None
        try:
            level = self.driver.tick(time.time())
        except (RuntimeError, ValueError) as exc:  # the rate control refused
            log.error("CapacityShape: %s; stopping the run", exc)
            self.driver.stop(time.time(), f"error: {exc}")
            self._fail()
            return None
        if level is None:
            self._end()
            return None
        return self._apply(level)

    # -- the search ----------------------------------------------------------------------------------------

    def _metrics(self) -> LLMMetrics:
        m = state(self.runner.environment).metrics if self.runner is not None else None
        if m is None:
            raise CapacitySetupError(
                "the capacity search needs the LLM metrics: call llm_metrics.hooks.install_metrics in the locustfile"
            )
        return m

    def _begin(self) -> None:
        plan = self.plan = self.resolve()
        m = self._metrics()
        env = self.runner.environment if self.runner is not None else None
        if plan.spec.mode == "rate" and self._rate_control() is None:
            raise CapacitySetupError(
                "rate mode needs a suite with an open-model rate control (locustfiles/workload.py --workload open); "
                "use --capacity-mode users for a closed-model suite"
            )
        if not m.thresholds:
            log.warning("CapacityShape: no thresholds: every step passes and the search stops at max")
        if plan.spec.mode == "users" and _open_model(env):
            log.warning(
                "CapacityShape: users mode, but this suite's load is its arrival rate (open model): the steps "
                "change only the pool of Users; --capacity-mode rate raises the rate"
            )
        if any(t.abort_on_fail for t in m.thresholds):
            log.warning("CapacityShape: abortOnFail thresholds are not checked during a capacity search")
        m.verdict = self._verdict  # also keeps the abortOnFail checks off (LLMMetrics.start_abort_checks)
        m.stop_abort_checks()
        if env is not None and env.stop_timeout:
            # a step down (or a cooldown) must not wait for the calls of the level before: Locust would let
            # every stopped User finish its call first (up to --stop-timeout); they are cut, and never recorded
            log.info("CapacityShape: Users stopped between steps are stopped at once (--stop-timeout ignored)")
            env.stop_timeout = 0.0
        distributed = isinstance(self.runner, MasterRunner)
        timing = plan.timing if distributed else _local_timing(plan)
        if distributed and timing.settle_s < REPORT_INTERVAL_S:
            log.warning(
                "CapacityShape: settle %.1f s is shorter than the %g s worker report interval: the first judged "
                "seconds of a step may hold data of the step before",
                timing.settle_s,
                REPORT_INTERVAL_S,
            )
        self.driver = SearchDriver(
            CapacitySearch(plan.spec),
            timing,
            open_window=self._open_window,
            judge=self._judge,
            reported_after=self._reported_after,
        )
        self._users = 0
        self._rate = None
        self._ended = False
        m.json_sections["capacity"] = self.result_doc
        if self.result_text not in m.text_sections:  # once, though each run (web UI) begins a search
            m.text_sections.append(self.result_text)
        log.info("CapacityShape: %s", plan.describe())

    def _apply(self, level: float) -> tuple[int, float]:
        assert self.plan is not None
        plan = self.plan
        users = plan.users_for(level) if level > 0 else 0  # 0: a cooldown, no load at all
        if plan.spec.mode == "rate" and level != self._rate:
            control = self._rate_control()
            assert control is not None  # checked when the search began
            control.set_rate(level)
            self._rate = level
        rate = plan.spawn_rate_for(self._users, users)
        self._users = users
        return users, rate

    def _rate_control(self) -> RateControl | None:
        return state(self.runner.environment).rate_control if self.runner is not None else None

    def _open_window(self) -> None:
        m = self._metrics()
        self._reports_at_open = dict(m.last_report_at)
        m.open_window()

    def _covered_s(self, m: Any, elapsed_s: float) -> float:
        """Seconds of measurements in the window: in a distributed run, what the workers' reports merged into it
        cover (from each worker's last report before the window opened to its last one now), averaged."""
        if not isinstance(self.runner, MasterRunner):
            return elapsed_s
        spans = [
            m.last_report_at[w] - t0 for w, t0 in self._reports_at_open.items() if m.last_report_at.get(w, t0) > t0
        ]
        return sum(spans) / len(spans) if spans else elapsed_s

    def _judge(self, level: float, elapsed_s: float) -> StepOutcome:
        m = self._metrics()
        elapsed_s = self._covered_s(m, elapsed_s)
        window = m.close_window()
        assert self.plan is not None
        if window is None:
            results: list[ThresholdResult] = []
            stats: dict[str, Any] = {}
            samples = 0
        else:
            results = evaluate(m.thresholds, window, elapsed_s)
            stats = step_stats(window, elapsed_s)
            samples = stats["requests"]
        verdict = judge(results, samples, self.plan.min_samples)
        unit = self.plan.spec.unit
        log.info(
            "CapacityShape: %g %s: %s (%d requests, %.1f/s)%s",
            level,
            unit,
            "pass" if verdict.passed else "FAIL",
            samples,
            stats.get("requests_per_s", 0.0),
            "" if verdict.passed else f": {verdict.reason}",
        )
        return StepOutcome(verdict, results, stats)

    def _reported_after(self, t: float) -> bool:
        runner = self.runner
        if not isinstance(runner, MasterRunner):
            return True
        m = self._metrics()
        ids = active_workers(runner.clients.values())
        return all(m.last_report_at.get(i, 0.0) > t for i in ids)

    def _end(self) -> None:
        self._ended = True
        head = self.result_text().splitlines()[:3]  # the limit, the failure above it, why it stopped
        log.info("CapacityShape: search over: %s", " / ".join(line.strip() for line in head))

    def stop_search(self) -> None:
        """The run is stopping: end the search where it is (the step in progress is not judged)."""
        if self.driver is not None and not self.driver.done:
            self.driver.stop(time.time())
            m = state(self.runner.environment).metrics if self.runner is not None else None
            if m is not None:
                m.close_window()

    def _fail(self) -> None:
        self._ended = True
        runner = self.runner
        if runner is None:
            return
        options = runner.environment.parsed_options
        if options is not None and getattr(options, "headless", False):
            runner.environment.process_exit_code = 2

    # -- results -------------------------------------------------------------------------------------------

    def result(self) -> SearchResult | None:
        return self.driver.result() if self.driver is not None else None

    def passed(self) -> bool:
        res = self.result()
        if res is None or res.limit is None or self.plan is None:
            return False
        return res.limit >= self.plan.min_limit

    def result_doc(self) -> dict[str, Any]:
        res = self.result()
        if res is None or self.plan is None:
            return {"note": "the capacity search has not started"}
        return result_json(res, self.plan, self.passed())

    def result_text(self) -> str:
        doc = self.result_doc()
        if "steps" not in doc:
            return "CAPACITY SEARCH: not started\n"
        text = result_text(doc)
        if doc["limit"] is not None:
            text += (
                f"  the THRESHOLDS table shows the step at the limit ({doc['limit']:g} {doc['unit']}), "
                "not the whole run\n"
            )
        return text

    def _verdict(self, _m: Any) -> tuple[list[ThresholdResult], bool]:
        res = self.result()
        if res is None:
            return [], False
        step = res.step_at(res.limit) or res.step_at(res.first_failure)
        results = step.outcome.results if step is not None and step.outcome is not None else []
        return list(results), self.passed()


def _open_model(env: Any) -> bool:
    """Whether the suite sends arrivals at a rate whatever the number of Users (chat; workload open or trace)."""
    if env is None:
        return False
    suites = state(env)
    if suites.runtime("chat") is not None:
        return True
    mode = getattr(getattr(suites.runtime("workload"), "settings", None), "mode", None)
    return mode in ("open", "trace")


def _local_timing(plan: CapacityPlan) -> Any:
    """Without workers there is no report to wait for."""
    from dataclasses import replace

    return replace(plan.timing, report_timeout_s=0.0)


def add_capacity_arguments(parser: Any) -> None:
    """``--capacity-conf`` and the override flags (shown in the web UI form; forwarded to workers)."""
    if CAPACITY_CONF_FLAG in getattr(parser, "_option_string_actions", {}):
        return
    parser.add_argument(
        CAPACITY_CONF_FLAG,
        env_var=CAPACITY_CONF_ENV,
        default="",
        help=f"YAML settings of the capacity search (env {CAPACITY_CONF_ENV}); default: the project's "
        f"{DEFAULT_CAPACITY_FILE.parent.name}/{DEFAULT_CAPACITY_FILE.name}",
    )
    for _key, flag, env, text in OVERRIDES:
        parser.add_argument(
            flag, env_var=env, default="", help=f"Capacity search: {text}; overrides the file (env {env})"
        )


def check_capacity_options(environment: Environment, **_kwargs: Any) -> None:
    """``init`` listener: exit 2 with a message naming the file or flag when the capacity settings are bad."""
    if isinstance(environment.runner, WorkerRunner):
        return
    shape = environment.shape_class
    if not isinstance(shape, CapacityShape):
        return
    shape.runner = environment.runner
    try:
        shape.resolve()
    except CapacityConfigError as exc:
        log.error("CapacityShape: %s", exc)
        sys.exit(2)


def _on_stopping(environment: Environment, **_kwargs: Any) -> None:
    shape = environment.shape_class
    if isinstance(shape, CapacityShape):
        shape.stop_search()


def _on_parser(parser: Any, **_kwargs: Any) -> None:
    add_capacity_arguments(parser)


def install_capacity(namespace: MutableMapping[str, Any], events: Events | None = None) -> None:
    """Put ``CapacityShape`` into a locustfile's ``namespace`` (pass ``globals()``) and register its options
    and listeners on ``events`` (default ``locust.events``); calling it twice registers nothing twice."""
    if events is None:
        from locust import events as default_events

        events = default_events
    namespace["CapacityShape"] = CapacityShape
    for hook, listener in (
        (events.init_command_line_parser, _on_parser),
        (events.init, check_capacity_options),
        (events.test_stopping, _on_stopping),
    ):
        try:
            hook.remove_listener(listener)
        except ValueError:
            pass
        hook.add_listener(listener)
