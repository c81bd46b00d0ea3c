"""The chat-completions suite of seed 003: smoke, non-stream and stream scenarios in the open model.

``install_chat(events)`` (called by ``locustfiles/chat.py``) adds the knobs, validates them at start-up, sets
the host and the run time, and runs one ``ArrivalDispatcher`` per process; ``ChatUser``s take its tickets.
In a distributed run each worker runs its share of the arrivals, sent by the master at test start and again
whenever the set of active workers changes (``llm_users.pacing.share_protocol``, messages
``llm_arrival_share`` and ``llm_arrival_share_request``); a worker's schedule starts once both the test and its
share are there.

The open model starts with the run (``llm_users.pacing.open_start``): the Users are spawned at once and each
process's schedule runs from the test start; on the master (or the local runner) an ``ArrivalLedger`` counts
the arrivals the run should issue, which ``llm_metrics.verdict`` checks against those issued and dropped.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gevent
from locust import FastHttpUser, constant, task
from locust.runners import MasterRunner, WorkerRunner

from llm_metrics.engine.adherence import ArrivalLedger
from llm_metrics.state import state
from llm_users.chat.options import ChatSettings, OptionError, add_chat_arguments, chat_settings
from llm_users.client.call import Timeouts, llm_call, no_answer_reason, socket_timeout
from llm_users.common.options import settings_or_exit, settings_or_quit
from llm_users.common.prompts import PromptError, PromptSet
from llm_users.common.target_binding import local_secrets
from llm_users.common.tokenizer import configure_from_options
from llm_users.pacing.arrival import ArrivalSpec
from llm_users.pacing.dispatch import ArrivalDispatcher, Scenario
from llm_users.pacing.open_start import (
    READY_S,
    install_open_suite,
    installed,
    prepare_open_model,
)
from llm_users.pacing.share_protocol import ArrivalShares, halt_on_stop

log = logging.getLogger(__name__)

CHAT_PATH = "/v1/chat/completions"
SHARE_MESSAGE = "llm_arrival_share"  # and its request, llm_arrival_share_request (llm_users.pacing.share_protocol)
SETTINGS_ERRORS = (OptionError, PromptError)


class ChatRuntime:
    """Per-environment state of the chat suite: its settings, its share and this process's arrival dispatcher."""

    def __init__(self, environment: Any, settings: ChatSettings) -> None:
        self.environment = environment
        self.settings = settings
        self.dispatcher: ArrivalDispatcher | None = None
        self.shares = ArrivalShares(environment, "chat", SHARE_MESSAGE, self)
        self.smoke_done = False
        self.issued: dict[str, int] = {}  # arrivals scheduled by this process, over every schedule of the run
        self.scheduled_s = 0.0  # seconds this process's schedules ran

    def scenarios(self) -> list[Scenario]:
        s = self.settings
        return [
            Scenario("chat_nonstream", ArrivalSpec(s.nonstream_rps, s.arrival), s.variants),
            Scenario("chat_stream", ArrivalSpec(s.stream_rps, s.arrival), s.variants),
        ]

    @property
    def scheduled(self) -> bool:
        return self.dispatcher is not None

    def start(self) -> None:
        """(Re)start this process's schedules on its share (``llm_users.pacing.share_protocol``)."""
        self.stop()
        share = self.shares.share
        scenarios = self.scenarios()
        metrics = self.metrics()
        on_issue: Callable[[str, int], None] | None = None
        on_drop: Callable[[str, str, int], None] | None = None
        if metrics is not None:  # per arrival: the tallies' keys and the metrics core looked up once, here
            issued = {sc.name: f"issued:{sc.name}" for sc in scenarios}
            dropped = {sc.name: f"dropped:{sc.name}" for sc in scenarios}  # this run's ledger
            tags: dict[tuple[str, str], dict[str, str]] = {}  # the metric (the whole session) by scenario, prompt
            tally, count = metrics.tally, metrics.count

            def tally_issued(scenario: str, n: int) -> None:
                tally(issued[scenario], n)

            def count_dropped(scenario: str, prompt: str, n: int) -> None:
                t = tags.get((scenario, prompt)) or tags.setdefault(
                    (scenario, prompt), {"scenario": scenario, "prompt": prompt}
                )
                count("dropped_iterations", t, n)
                tally(dropped[scenario], n)

            on_issue, on_drop = tally_issued, count_dropped

        self.dispatcher = ArrivalDispatcher(scenarios, share.index, share.workers, on_drop, on_issue=on_issue)
        self.dispatcher.start(delay_s=READY_S)

    def metrics(self) -> Any:
        """The metrics core (``llm_metrics.hooks``), if installed: the suite state's ``metrics``."""
        # until the metrics core keeps itself in the suite state (branch s16-metrics), it is still
        # environment.llm_metrics: the second read goes when both are merged
        return state(self.environment).metrics

    def start_ledger(self) -> None:
        """Master or local runner, at test start: the arrivals the whole run should issue (engine.adherence)."""
        metrics = self.metrics()
        if metrics is None:
            return
        rates = {sc.name: sc.spec.rate for sc in self.scenarios() if sc.spec.rate > 0}
        metrics.arrival_ledger = ledger = ArrivalLedger(kind=self.settings.arrival)
        ledger.start(time.time(), rates)

    def stop(self) -> None:
        d = self.dispatcher
        if d is not None:
            d.stop()
            self.dispatcher = None
            for name, n in d.issued.items():
                self.issued[name] = self.issued.get(name, 0) + n
            if d.started_at is not None:
                self.scheduled_s += max(0.0, time.perf_counter() - d.started_at)

    def arrivals(self) -> dict[str, Any]:
        """This process's open-model ledger: arrivals scheduled (sent or dropped) and for how long."""
        issued = dict(self.issued)
        seconds = self.scheduled_s
        d = self.dispatcher
        if d is not None:
            for name, n in d.issued.items():
                issued[name] = issued.get(name, 0) + n
            if d.started_at is not None:
                seconds += max(0.0, time.perf_counter() - d.started_at)
        share = self.shares.share
        return {
            "issued": issued,
            "scheduled_s": round(seconds, 3),
            "share": {"index": share.index, "workers": share.workers},
        }

    def test_start(self) -> None:
        """At test start: the settings again (the web UI may have changed them), the ledger, the shares."""
        env = self.environment
        if env.parsed_options is not None:
            settings = settings_or_quit(
                env, "chat", lambda: chat_settings(env.parsed_options, local_secrets(env)), SETTINGS_ERRORS
            )
            if settings is None:
                return
            self.settings = settings
        runner = env.runner
        if not isinstance(runner, WorkerRunner):
            self.start_ledger()
        if isinstance(runner, MasterRunner):
            self.shares.test_start()  # divides the arrivals among the workers; runs no schedule
            return
        self.smoke_done = False
        self.issued, self.scheduled_s = {}, 0.0
        metrics = self.metrics()
        if metrics is not None and isinstance(runner, WorkerRunner):
            metrics.json_sections["arrivals"] = self.arrivals  # a worker's own view; the master merges its ledger
        self.shares.test_start()  # the schedule runs from the test start once this process knows its share


