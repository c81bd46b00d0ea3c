"""The LLM-gateway suite of seed 000: proxied LLM calls, health, login/refresh, the admin API (closed model).

``install_gateway(events)`` (called by ``locustfiles/gateway.py``) adds the knobs (``gateway_options``),
loads and validates ``conf/gateway.yaml`` at start-up (a bad entry stops the run naming the file and the
key), sets the host, gives the concrete ``GatewayUser`` classes their task weights and wait time from the
file, and on the master (or the local runner) attaches the ``recovery_time`` hook and a ``gateway`` part of
the JSON summary to the metrics.

``GatewayUser`` (a FastHttpUser) runs, by weight:

* ``llm`` / ``llm_stream``: one proxied LLM call with ``Authorization: Bearer API_KEY`` (``llm_call``), in
  the API of ``--api``/``API`` (``proxied_call``; Anthropic: ``x-api-key``);
  ``gateway_latency`` and ``policy_check_latency`` read from the answer's headers (``gateway_headers``);
* ``health``: ``GET /health``;
* ``admin``: the admin endpoints in turn, with the access token of the User's login.

Auth: each User logs in once (``on_start``), refreshes its token pair before the access token expires
(``auth.refresh_before_expiry_s``, at most half the lifetime), and on a 401 from the admin API refreshes,
or logs in again when the refresh is refused too. A failed login or refresh is a failed request; the User
goes on (and tries again after ``auth.retry_after_failure_s``; admin tasks are skipped while it has no
token). Auth requests have scenario ``auth``.

Answers are classified by ``gateway_status``: blocked (429) and budget (402 or a budget error code)
answers are counted in ``requests_blocked`` / ``budget_exceeded`` and are not failures by default; their
gateway timings are recorded with their status tag (the gateway itself answered them).
"""

from __future__ import annotations

import itertools
import json
import logging
import time
from collections.abc import Callable
from typing import Any

from locust import FastHttpUser, between, constant, task
from locust.runners import WorkerRunner

from llm_metrics.engine.calls import CallRecord
from llm_metrics.engine.store import make_tags
from llm_metrics.state import state
from llm_users.client.apis import proxied_call
from llm_users.client.call import Timeouts, llm_call, no_answer_reason, socket_timeout
from llm_users.common.options import settings_or_exit, settings_or_quit
from llm_users.common.security import add_extra_secret, refuse_short_secret
from llm_users.common.suite import install_suite
from llm_users.common.target_binding import LocalSecrets, local_secrets, origin
from llm_users.gateway.config import GatewayConfigError, lookup, render
from llm_users.gateway.headers import carried, measure
from llm_users.gateway.metrics import (
    GATEWAY_LATENCY,
    POLICY_CHECK_LATENCY,
    REQUESTS_BLOCKED,
    attach_recovery,
)
from llm_users.gateway.options import GatewaySettings, OptionError, add_gateway_arguments, gateway_settings
from llm_users.gateway.status import Outcome, classify

log = logging.getLogger(__name__)

SCENARIO_LLM = "llm"
SCENARIO_LLM_STREAM = "llm_stream"
SCENARIO_HEALTH = "health"
SCENARIO_ADMIN = "admin"
SCENARIO_AUTH = "auth"


class GatewayRuntime:
    """Per-environment state of the gateway suite."""

    def __init__(self, environment: Any, settings: GatewaySettings) -> None:
        self.environment = environment
        self.settings = settings


def runtime(environment: Any) -> GatewayRuntime:
    rt = state(environment).runtime("gateway", GatewayRuntime)
    if rt is None:
        raise RuntimeError(
            "the gateway suite is not installed: call llm_users.gateway.users.install_gateway(events) in the locustfile"
        )
    return rt


_ERRORS = (OptionError, GatewayConfigError)


def _settings_or_exit(opts: Any, local: LocalSecrets | None = None) -> GatewaySettings:
    return settings_or_exit("gateway", lambda: gateway_settings(opts, local), _ERRORS)


def configure_user_classes(user_classes: list[type[Any]], settings: GatewaySettings) -> None:
    """Task weights and wait time of the concrete ``GatewayUser`` classes, from the configuration."""
    conf = settings.conf
    tasks: list[Any] = []
    for name, weight in conf.tasks.items():
        tasks.extend([getattr(GatewayUser, name)] * weight)
    lo, hi = conf.wait_min_s, conf.wait_max_s
    wait = constant(lo) if lo == hi else between(lo, hi)
    for cls in user_classes:
        if issubclass(cls, GatewayUser):
            cls.tasks = tasks
            cls.wait_time = wait


