"""The sidecar suite of seed 002: ``/generate`` with ``/metrics``, read-heavy ``/health`` with ``/metrics``, and
trade proposals, each a Locust User; the sidecar's own ``/metrics`` sampled beside the client's numbers.

``install_sidecar(events)`` (called by ``locustfiles/sidecar.py``) adds the knobs (``llm_users.sidecar.options``),
checks them and both files at start-up (a bad one stops the run naming the file and the entry), sets the host
(``OSIRIS_URL``, else ``--host``, else the mock's default) and k6's graceful stop.

Requests are named by their exact path (``/generate``, ``/metrics``, ``/health``,
``/propose_trade_adjustments/``) so that per-endpoint thresholds select them with ``{name:/generate}``; the
scenario tag is the User's (``sidecar_load``, ``sidecar_read``, ``sidecar_trade``). ``/generate`` and the trade
calls are LLM calls (``llm_call`` with the sidecar's JSON shapes), so TTFB, total time and tokens are recorded.
A ``/metrics`` answer must parse as Prometheus text; one that does not is a failed request whose reason names
the offending line.

Server-side sampling. On the master or the local runner only (never on workers), a greenlet scrapes
``server_metrics.path`` every ``interval_s`` with its own plain HTTP client (urllib, not the Users' session):
these scrapes are not Locust requests, so they count neither as load nor in the client's numbers. One scrape
is taken when the run starts (before the Users), one when it stops (after them); the summary gives the
configured series (gauges over time, counters' change over the run) beside the client's numbers, in the JSON
summary (``server_metrics``) and the console report. Scraping from one place was chosen over merging the
Users' own ``/metrics`` answers from the workers: it works for every User class (the trade User never calls
``/metrics``), gives exact start and end values, and costs the target one request every ``interval_s``.
"""

from __future__ import annotations

import logging
import time
import urllib.error
import urllib.request
from typing import Any, NamedTuple

import gevent
from gevent.lock import BoundedSemaphore
from locust import FastHttpUser, task
from locust.runners import WorkerRunner

from llm_metrics.engine.promtext import PromTextError, parse
from llm_metrics.state import state
from llm_users.client.call import Timeouts, llm_call, no_answer_reason, socket_timeout
from llm_users.common.options import OptionError, settings_or_exit, settings_or_quit
from llm_users.common.suite import install_suite
from llm_users.common.target_binding import local_secrets, no_redirect_opener
from llm_users.sidecar.answers import parse_generate_json, parse_trade_json
from llm_users.sidecar.config import SidecarConfigError
from llm_users.sidecar.options import SidecarSettings, add_sidecar_arguments, sidecar_settings
from llm_users.sidecar.prompts import PromptFileError
from llm_users.sidecar.server_metrics import ServerSampler, format_report

log = logging.getLogger(__name__)

GENERATE = "/generate"
METRICS = "/metrics"
HEALTH = "/health"
TRADE = "/propose_trade_adjustments/"
GRACEFUL_STOP_S = 30.0
SCRAPE_LIMIT_BYTES = 16 * 1024 * 1024
_ERRORS = (OptionError, SidecarConfigError, PromptFileError)


def fetch(url: str, headers: dict[str, str], timeout_s: float) -> tuple[bytes | None, str | None]:
    """GET ``url`` with a plain HTTP client (no proxy from the environment); (body, None) or (None, reason)."""
    opener = no_redirect_opener()
    req = urllib.request.Request(url, headers={"Accept": "text/plain", **headers})
    try:
        with opener.open(req, timeout=timeout_s) as resp:
            return resp.read(SCRAPE_LIMIT_BYTES), None
    except urllib.error.HTTPError as exc:
        return None, f"HTTP {exc.code}"
    except urllib.error.URLError as exc:
        return None, f"connection error: {exc.reason}"
    except (OSError, gevent.Timeout) as exc:
        return None, "timeout" if isinstance(exc, TimeoutError | gevent.Timeout) else f"connection error: {exc}"