def runtime(environment: Any) -> ChatRuntime:
    return installed(environment, "chat", ChatRuntime)


def _shares(environment: Any) -> ArrivalShares | None:
    rt = state(environment).runtime("chat", ChatRuntime)
    return rt.shares if rt is not None else None


def install_chat(events: Any) -> None:
    """Register the chat suite's arguments and listeners on Locust's ``events``."""
    install_open_suite(events, add_chat_arguments)

    @events.init.add_listener
    def _init(environment: Any, **_kw: Any) -> None:
        opts = environment.parsed_options
        if opts is None:
            return
        configure_from_options(opts)
        settings = settings_or_exit("chat", lambda: chat_settings(opts, local_secrets(environment)), SETTINGS_ERRORS)
        rt = ChatRuntime(environment, settings)
        state(environment).set_runtime("chat", rt)
        # like k6's pre-allocated VUs, the Users are spawned at once and the schedule starts with the test
        # (llm_users.pacing.open_start); DURATION_MIN is the run length of the open model
        prepare_open_model(environment, "chat", settings.base, run_time_s=round(settings.duration_s))
        rt.shares.install()

    @events.test_start.add_listener
    def _start(environment: Any, **_kw: Any) -> None:
        rt = state(environment).runtime("chat", ChatRuntime)
        if rt is not None:
            rt.test_start()

    halt_on_stop(events, _shares)


_BODIES_MAX = 256  # request bodies kept per (scenario, prompt variant): one per conversation of a small set