def install_gateway(events: Any) -> None:
    """Register the gateway suite's arguments and listeners on Locust's ``events``."""

    def init(environment: Any, opts: Any) -> None:
        settings = _settings_or_exit(opts, local_secrets(environment))
        state(environment).set_runtime("gateway", GatewayRuntime(environment, settings))
        for secret in settings.secrets():  # the conf's password too: masked even when not the one sent
            add_extra_secret(environment, secret)
        refuse_short_secret(opts, f"auth.password of {opts.gateway_conf}", settings.conf.auth.password)
        if opts.base_url or not environment.host:
            environment.host = settings.base_url
        configure_user_classes(list(environment.user_classes), settings)

    install_suite(events, add_gateway_arguments, init)

    @events.test_start.add_listener
    def _start(environment: Any, **_kw: Any) -> None:
        rt = state(environment).runtime("gateway", GatewayRuntime)
        if rt is None:
            return
        if environment.parsed_options is not None:
            opts = environment.parsed_options
            settings = settings_or_quit(
                environment, "gateway", lambda: gateway_settings(opts, local_secrets(environment)), _ERRORS
            )
            if settings is None:
                return
            rt.settings = settings
            for secret in settings.secrets():
                add_extra_secret(environment, secret)
            configure_user_classes(list(environment.user_classes), rt.settings)
        if isinstance(environment.runner, WorkerRunner):
            return
        m = state(environment).metrics
        if m is not None:
            attach_recovery(m, environment, rt.settings.conf.recovery)
            m.json_sections["gateway"] = lambda: gateway_section(rt.settings)
            # a gateway SLO without a sample says which headers were looked for (llm_metrics.engine.nodata)
            m.no_data_needs[GATEWAY_LATENCY] = carried(rt.settings.conf.gateway_latency)
            m.no_data_needs[POLICY_CHECK_LATENCY] = carried(rt.settings.conf.policy_check_latency)


def gateway_section(settings: GatewaySettings) -> dict[str, Any]:
    """What the JSON summary says about the suite's configuration (no credentials)."""
    conf = settings.conf
    return {
        "conf": conf.source,
        "tasks": dict(conf.tasks),
        "wait_time_s": [conf.wait_min_s, conf.wait_max_s],
        "gateway_latency_sources": [s.describe() for s in conf.gateway_latency],
        "policy_check_latency_sources": [s.describe() for s in conf.policy_check_latency],
        "statuses": conf.statuses.describe(),
        "api_key_set": bool(settings.target.api_key),
    }


class _Session:
    """One User's login: its token pair and when to refresh it (``time.monotonic()`` seconds)."""

    __slots__ = ("access", "refresh", "refresh_at")

    def __init__(self, access: str, refresh: str | None, refresh_at: float) -> None:
        self.access = access
        self.refresh = refresh
        self.refresh_at = refresh_at