class SidecarRuntime:
    """Per-environment state: the settings and, where the verdict is made, the server-side sampler."""

    def __init__(self, environment: Any, settings: SidecarSettings) -> None:
        self.environment = environment
        self.settings = settings
        self.sampler: ServerSampler | None = None
        self._poller: gevent.Greenlet | None = None
        self._scraping = BoundedSemaphore()  # a scrape in flight is finished, not killed, at stop
        self._t0 = 0.0
        self._sampling = False
        self.attached = False

    # -- server-side sampling (master or local runner) ---------------------------------------------

    def start_sampling(self) -> None:
        self.stop_polling()
        cfg = self.settings.config.server_metrics
        self.sampler = ServerSampler(cfg, self.settings.base + cfg.path)
        self._t0 = time.monotonic()
        self._sampling = True
        self.scrape()  # the start values, before the Users send anything
        if cfg.interval_s > 0:
            self._poller = gevent.spawn(self._poll, cfg.interval_s)

    def _poll(self, interval_s: float) -> None:
        while True:
            gevent.sleep(interval_s)
            self.scrape()

    def stop_polling(self) -> None:
        if self._poller is not None:
            with self._scraping:
                self._poller.kill(block=True)
            self._poller = None

    def stop_sampling(self) -> None:
        """Stop the poller and take the end values (the Users have stopped)."""
        self.stop_polling()
        if self._sampling:
            self._sampling = False
            self.scrape()

    def scrape(self) -> None:
        sampler = self.sampler
        if sampler is None:
            return
        s = self.settings
        with self._scraping:
            body, error = fetch(sampler.url, s.target.headers_for(sampler.url), s.config.server_metrics.timeout_s)
            sampler.add(time.monotonic() - self._t0, body, error)

    # -- summary -----------------------------------------------------------------------------------

    def attach(self) -> None:
        """Put the server-side section in the summaries (once ``state(environment).metrics`` exists)."""
        m = state(self.environment).metrics
        if m is None or self.attached:
            return
        self.attached = True
        # a run ended by a signal reaches the verdict before test_stop: take the end values there
        m.before_verdict.append(lambda _m: self.stop_sampling())
        m.json_sections["server_metrics"] = lambda: self.report(m.store)
        m.text_sections.append(lambda: self.text(m.store))

    def text(self, store: Any) -> str:
        doc = self.report(store)
        return format_report(doc) if doc is not None else ""

    def report(self, store: Any) -> dict[str, Any] | None:
        return self.sampler.report(store) if self.sampler is not None else None


def runtime(environment: Any) -> SidecarRuntime:
    rt = state(environment).runtime("sidecar", SidecarRuntime)
    if rt is None:
        raise RuntimeError("the sidecar suite is not installed: call llm_users.sidecar.users.install_sidecar(events)")
    return rt


def _settings_of(environment: Any) -> SidecarSettings:
    return sidecar_settings(environment.parsed_options, environment.host, local_secrets(environment))


def install_sidecar(events: Any) -> None:
    """Register the sidecar suite's arguments and listeners on Locust's ``events``."""

    def init(environment: Any, opts: Any) -> None:
        settings = settings_or_exit("sidecar", lambda: _settings_of(environment), _ERRORS)
        rt = SidecarRuntime(environment, settings)
        state(environment).set_runtime("sidecar", rt)
        if opts.osiris_url or not environment.host:
            environment.host = settings.base
        if not opts.worker and not getattr(opts, "stop_timeout", None):
            # k6's gracefulStop: calls in flight at the end of the run may finish (and are counted)
            opts.stop_timeout = environment.stop_timeout = GRACEFUL_STOP_S
        rt.attach()

    install_suite(events, add_sidecar_arguments, init)

    @events.test_start.add_listener
    def _start(environment: Any, **_kw: Any) -> None:
        rt = state(environment).runtime("sidecar", SidecarRuntime)
        if rt is None:
            return
        if environment.parsed_options is not None:
            settings = settings_or_quit(environment, "sidecar", lambda: _settings_of(environment), _ERRORS)
            if settings is None:
                return
            rt.settings = settings
        rt.attach()
        if not isinstance(environment.runner, WorkerRunner):
            rt.start_sampling()

    @events.test_stop.add_listener
    def _stop(environment: Any, **_kw: Any) -> None:
        rt = state(environment).runtime("sidecar", SidecarRuntime)
        if rt is not None and not isinstance(environment.runner, WorkerRunner):
            rt.stop_sampling()


