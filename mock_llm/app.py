"""The mock application: routing, shared state, replies that count statuses, and the LLM-call pipeline.

Every LLM call (chat completions, /generate, /propose_trade_adjustments/) goes through ``begin_llm``:
gateway waits (policy, then overhead), API-key check (401), rate limit (429), budget (402), fault choice
(``error`` answers here, ``slow_headers`` waits here), then a generation slot (FIFO queue). The handler
generates, and ``end_llm`` gives the slot back and books the tokens, in a ``finally``.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import random
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from mock_llm import chunks
from mock_llm.admission import Admission
from mock_llm.clock import Clock
from mock_llm.config import Config
from mock_llm.config import ConfigError as _ConfigError
from mock_llm.faults import Fault, FaultPlan, parse_header
from mock_llm.gateway import Gateway, retry_after_header
from mock_llm.latency import LatencyModel, TokenSchedule, jittered
from mock_llm.prefix_cache import PrefixCache
from mock_llm.protocol import Connection, Request
from mock_llm.stats import Stats
from mock_llm.text import Words

JSON = b"application/json"
_TIMING = b"x-litellm-overhead-duration-ms: %.3f\r\nserver-timing: gateway;dur=%.3f, policy;dur=%.3f\r\n"
Handler = Callable[["MockApp", Request, Connection], Coroutine[Any, Any, None] | None]


CONTROL_REFUSED = (
    "control endpoints answer clients on this machine only, or requests with the X-Mock-Control-Token header "
    "set to the mock's MOCK_CONTROL_TOKEN"
)


@dataclass(frozen=True, slots=True)
class Route:
    handler: Handler
    kind: str  # "llm": faults of every kind and the gateway pipeline; "plain"; "control": not counted


@dataclass(slots=True)
class LlmCall:
    """One admitted LLM call: its caller, random generator, fault, extra headers and start time."""

    key: str
    rng: random.Random
    index: int
    fault: Fault | None
    headers: bytes
    start: float
    sent: int = 0  # output tokens sent so far (booked against the key's budget at the end)
    done: bool = False
    arrived: float = 0.0  # perf_counter when the call reached the LLM pipeline (before gateway waits and queue)


class MockApp:
    """State and dispatch of the mock server."""

    def __init__(self, cfg: Config) -> None:
        self.stats = Stats()
        self.admission = Admission(cfg.max_concurrency)
        self.gateway = Gateway(cfg.gateway, time.monotonic())
        self.routes: dict[str, dict[str, Route]] = {}
        self.index = 0
        self.started = time.time()
        self.cfg = cfg
        self.control_token = ""
        """When set, a control request (``/mock/...``) from another machine must carry it in
        ``X-Mock-Control-Token``; without it, only clients on this machine (loopback) may use them."""
        self.clock = Clock()
        self.sleep_until = self.clock.sleep_until
        self.configure(cfg)

    # --- configuration and routes ---------------------------------------------------------------------

    def configure(self, cfg: Config) -> None:
        """Apply (new) settings; counters and issued tokens are kept."""
        old = self.cfg
        self.cfg = cfg
        self.latency = LatencyModel(cfg)
        if old is cfg or old.seed != cfg.seed or not hasattr(self, "words"):
            self.words = Words(cfg.seed)
        if old is cfg or old.faults != cfg.faults or old.seed != cfg.seed or not hasattr(self, "faults"):
            self.faults = FaultPlan(cfg.faults, cfg.seed)
        self.admission.set_limit(cfg.max_concurrency)
        self.gateway.configure(cfg.gateway, time.monotonic())
        if not hasattr(self, "prefix_cache") or old.prefix_cache != cfg.prefix_cache:
            self.prefix_cache = PrefixCache(cfg.prefix_cache.max_entries)  # new settings: start cold

    def add_routes(self, routes: list[tuple[str, str, Handler, str]]) -> None:
        for method, path, handler, kind in routes:
            self.routes.setdefault(path, {})[method] = Route(handler, kind)

    def reset(self) -> None:
        """Zero the counters, usage and budgets; the request index starts over (outputs repeat)."""
        self.stats.reset()
        self.admission.reset_max()
        self.gateway.reset(time.monotonic())
        self.prefix_cache.clear()
        self.index = 0

    def snapshot(self) -> dict[str, Any]:
        adm = self.admission
        out = self.stats.snapshot(adm.active, adm.max_active, adm.queued)
        out["per_key"] = self.gateway.usage_report(mask=False)
        out["prefix_cache"] = self.prefix_cache.snapshot()
        return out

    # --- dispatch -------------------------------------------------------------------------------------

    def handle(self, req: Request, conn: Connection) -> Coroutine[Any, Any, None] | None:
        methods = self.routes.get(req.path)
        route = methods.get(req.method) if methods is not None else None
        if route is None or route.kind != "control":
            req.tag = key = self.stats.key(req.method, req.path)
            self.stats.requests[key] += 1
        if route is None:
            if methods is None:
                self.error(req, conn, 404, f"no route for {req.path}", "not_found")
                return None
            allow = ", ".join(sorted(methods)).encode()
            msg = f"{req.method} not allowed on {req.path}"
            self.error(req, conn, 405, msg, "method_not_allowed", headers=b"allow: " + allow + b"\r\n")
            return None
        if route.kind == "control" and not self.control_allowed(req, conn):
            self.error(req, conn, 403, CONTROL_REFUSED, "forbidden", "control_forbidden")
            return None
        if route.kind == "plain" and (self.faults or b"x-mock-fault" in req.headers):
            try:
                fault = self.choose_fault(req, llm=False)
            except _ConfigError as err:
                self.error(req, conn, 400, str(err), "invalid_request_error", "invalid_fault")
                return None
            if fault is not None:
                self.fault_error(req, conn, fault)
                return None
        return route.handler(self, req, conn)

    def control_allowed(self, req: Request, conn: Connection) -> bool:
        """Control endpoints: the right ``X-Mock-Control-Token`` when one is set, else a loopback client."""
        if self.control_token:
            given = req.headers.get(b"x-mock-control-token", b"")
            return hmac.compare_digest(given, self.control_token.encode("utf-8"))
        return conn.peer_loopback

    # --- replies --------------------------------------------------------------------------------------

    def count_status(self, req: Request, status: int) -> None:
        if req.tag is not None:
            self.stats.statuses[req.tag][status] += 1

    def reply(
        self, req: Request, conn: Connection, status: int, body: bytes, ctype: bytes = JSON, headers: bytes = b""
    ) -> None:
        self.count_status(req, status)
        conn.send(status, body, ctype, headers)

    def reply_json(self, req: Request, conn: Connection, status: int, obj: Any, headers: bytes = b"") -> None:
        self.reply(req, conn, status, chunks.dumps(obj), JSON, headers)

    def error(
        self,
        req: Request,
        conn: Connection,
        status: int,
        message: str,
        type_: str,
        code: str | int | None = None,
        headers: bytes = b"",
    ) -> None:
        self.reply_json(req, conn, status, chunks.error_object(message, type_, code), headers)

    def start_stream(
        self, req: Request, conn: Connection, status: int, ctype: bytes, headers: bytes, first: bytes = b""
    ) -> None:
        self.count_status(req, status)
        conn.start_stream(status, ctype, headers, first)

    def json_body(self, req: Request, conn: Connection, *, required: bool = True) -> dict[str, Any] | None:
        """The request body as a JSON object, or None after answering 400."""
        if not req.body.strip():
            if not required:
                return {}
            self.error(req, conn, 400, "a JSON object body is required", "invalid_request_error", "invalid_json")
            return None
        try:
            obj = json.loads(req.body)
        except (ValueError, UnicodeDecodeError) as err:
            self.error(req, conn, 400, f"malformed JSON body: {err}", "invalid_request_error", "invalid_json")
            return None
        if not isinstance(obj, dict):
            self.error(req, conn, 400, "the JSON body must be an object", "invalid_request_error", "invalid_json")
            return None
        return obj

    # --- faults ---------------------------------------------------------------------------------------

    def choose_fault(self, req: Request, llm: bool) -> Fault | None:
        """The fault for this request (header first, then rules); counted when chosen."""
        header = req.headers.get(b"x-mock-fault")
        if header is not None:
            fault: Fault | None = parse_header(header.decode("latin-1"))
            if fault is not None and not llm and fault.kind != "error":
                fault = None
        elif self.faults:
            fault = self.faults.roll(req.path, llm)
        else:
            return None
        if fault is not None:
            self.stats.faults[fault.kind] += 1
        return fault

    def fault_error(self, req: Request, conn: Connection, fault: Fault, headers: bytes = b"") -> None:
        status = int(fault.value() or 500)
        self.error(req, conn, status, f"injected error {status}", "mock_fault", status, headers)

    # --- the LLM-call pipeline ------------------------------------------------------------------------

    async def begin_llm(self, req: Request, conn: Connection) -> LlmCall | None:
        """Gateway checks, fault choice and admission; None when the request was already answered."""
        cfg = self.cfg
        gw = cfg.gateway
        self.index += 1
        index = self.index
        rng = random.Random((cfg.seed << 32) + index)
        t0 = time.perf_counter()
        policy = jittered(gw.policy_ms / 1000, gw.policy_jitter_ms / 1000, rng)
        overhead = jittered(gw.gateway_overhead_ms / 1000, gw.gateway_overhead_jitter_ms / 1000, rng)
        if policy > 0:
            await self.sleep_until(t0 + policy)
        t1 = time.perf_counter()
        if overhead > 0:
            await self.sleep_until(t1 + overhead)
        policy_ms = (t1 - t0) * 1000 if policy > 0 else 0.0
        gateway_ms = (time.perf_counter() - t0) * 1000 if policy + overhead > 0 else 0.0
        headers = _TIMING % (gateway_ms, gateway_ms, policy_ms) if gw.timing_headers else b""
        authorization = req.header(b"authorization")
        if authorization is None and req.header(b"x-api-key"):  # Anthropic's header, as gateways accept it
            authorization = f"Bearer {req.header(b'x-api-key')}"
        auth = self.gateway.authenticate(authorization)
        if auth.key is None:
            self.stats.unauthorized += 1
            self.error(
                req,
                conn,
                401,
                auth.message,
                auth.error,
                auth.error,
                headers + b'www-authenticate: Bearer realm="mock_llm"\r\n',
            )
            return None
        verdict, wait = self.gateway.admit(auth.key, time.monotonic())
        if verdict == "rate_limited":
            self.stats.rate_limited += 1
            retry = retry_after_header(wait)
            self.error(
                req,
                conn,
                429,
                f"rate limit exceeded, retry after {retry} s",
                "rate_limit_exceeded",
                "rate_limit_exceeded",
                headers + b"retry-after: %d\r\n" % retry,
            )
            return None
        if verdict == "budget_exceeded":
            self.stats.budget_exceeded += 1
            self.error(req, conn, 402, "token budget exceeded", "budget_exceeded", "budget_exceeded", headers)
            return None
        try:
            fault = self.choose_fault(req, llm=True)
        except _ConfigError as err:
            self.error(req, conn, 400, str(err), "invalid_request_error", "invalid_fault", headers)
            return None
        if fault is not None:
            if fault.kind == "error":
                self.fault_error(req, conn, fault, headers)
                return None
            if fault.kind == "slow_headers":
                await asyncio.sleep(fault.value() or 0.0)
            if fault.kind == "reset_headers":
                conn.reset()
                return None
        queued_at = time.perf_counter()
        if not self.admission.try_acquire():
            await self.admission.acquire()
            headers += b"x-queue-time: %.3f\r\n" % ((time.perf_counter() - queued_at) * 1000)
        return LlmCall(auth.key, rng, index, fault, headers, time.perf_counter(), arrived=t0)

    def end_llm(self, call: LlmCall) -> None:
        """Give the generation slot back and book the tokens sent (once), also for a call cut short."""
        if call.done:
            return
        call.done = True
        self.admission.release()
        self.gateway.add_tokens(call.key, call.sent)

    async def generate(self, req: Request, conn: Connection, call: LlmCall, prompt_tokens: float, n: int) -> bool:
        """Wait as long as generating ``n`` tokens takes, for a non-streamed answer.

        Returns False when a fault already ended the exchange (disconnect or stall: connection closed).
        """
        schedule = self.schedule(call, prompt_tokens)
        fault = call.fault
        if fault is not None and fault.kind in ("disconnect", "reset"):
            await self.sleep_until(schedule.deadline_of(max(1, fault.at_token(n))))
            if fault.kind == "reset":
                conn.reset()
            else:
                conn.close()
            return False
        if fault is not None and fault.kind == "stall":
            await asyncio.sleep(fault.value() or 0.0)
            conn.close()
            return False
        await self.sleep_until(schedule.deadline_of(max(1, n)))
        return True

    def schedule(self, call: LlmCall, prompt_tokens: float) -> TokenSchedule:
        """The token deadlines of a call; the overload multiplier follows the active generations."""
        admission = self.admission
        return TokenSchedule(self.latency, call.start, prompt_tokens, call.rng, lambda: admission.active)

    def reply_generated(self, req: Request, conn: Connection, call: LlmCall, obj: dict[str, Any], tokens: int) -> None:
        """Answer a non-streamed LLM call with ``obj``, altered by a body-level fault."""
        self.stats.tokens_served += tokens
        call.sent = tokens
        fault = call.fault
        kind = fault.kind if fault is not None else ""
        if kind == "wrong_content_type":
            self.reply(req, conn, 200, HTML_PAGE, b"text/html; charset=utf-8", call.headers)
        elif kind in ("invalid_json", "malformed"):
            self.reply(req, conn, 200, chunks.dumps(obj)[:-7], JSON, call.headers)
        elif kind == "sse_error":
            self.reply_json(
                req, conn, 200, chunks.error_object("injected error", "server_error", "mock_fault"), call.headers
            )
        elif kind == "oversized":
            assert fault is not None
            body = chunks.dumps(obj)[:-1] + b',"padding":"' + b"x" * int(fault.value() or 0) + b'"}'
            self.reply(req, conn, 200, body, JSON, call.headers)
        else:
            self.reply_json(req, conn, 200, obj, call.headers)


HTML_PAGE = (
    b"<!DOCTYPE html>\n<html><head><title>Just a moment...</title></head>"
    b"<body><h1>Checking your browser</h1><p>mock_llm wrong_content_type fault</p></body></html>\n"
)