@dataclass(frozen=True, slots=True)
class CallKind:
    """What the calls of one (scenario, prompt variant) share: their name, stream flag and prompt set, and the
    request of each conversation sent so far (``request``)."""

    name: str
    stream: bool
    prompts: PromptSet
    max_tokens: int
    tools: list[Any] | None
    bodies: dict[int, tuple[Any, dict[str, Any], str]] = field(default_factory=dict, compare=False, repr=False)
    """id of a conversation (a list of the prompt set's, never changed) -> (it, its payload, the payload's JSON)"""

    def request(self, api: Any, model: str, messages: Any) -> tuple[dict[str, Any], str | None]:
        """The payload of a call of ``messages`` and its JSON text (``json.dumps``, as ``llm_call`` sends it), both
        built once per conversation and kept (the first ``_BODIES_MAX``; past them the payload is built each
        time and the JSON left to ``llm_call``)."""
        got = self.bodies.get(id(messages))
        if got is not None and got[0] is messages:
            return got[1], got[2]
        payload = api.payload(model, messages, stream=self.stream, max_tokens=self.max_tokens, tools=self.tools)
        if len(self.bodies) >= _BODIES_MAX:
            return payload, None
        body = json.dumps(payload)
        self.bodies[id(messages)] = (messages, payload, body)
        return payload, body


class CallPlan:
    """What every call of one ``ChatSettings`` shares, built once per User and settings instead of per call:
    the request headers (where the User's calls go), the bounds, and each (scenario, prompt)'s ``CallKind``."""

    def __init__(self, settings: ChatSettings, headers: dict[str, str]) -> None:
        self.settings = settings
        self.headers = settings.api.headers(headers)
        self.timeouts = Timeouts(settings.target.idle_timeout_s, settings.target.call_timeout_s)
        self.server_stamps = settings.target.server_stamps
        self.kinds: dict[tuple[str, str], CallKind] = {}

    def kind(self, scenario: str, prompt: str) -> CallKind:
        s = self.settings
        pset = s.prompt_sets[prompt]
        k = self.kinds[(scenario, prompt)] = CallKind(
            name=f"{s.api.path} ({scenario}, {prompt})",
            stream=scenario == "chat_stream" and s.api.streams,
            prompts=pset,
            max_tokens=s.max_tokens or pset.max_tokens or 0,
            tools=pset.tools,
        )
        return k


class ChatUser(FastHttpUser):
    """Takes the arrivals of the chat scenarios and sends each as one chat-completions call."""

    wait_time = constant(0)
    abstract = True  # the locustfile declares the concrete class

    def __init__(self, environment: Any) -> None:
        self._runtime: ChatRuntime | None = None  # the suite's runtime, looked up at the first arrival
        self._plan: CallPlan | None = None  # what every call of the current settings shares
        rt = state(environment).runtime("chat", ChatRuntime)
        if rt is not None:
            self.network_timeout = socket_timeout(self.network_timeout, rt.settings.target.idle_timeout_s)
        super().__init__(environment)

    def on_start(self) -> None:
        rt = runtime(self.environment)
        if rt.settings.smoke and not rt.smoke_done:
            rt.smoke_done = True
            self.smoke()

    def _headers(self) -> dict[str, str]:
        return runtime(self.environment).settings.target.headers_for(self.host or "")  # where the call goes

    def smoke(self) -> None:
        """GET /v1/version and /v1/models: each must answer 200 with a JSON body."""
        for path in ("/v1/version", "/v1/models"):
            with self.client.get(
                path, headers=self._headers(), catch_response=True, context={"scenario": "smoke"}, allow_redirects=False
            ) as resp:
                if resp.status_code != 200:
                    resp.failure(f"HTTP {resp.status_code}" if resp.status_code else no_answer_reason(resp))
                    continue
                try:
                    json.loads(resp.content or b"")
                except ValueError:
                    resp.failure("invalid JSON body")

    @task
    def arrival(self) -> None:
        rt = self._runtime or self._bind()
        dispatcher = rt.dispatcher
        if dispatcher is None:
            self.wait_for_start()
            return
        ticket = dispatcher.take(timeout=1.0)
        if ticket is None:
            return
        plan = self._plan
        if plan is None or plan.settings is not rt.settings:  # the settings are read again at each test start
            plan = self._plan = CallPlan(rt.settings, self._headers())
        kind = plan.kinds.get((ticket.scenario, ticket.prompt)) or plan.kind(ticket.scenario, ticket.prompt)
        s = plan.settings
        api = s.api
        payload, body = kind.request(api, s.model, kind.prompts.next())
        llm_call(
            self.client,
            api.path,
            payload,
            body=body,
            stream=kind.stream,
            scenario=ticket.scenario,
            prompt=ticket.prompt,
            name=kind.name,
            headers=plan.headers,
            scheduled=ticket.scheduled,
            timeouts=plan.timeouts,
            server_stamps=plan.server_stamps,
            decoder=api.decoder,
            parse_json=api.parse_json,
        )

    def _bind(self) -> ChatRuntime:
        self._runtime = rt = runtime(self.environment)
        return rt

    def wait_for_start(self) -> None:
        gevent.sleep(0.05)
