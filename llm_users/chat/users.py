"""The chat-completions suite of seed 003: smoke, non-stream and stream scenarios in the open model.

``install_chat(events)`` (called by ``locustfiles/chat.py``) adds the knobs, validates them at start-up, sets
the host and the run time, and runs one ``ArrivalDispatcher`` per process; ``ChatUser``s take its tickets.
In a distributed run the master sends each worker its share of the arrivals (``llm_arrival_share``) at
test start, and again whenever the set of active workers changes (a worker joins late, goes missing or
quits): a worker whose share changes restarts its schedule with it, so the total rate stays the one asked for.
A late joiner asks for its share (``llm_arrival_share_request``) once its listeners exist: Locust hands it the
running test (ack, spawn, spawning complete) before its ``init`` event, so messages sent at connect are lost;
its schedule starts once both the test and its share are there.

The open model starts with the run (``llm_users.pacing.open_start``): the Users are spawned at once and each
process's schedule runs from the test start; on the master (or the local runner) an ``ArrivalLedger`` counts
the arrivals the run should issue, which ``llm_metrics.hooks`` checks against those issued and dropped.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

import gevent
from locust import FastHttpUser, constant, task
from locust.runners import MasterRunner, WorkerRunner

from llm_metrics.engine.adherence import ArrivalLedger
from llm_users.chat.options import ChatSettings, OptionError, add_chat_arguments, chat_settings
from llm_users.client.call import Timeouts, llm_call, no_answer_reason, socket_timeout
from llm_users.common.prompts import PromptError
from llm_users.common.security import install_security
from llm_users.common.target_binding import LocalSecrets, local_secrets
from llm_users.common.tokenizer import add_tokenizer_argument, configure_from_options
from llm_users.pacing.arrival import ArrivalSpec
from llm_users.pacing.dispatch import ArrivalDispatcher, Scenario
from llm_users.pacing.open_start import READY_S, spawn_pool_at_once

log = logging.getLogger(__name__)

CHAT_PATH = "/v1/chat/completions"
SHARE_MESSAGE = "llm_arrival_share"
SHARE_REQUEST = "llm_arrival_share_request"
ACTIVE_WORKER_STATES = ("ready", "spawning", "running")  # Locust's states of a worker that gets users
GRACEFUL_STOP_S = 30.0


class ChatRuntime:
    """Per-environment state of the chat suite: its settings and this process's arrival dispatcher."""

    def __init__(self, environment: Any, settings: ChatSettings) -> None:
        self.environment = environment
        self.settings = settings
        self.dispatcher: ArrivalDispatcher | None = None
        self.worker_index = 0
        self.workers = 1
        self.smoke_done = False
        self.armed = False
        self.share_ids: list[str] | None = None  # master: the workers the arrivals were last divided among
        self.share_watch: Any = None  # master: greenlet re-dividing when the active workers change
        self.share_known = False  # worker: a share came from the master
        self.spawn_done = False  # this test's Users are spawned
        self.issued: dict[str, int] = {}  # arrivals scheduled by this process, over every schedule of the run
        self.scheduled_s = 0.0  # seconds this process's schedules ran

    def scenarios(self) -> list[Scenario]:
        s = self.settings
        return [
            Scenario("chat_nonstream", ArrivalSpec(s.nonstream_rps, s.arrival), s.variants),
            Scenario("chat_stream", ArrivalSpec(s.stream_rps, s.arrival), s.variants),
        ]

    def start(self) -> None:
        self.stop()
        self.dispatcher = ArrivalDispatcher(
            self.scenarios(), self.worker_index, self.workers, self._dropped, on_issue=self._issued
        )
        self.dispatcher.start(delay_s=READY_S)

    def _issued(self, scenario: str) -> None:
        metrics = getattr(self.environment, "llm_metrics", None)
        if metrics is not None:
            metrics.tally(f"issued:{scenario}")

    def start_ledger(self) -> None:
        """Master or local runner, at test start: the arrivals the whole run should issue (engine.adherence)."""
        metrics = getattr(self.environment, "llm_metrics", None)
        if metrics is None:
            return
        rates = {sc.name: sc.spec.rate for sc in self.scenarios() if sc.spec.rate > 0}
        metrics.arrival_ledger = ledger = ArrivalLedger(kind=self.settings.arrival)
        ledger.start(time.time(), rates)

    def on_spawning_complete(self, **_kw: Any) -> None:
        self.spawn_done = True
        if self.armed and self.dispatcher is None and self.share_ready():
            self.start()

    def share_ready(self) -> bool:
        return self.share_known or not isinstance(self.environment.runner, WorkerRunner)

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
        return {
            "issued": issued,
            "scheduled_s": round(seconds, 3),
            "share": {"index": self.worker_index, "workers": self.workers},
        }

    def _dropped(self, scenario: str, prompt: str) -> None:
        metrics = getattr(self.environment, "llm_metrics", None)
        if metrics is not None:
            metrics.count("dropped_iterations", {"scenario": scenario, "prompt": prompt})
            metrics.tally(f"dropped:{scenario}")  # this run's ledger (the metric covers the whole session)