class GatewayUser(FastHttpUser):
    """A client of the gateway: LLM calls through it, health checks, the admin API (module docstring)."""

    abstract = True  # the locustfile declares the concrete class; install_gateway sets tasks and wait time
    wait_time = between(0.5, 1.5)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        env = args[0] if args else kwargs.get("environment")
        rt = state(env).runtime("gateway", GatewayRuntime) if env is not None else None
        if rt is not None:
            self.network_timeout = socket_timeout(self.network_timeout, rt.settings.target.idle_timeout_s)
        super().__init__(*args, **kwargs)
        self.session: _Session | None = None
        self._auth_retry_at = 0.0
        self._admin_paths: itertools.cycle[str] | None = None

    # -- helpers -----------------------------------------------------------------------------------

    @property
    def settings(self) -> GatewaySettings:
        return runtime(self.environment).settings

    def _base_headers(self) -> dict[str, str]:
        sendable = self.settings.target.headers_for(self.host or "")  # none to another origin than the bound one
        return {k: v for k, v in sendable.items() if k == "X-LoadTest-Token"}

    def _metrics(self) -> Any:
        return state(self.environment).metrics

    def _count_apart(self, out: Outcome, status: int, name: str, scenario: str) -> None:
        """Count a blocked or budget answer that the hooks do not count themselves.

        The hooks count ``context["blocked"]`` (non-failures) and every 429 as ``requests_blocked``; a
        blocked answer that also fails (``blocked_are_failures``) and is not a 429 is counted here.
        """
        if not (out.counted_apart and out.failed):
            return
        if out.kind == REQUESTS_BLOCKED and status == 429:
            return
        m = self._metrics()
        if m is not None:
            m.count(out.kind, {"name": name, "scenario": scenario, "status": str(status)})

    def plain(
        self,
        method: str,
        path: str,
        *,
        scenario: str,
        headers: dict[str, str] | None = None,
        body: Any = None,
        check: Callable[[bytes], str | None] | None = None,
    ) -> tuple[int, bytes, bool]:
        """One non-LLM request, classified by the status policy; ``check(body)`` may fail an answer that the
        policy accepts. Returns the status (0: no answer), the body and whether it succeeded."""
        policy = self.settings.conf.statuses
        hdrs = {**self._base_headers(), **(headers or {})}
        kwargs: dict[str, Any] = {
            "headers": hdrs,
            "name": path,
            "catch_response": True,
            "context": {"scenario": scenario},
            "allow_redirects": False,  # secrets (token header, login password) never follow a redirect
        }
        if body is not None:
            kwargs["json"] = body
        with self.client.request(method, path, **kwargs) as resp:
            status = resp.status_code or 0
            content = resp.content or b""
            out = classify(status, content, policy)
            ok = False
            if status == 0:
                resp.failure(f"no response: {no_answer_reason(resp)}")
            elif out.counted_apart and not out.failed:
                resp.request_meta["context"]["blocked"] = out.kind
                resp.success()
            elif out.failed:
                resp.failure(out.reason or f"HTTP {status}")
            else:
                problem = check(content) if check is not None else None
                if problem:
                    resp.failure(problem)
                    ok = False
                else:
                    resp.success()
                    ok = True
        self._count_apart(out, status, path, scenario)
        return status, content, ok

    # -- auth --------------------------------------------------------------------------------------

    def _tokens(self, content: bytes) -> tuple[str, str | None, float] | str:
        """(access, refresh, expires_in) from a login/refresh answer, or why it cannot be used."""
        a = self.settings.conf.auth
        try:
            obj = json.loads(content)
        except ValueError:
            return "the answer is not JSON"
        access = lookup(obj, a.access_token_field)
        if not isinstance(access, str) or not access:
            return f"no {a.access_token_field} in the answer"
        refresh = lookup(obj, a.refresh_token_field)
        expires = lookup(obj, a.expires_in_field)
        if isinstance(expires, bool) or not isinstance(expires, int | float) or expires <= 0:
            expires = a.default_expires_in_s
        return access, refresh if isinstance(refresh, str) and refresh else None, float(expires)

    def _start_session(self, content: bytes, sent: float) -> None:
        got = self._tokens(content)
        assert not isinstance(got, str)
        access, refresh, expires_in = got
        margin = min(self.settings.conf.auth.refresh_before_expiry_s, expires_in / 2.0)
        # the lifetime counts from the server's issue, which is before the answer arrived: count from the send
        self.session = _Session(access, refresh, sent + expires_in - margin)

    def _check_tokens(self, content: bytes) -> str | None:
        got = self._tokens(content)
        return got if isinstance(got, str) else None

    def login(self) -> bool:
        """POST the login; True when a token pair was obtained."""
        a = self.settings.conf.auth
        bound = self.settings.target.origin and origin(self.host or "") == self.settings.target.origin
        password = self.settings.password if bound else ""  # the password goes to its own origin only
        body = render(a.login_body, {"username": a.username, "password": password})
        sent = time.monotonic()
        _, content, ok = self.plain("POST", a.login_path, scenario=SCENARIO_AUTH, body=body, check=self._check_tokens)
        if ok:
            self._start_session(content, sent)
            return True
        self.session = None
        self._auth_retry_at = time.monotonic() + a.retry_after_failure_s
        return False

    def refresh(self) -> bool:
        """POST the refresh; on a 401 (or no refresh token) log in again. True when a pair was obtained."""
        a = self.settings.conf.auth
        s = self.session
        if s is None or not s.refresh:
            return self.login()
        body = render(a.refresh_body, {"refresh_token": s.refresh})
        sent = time.monotonic()
        status, content, ok = self.plain(
            "POST", a.refresh_path, scenario=SCENARIO_AUTH, body=body, check=self._check_tokens
        )
        if ok:
            self._start_session(content, sent)
            return True
        if status in (401, 403):
            self.session = None
            return self.login()
        # the gateway failed (5xx, no answer): keep the pair, which may still be valid, and retry later
        s.refresh_at = time.monotonic() + a.retry_after_failure_s
        return False

    def keep_session(self) -> None:
        """Log in when there is no session (not before a retry delay), refresh when it is due."""
        if not self.settings.conf.auth.enabled:
            return
        now = time.monotonic()
        if self.session is None:
            if now >= self._auth_retry_at:
                self.login()
        elif now >= self.session.refresh_at:
            self.refresh()

    def on_start(self) -> None:
        if self.settings.conf.auth.enabled:
            self.login()

    # -- tasks -------------------------------------------------------------------------------------

    def _llm(self, stream: bool) -> CallRecord:
        self.keep_session()
        st = self.settings
        conf = st.conf
        api = st.api
        path, payload = proxied_call(api, conf.llm_path, conf.llm_payload, stream, conf.include_usage)
        stream = stream and api.streams
        scenario = SCENARIO_LLM_STREAM if stream else SCENARIO_LLM
        name = f"{path} (stream)" if stream else path
        outcome: list[Outcome] = []

        def blocked(status: int, body: bytes) -> str | None:
            out = classify(status, body, conf.statuses)
            outcome.append(out)
            return out.kind if out.counted_apart and not out.failed else None

        def inspect(resp: Any, rec: CallRecord) -> None:
            headers = resp.headers
            if headers is None:
                return
            ttfb = (rec.t_headers - rec.t_start) * 1000.0 if rec.t_headers is not None else None
            g = measure(conf.gateway_latency, headers.get, ttfb)
            if g is not None:
                rec.extra[GATEWAY_LATENCY] = g
            p = measure(conf.policy_check_latency, headers.get, ttfb)
            if p is not None:
                rec.extra[POLICY_CHECK_LATENCY] = p

        rec = llm_call(
            self.client,
            path,
            payload,
            stream=stream,
            scenario=scenario,
            name=name,
            prompt="",
            headers=api.headers({**self._base_headers(), **st.target.headers_for(self.host or "")}),
            decoder=api.decoder,
            parse_json=api.parse_json,
            timeouts=Timeouts(st.target.idle_timeout_s, st.target.call_timeout_s),
            server_stamps=st.target.server_stamps,
            inspect=inspect,
            blocked=blocked,
        )
        if outcome and not rec.ok:
            out = outcome[0]
            self._count_apart(out, rec.status, name, scenario)
            m = self._metrics()
            if out.counted_apart and not out.failed and rec.extra and m is not None:
                # answered by the gateway itself: its timings are gateway time, tagged with the status
                tags = make_tags({"scenario": scenario, "name": name, "status": rec.status, **dict(rec.tags)})
                for metric, value in rec.extra.items():
                    m.store.add(metric, tags, value)
        return rec

    @task
    def llm(self) -> None:
        self._llm(stream=False)

    @task
    def llm_stream(self) -> None:
        self._llm(stream=True)

    @task
    def health(self) -> None:
        self.keep_session()
        self.plain("GET", self.settings.conf.health_path, scenario=SCENARIO_HEALTH)

    @task
    def admin(self) -> None:
        self.keep_session()
        conf = self.settings.conf
        if self._admin_paths is None:
            self._admin_paths = itertools.cycle(conf.admin_paths)
        if conf.auth.enabled and self.session is None:
            return  # the login failed (a failed request already) and is retried after a delay
        path = next(self._admin_paths)
        headers = {"Authorization": f"Bearer {self.session.access}"} if self.session is not None else {}
        status, _, _ = self.plain("GET", path, scenario=SCENARIO_ADMIN, headers=headers, check=_json_check)
        if status == 401 and conf.auth.enabled:
            # the access token was refused (expired, revoked): refresh, or log in again if that is refused
            self.refresh()


def _json_check(content: bytes) -> str | None:
    try:
        json.loads(content or b"")
    except ValueError:
        return "invalid JSON body"
    return None
