"""The workload suite on Locust's events: its knobs, its runtime per environment, the start and stop of a test.

``install_workload(events)`` (called by ``locustfiles/workload.py``, imported from ``llm_users.workload.users``)
adds the knobs (``workload.options``), validates them at start-up (exit 2 on a bad one), keeps a
``WorkloadRuntime`` in the environment's suite state (``llm_metrics.state``), offers it as the rate control of
the capacity search (master or local runner) and puts the ``workload`` section in the summaries.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from locust.runners import MasterRunner, WorkerRunner

from llm_metrics.state import state
from llm_users.common.options import OptionError, settings_or_exit, settings_or_quit
from llm_users.common.prompts import PromptError
from llm_users.common.target_binding import local_secrets
from llm_users.common.tokenizer import configure_from_options
from llm_users.pacing.open_start import install_open_suite, prepare_open_model
from llm_users.pacing.share_protocol import ArrivalShares, halt_on_stop
from llm_users.workload.calibration import CALIBRATION_MESSAGE
from llm_users.workload.options import WorkloadSettings, add_workload_arguments, workload_settings
from llm_users.workload.report import summary, text_section
from llm_users.workload.runtime import WorkloadRuntime, runtime
from llm_users.workload.trace import TraceError, duration

__all__ = ["install_workload"]

log = logging.getLogger(__name__)

SETTINGS_ERRORS = (OptionError, TraceError, PromptError)


def _attach_sections(environment: Any, rt: WorkloadRuntime) -> None:
    """The ``workload`` part of the JSON summary and of the console report (once; where the verdict is made)."""
    metrics = rt.metrics()
    if metrics is None or "workload" in metrics.json_sections:
        return
    metrics.json_sections["workload"] = lambda: summary(runtime(environment))
    metrics.text_sections.append(lambda: text_section(runtime(environment)))


def _trace_run_time(environment: Any, settings: WorkloadSettings) -> int | None:
    """A trace replay lasts the trace plus a margin for the last answers (the Users are spawned at once)."""
    if settings.mode == "trace" and settings.trace is not None:
        return math.ceil(duration(settings.trace, settings.trace_time_scale) + 2)
    return None


def _init(environment: Any, **_kw: Any) -> None:
    opts = environment.parsed_options
    if opts is None:
        return
    configure_from_options(opts)
    settings = settings_or_exit(
        "workload", lambda: workload_settings(opts, local_secrets(environment)), SETTINGS_ERRORS
    )
    rt = WorkloadRuntime(environment, settings)
    state(environment).set_runtime("workload", rt)
    # open and trace: the Users are a pool spawned at once, the schedule runs from the test start
    prepare_open_model(
        environment,
        "workload",
        settings.base,
        run_time_s=_trace_run_time(environment, settings),
        applies=lambda: rt.settings.mode != "closed",
    )
    runner = environment.runner
    if not isinstance(runner, WorkerRunner):
        state(environment).rate_control = rt
        _attach_sections(environment, rt)
    rt.shares.install()
    if isinstance(runner, MasterRunner):
        runner.register_message(CALIBRATION_MESSAGE, rt.calibrator.received)


def _read_settings(environment: Any, rt: WorkloadRuntime) -> WorkloadSettings:
    settings = workload_settings(environment.parsed_options, local_secrets(environment))
    if not rt.rate_overridden:  # the capacity search (or the master) may have set it already
        rt.rate = settings.rate
    return settings


def _start(environment: Any, **_kw: Any) -> None:
    rt = state(environment).runtime("workload", WorkloadRuntime)
    if rt is None:
        return
    if environment.parsed_options is not None:  # the web UI may have changed the knobs since start-up
        settings = settings_or_quit(environment, "workload", lambda: _read_settings(environment, rt), SETTINGS_ERRORS)
        if settings is None:
            return
        rt.settings = settings
    rt.trace_t0 = None
    if not isinstance(environment.runner, WorkerRunner):
        _attach_sections(environment, rt)  # install_metrics may have come after install_workload
        rt.start_ledger()
    rt.shares.test_start()  # master: divides the arrivals; worker or local: the schedule, once the share is known


def _shares(environment: Any) -> ArrivalShares | None:
    rt = state(environment).runtime("workload", WorkloadRuntime)
    return rt.shares if rt is not None else None


def _stopped(environment: Any, **_kw: Any) -> None:
    # the schedule has stopped (halt_on_stop); the next test starts from the settings' rate
    rt = state(environment).runtime("workload", WorkloadRuntime)
    if rt is not None:
        rt.rate_overridden = False


def install_workload(events: Any) -> None:
    """Register the workload suite's arguments and listeners on Locust's ``events``."""
    install_open_suite(events, add_workload_arguments)

    events.init.add_listener(_init)
    events.test_start.add_listener(_start)
    halt_on_stop(events, _shares)
    events.test_stop.add_listener(_stopped)