def _active_workers(runner: Any, joining: str | None = None) -> list[str]:
    """Ids of the workers that get users (Locust states ready, spawning, running), sorted: their ranks."""
    ids = {c.id for c in list(runner.clients.values()) if c.state in ACTIVE_WORKER_STATES}
    if joining:
        ids.add(joining)
    return sorted(ids)


def _send_shares(runner: Any, rt: ChatRuntime, ids: list[str]) -> None:
    rt.share_ids = ids
    runner.send_message(SHARE_MESSAGE, {"workers": len(ids), "ranks": {cid: i for i, cid in enumerate(ids)}})


def _watch_workers(runner: Any, rt: ChatRuntime) -> None:
    """Master, during a run: re-divide the arrivals when the active workers change (checked every second)."""
    while True:
        gevent.sleep(1.0)
        ids = _active_workers(runner)
        if ids and ids != rt.share_ids:
            log.info(
                "chat suite: %d active workers (were %d): arrival rates re-divided", len(ids), len(rt.share_ids or ())
            )
            _send_shares(runner, rt, ids)


def _stop_watch(rt: ChatRuntime) -> None:
    if rt.share_watch is not None:
        rt.share_watch.kill(block=False)
        rt.share_watch = None
    rt.share_ids = None


def runtime(environment: Any) -> ChatRuntime:
    rt = getattr(environment, "llm_chat", None)
    if rt is None:
        raise RuntimeError(
            "the chat suite is not installed: call llm_users.chat.users.install_chat(events) in the locustfile"
        )
    return rt


def _settings_or_exit(opts: Any, local: LocalSecrets | None = None) -> ChatSettings:
    try:
        return chat_settings(opts, local)
    except (OptionError, PromptError) as exc:
        log.error("chat suite: %s", exc)
        sys.exit(2)