class Script(NamedTuple):
    """One of seed 002's scripts: the scenario tag of its requests and the ``SidecarUser`` methods of one iteration."""

    scenario: str
    steps: tuple[str, ...]


class SidecarUser(FastHttpUser):
    """The requests of seed 002's scripts; the script bases (below) choose which ones an iteration sends.

    A subclass that declares its ``script`` is an abstract base (the locustfile's subclass of it is the User).
    """

    abstract = True
    scenario = "sidecar"
    script = Script("sidecar", ())

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        if "script" in cls.__dict__:
            cls.abstract = True
            cls.scenario = cls.script.scenario

    @task
    def iteration(self) -> None:
        for step in self.script.steps:
            getattr(self, step)()

    def __init__(self, environment: Any) -> None:
        rt = state(environment).runtime("sidecar", SidecarRuntime)
        if rt is not None:
            self.network_timeout = socket_timeout(self.network_timeout, rt.settings.target.idle_timeout_s)
        super().__init__(environment)

    def wait_time(self) -> float:
        return runtime(self.environment).settings.think_time_s

    def _settings(self) -> SidecarSettings:
        return runtime(self.environment).settings

    def generate(self) -> None:
        """``POST /generate`` with the sample prompt of the sidecar conf."""
        s = self._settings()
        self._llm(GENERATE, s.config.generate.body(), parse_generate_json)

    def propose_trade(self) -> None:
        """``POST /propose_trade_adjustments/`` with the next prompt of the prompts file."""
        self._llm(TRADE, self._settings().trade_prompts.next(), parse_trade_json)

    def _llm(self, path: str, body: dict[str, Any], parse_json: Any) -> None:
        t = self._settings().target
        llm_call(
            self.client,
            path,
            body,
            stream=False,
            scenario=self.scenario,
            name=path,
            prompt="",
            headers=t.headers_for(self.host or ""),
            timeouts=Timeouts(t.idle_timeout_s, t.call_timeout_s),
            parse_json=parse_json,
        )

    def check_metrics(self) -> None:
        """``GET /metrics``: 200 and a body that parses as Prometheus text (else the failure names the line)."""
        self._get(METRICS, prometheus=True)

    def check_health(self) -> None:
        """``GET /health``: 200."""
        self._get(HEALTH)

    def _get(self, path: str, *, prometheus: bool = False) -> None:
        with self.client.get(
            path,
            headers=self._settings().target.headers_for(self.host or ""),
            allow_redirects=False,
            catch_response=True,
            context={"scenario": self.scenario},
        ) as resp:
            if resp.status_code != 200:
                resp.failure(f"HTTP {resp.status_code}" if resp.status_code else no_answer_reason(resp))
            elif prometheus:
                try:
                    parse(resp.content or b"")
                except PromTextError as exc:
                    resp.failure(str(exc))


class SidecarLoadBase(SidecarUser):
    """Seed 002's default script: ``POST /generate`` with a sample prompt, then ``GET /metrics``."""

    script = Script("sidecar_load", ("generate", "check_metrics"))


class SidecarReadBase(SidecarUser):
    """Seed 002's read-heavy script: ``GET /health``, then ``GET /metrics``."""

    script = Script("sidecar_read", ("check_health", "check_metrics"))


class SidecarTradeBase(SidecarUser):
    """Seed 002's trade script: ``POST /propose_trade_adjustments/`` with the prompts of the prompts file."""

    script = Script("sidecar_trade", ("propose_trade",))