def install_chat(events: Any) -> None:
    """Register the chat suite's arguments and listeners on Locust's ``events``."""
    install_security(events)  # first: the suite reads the secrets as it binds them

    @events.init_command_line_parser.add_listener
    def _args(parser: Any, **_kw: Any) -> None:
        add_chat_arguments(parser)
        add_tokenizer_argument(parser)

    @events.init.add_listener
    def _init(environment: Any, **_kw: Any) -> None:
        opts = environment.parsed_options
        if opts is None:
            return
        configure_from_options(opts)
        settings = _settings_or_exit(opts, local_secrets(environment))
        rt = ChatRuntime(environment, settings)
        environment.llm_chat = rt
        # like k6's pre-allocated VUs, the Users are spawned at once and the schedule starts with the test
        # (llm_users.pacing.open_start); spawning_complete only starts a schedule that could not start before
        spawn_pool_at_once(environment, "chat")
        environment.events.spawning_complete.add_listener(rt.on_spawning_complete)
        if not opts.worker and not getattr(opts, "stop_timeout", None):
            # k6's gracefulStop: calls in flight at the end of the run may finish (and are counted)
            opts.stop_timeout = environment.stop_timeout = GRACEFUL_STOP_S
        if opts.base or not environment.host:
            environment.host = settings.base
        # DURATION_MIN is the run length of the open model; a load shape sets its own length
        if (
            getattr(opts, "headless", False)
            and not getattr(opts, "run_time", None)
            and not opts.worker
            and environment.shape_class is None
        ):
            opts.run_time = round(settings.duration_s)
        runner = environment.runner
        if isinstance(runner, WorkerRunner):

            def _share(environment: Any, msg: Any, **_k: Any) -> None:
                share = msg.data.get("ranks", {})
                before = (rt.worker_index, rt.workers)
                rt.workers = max(1, int(msg.data.get("workers", 1)))
                rt.worker_index = int(share.get(runner.client_id, 0)) % rt.workers
                rt.share_known = True
                if rt.dispatcher is not None and (rt.worker_index, rt.workers) != before:
                    log.info("chat suite: arrival share now %d of %d workers", rt.worker_index + 1, rt.workers)
                    rt.start()  # re-divided during the run: this worker's schedule restarts with its new share
                elif rt.dispatcher is None and rt.armed:
                    rt.start()  # the test started before the share came (e.g. a late joiner)

            runner.register_message(SHARE_MESSAGE, _share)
            if runner.worker_state in ("spawning", "running"):
                # joined a running test whose start (test_start, spawning_complete) came before this init
                rt.armed = rt.spawn_done = True
            runner.send_message(SHARE_REQUEST)
        if isinstance(runner, MasterRunner):

            def _share_request(environment: Any, msg: Any, **_k: Any) -> None:
                if rt.share_ids is not None:  # a test runs: the worker asking joined it late
                    _send_shares(runner, rt, _active_workers(runner, msg.node_id))

            runner.register_message(SHARE_REQUEST, _share_request)

    @events.test_start.add_listener
    def _start(environment: Any, **_kw: Any) -> None:
        rt = getattr(environment, "llm_chat", None)
        if rt is None:
            return
        runner = environment.runner
        if environment.parsed_options is not None:
            try:  # the web UI may have changed the knobs since start-up
                rt.settings = chat_settings(environment.parsed_options, local_secrets(environment))
            except (OptionError, PromptError) as exc:
                log.error("chat suite: %s; stopping", exc)
                runner.quit()
                return
        if not isinstance(runner, WorkerRunner):
            rt.start_ledger()
        if isinstance(runner, MasterRunner):
            _stop_watch(rt)
            _send_shares(runner, rt, _active_workers(runner))
            rt.share_watch = gevent.spawn(_watch_workers, runner, rt)
            return
        rt.smoke_done = False
        rt.issued, rt.scheduled_s = {}, 0.0
        metrics = getattr(environment, "llm_metrics", None)
        if metrics is not None and isinstance(runner, WorkerRunner):
            metrics.json_sections["arrivals"] = rt.arrivals  # a worker's own view; the master merges its ledger
        rt.armed = True
        rt.spawn_done = False
        if rt.share_ready():
            rt.start()  # the schedule runs from the test start (the Users are spawned at once, open_start)

    @events.test_stopping.add_listener
    def _stopping(environment: Any, **_kw: Any) -> None:
        # no new arrivals once the run stops; calls in flight finish within --stop-timeout
        rt = getattr(environment, "llm_chat", None)
        if rt is not None:
            rt.armed = False
            rt.stop()
            _stop_watch(rt)

    @events.test_stop.add_listener
    def _stop(environment: Any, **_kw: Any) -> None:
        rt = getattr(environment, "llm_chat", None)
        if rt is not None:
            rt.armed = False
            rt.stop()
            _stop_watch(rt)


class ChatUser(FastHttpUser):
    """Takes the arrivals of the chat scenarios and sends each as one chat-completions call."""

    wait_time = constant(0)
    abstract = True  # the locustfile declares the concrete class

    def __init__(self, environment: Any) -> None:
        rt = getattr(environment, "llm_chat", None)
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
        rt = runtime(self.environment)
        if rt.dispatcher is None:
            self.wait_for_start()
            return
        ticket = rt.dispatcher.take(timeout=1.0)
        if ticket is None:
            return
        s = rt.settings
        pset = s.prompt_sets[ticket.prompt]
        api = s.api
        stream = ticket.scenario == "chat_stream" and api.streams
        payload = api.payload(
            s.model, pset.next(), stream=stream, max_tokens=s.max_tokens or pset.max_tokens or 0, tools=pset.tools
        )
        llm_call(
            self.client,
            api.path,
            payload,
            stream=stream,
            scenario=ticket.scenario,
            prompt=ticket.prompt,
            name=f"{api.path} ({ticket.scenario}, {ticket.prompt})",
            headers=api.headers(self._headers()),
            scheduled=ticket.scheduled,
            timeouts=Timeouts(s.target.idle_timeout_s, s.target.call_timeout_s),
            server_stamps=s.target.server_stamps,
            decoder=api.decoder,
            parse_json=api.parse_json,
        )

    def wait_for_start(self) -> None:
        import gevent

        gevent.sleep(0.05)
