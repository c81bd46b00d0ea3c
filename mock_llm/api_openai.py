"""OpenAI-compatible endpoints: ``GET /v1/models``, ``GET /v1/version``, ``POST /v1/chat/completions``.

A stream sends its headers and the role chunk at once, then one chunk per token at the token's deadline,
a chunk with ``finish_reason``, a usage chunk (``choices: []``) when ``stream_options.include_usage``, and
``data: [DONE]``. Stream faults fire at a token index (default: half of the output).

The stream loop (``run_stream``) and the non-streamed wait are shared by every API the mock serves
(``api_more``): each gives its encoder (``chunks.ChatChunks``, ``formats.*``), so the latency model, usage
and faults are the same for all. A call that gives tools is answered with a tool call when its last message
holds ``#tool_call`` or, at random, for a share ``tool_call_rate`` of the calls: its output tokens are then
the pieces of the call's arguments (``{"text": "..."}``) and it ends with ``finish_reason: tool_calls``.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from mock_llm import chunks
from mock_llm.app import HTML_PAGE, Handler, LlmCall, MockApp
from mock_llm.chunks import ChatChunks
from mock_llm.prefix_cache import PrefixHit
from mock_llm.protocol import Connection, Request, frame
from mock_llm.text import SEQUENCE_LENGTH, count_message_tokens

_SSE = b"text/event-stream"
_TOKEN_FAULTS = frozenset({"disconnect", "reset", "malformed", "sse_error", "stall", "invalid_json"})
# Tokens already due (the stream is behind its schedule, or itl is 0) go out in one write of up to this many
# chunks, then the stream yields to the others; a token due later is written alone, at its deadline.
_BATCH_MAX = 16


def models(app: MockApp, req: Request, conn: Connection) -> None:
    created = int(app.started)
    data = [{"id": m, "object": "model", "created": created, "owned_by": "mock_llm"} for m in app.cfg.models]
    app.reply_json(req, conn, 200, {"object": "list", "data": data})


def version(app: MockApp, req: Request, conn: Connection) -> None:
    app.reply_json(req, conn, 200, {"version": app.cfg.version, "server": "mock_llm"})


def _int_or_none(value: Any) -> int | str | None:
    """A positive int, None when absent, or an error text."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        return "expected a positive integer"
    return value


TOOL_CALL_MARKER = "#tool_call"
_ARGS_OPEN = b'{\\"text\\":\\"'  # {"text":" inside a JSON string
_ARGS_CLOSE = b'\\"}'


class ChatParams:
    """The validated fields of a chat-completion request (and of the other APIs' requests)."""

    __slots__ = (
        "api",
        "include_usage",
        "max_tokens",
        "messages",
        "model",
        "prefill_tokens",
        "prefix",
        "prompt_tokens",
        "stream",
        "timestamps",
        "tool",
        "tool_wanted",
    )

    def __init__(
        self,
        model: str,
        stream: bool,
        include_usage: bool,
        max_tokens: int | None,
        prompt_tokens: int,
        timestamps: bool,
        messages: list[Any] | None = None,
    ) -> None:
        self.model = model
        self.stream = stream
        self.include_usage = include_usage
        self.max_tokens = max_tokens
        self.prompt_tokens = prompt_tokens
        self.timestamps = timestamps
        self.messages = messages  # kept only when the prefix cache is on
        self.prefill_tokens: float = prompt_tokens  # the prompt tokens the TTFT pays prefill for
        self.prefix: PrefixHit | None = None
        self.api = "chat"
        self.tool: str | None = None  # the tool's name: the call is answered with a tool call
        self.tool_wanted = False  # the prompt asks for a tool call (TOOL_CALL_MARKER)

    def choose_tool(self, tools: Any, messages: Any, app: MockApp) -> None:
        """Note the first tool's name when the request gives tools (``decide_tool`` decides per call)."""
        if not isinstance(tools, list) or not tools or not isinstance(tools[0], dict):
            return
        first = tools[0]
        fn = first.get("function") if isinstance(first.get("function"), dict) else first
        name = fn.get("name") if isinstance(fn, dict) else None
        self.tool = name if isinstance(name, str) and name else "tool"
        last = messages[-1] if isinstance(messages, list) and messages else messages
        text = last.get("content") if isinstance(last, dict) else last
        self.tool_wanted = isinstance(text, str) and TOOL_CALL_MARKER in text

    def decide_tool(self, app: MockApp, call: LlmCall) -> None:
        """Keep ``tool`` only when this call answers with a tool call (marker, or a draw under the rate)."""
        if self.tool is None:
            return
        if not self.tool_wanted:
            rate = app.cfg.tool_call_rate
            if rate <= 0 or call.rng.random() >= rate:
                self.tool = None
                return
        app.stats.tool_calls += 1

    def use_prefix_cache(self, app: MockApp) -> None:
        """Look the prompt up in the prefix cache (an admitted call): cached tokens cost less prefill."""
        if self.messages is None:
            return
        hit = app.prefix_cache.lookup(self.messages)
        self.prefix = hit
        self.prefill_tokens = hit.prompt_tokens - app.cfg.prefix_cache.discount * hit.cached_tokens

    @property
    def cached_tokens(self) -> int | None:
        return None if self.prefix is None else self.prefix.cached_tokens


def _params(app: MockApp, req: Request, conn: Connection) -> ChatParams | None:
    body = app.json_body(req, conn)
    if body is None:
        return None
    bad = "invalid_request_error"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        app.error(req, conn, 400, "messages: expected a non-empty list", bad, "invalid_messages")
        return None
    model = body.get("model", app.cfg.models[0])
    if not isinstance(model, str) or not model:
        app.error(req, conn, 400, "model: expected a string", bad, "invalid_model")
        return None
    if app.cfg.reject_unknown_models and model not in app.cfg.models:
        app.error(req, conn, 404, f"The model {model!r} does not exist", bad, "model_not_found")
        return None
    max_tokens = _int_or_none(body.get("max_completion_tokens", body.get("max_tokens")))
    if isinstance(max_tokens, str):
        app.error(req, conn, 400, f"max_tokens: {max_tokens}", bad, "invalid_max_tokens")
        return None
    stream = body.get("stream", False)
    options = body.get("stream_options") or {}
    if not isinstance(stream, bool) or not isinstance(options, dict):
        app.error(req, conn, 400, "stream: expected a boolean, stream_options an object", bad, "invalid_stream")
        return None
    timestamps = app.cfg.timestamps or req.headers.get(b"x-mock-timestamps", b"0") in (b"1", b"true")
    params = ChatParams(
        model,
        stream,
        bool(options.get("include_usage")),
        max_tokens,
        count_message_tokens(messages),
        timestamps,
        messages if app.cfg.prefix_cache.enabled else None,
    )
    params.choose_tool(body.get("tools"), messages, app)
    return params


def chat_completions(app: MockApp, req: Request, conn: Connection) -> Any:
    params = _params(app, req, conn)
    if params is None:
        return None
    return _chat(app, req, conn, params)


async def _chat(app: MockApp, req: Request, conn: Connection, params: ChatParams) -> None:
    await serve(app, req, conn, params, _stream, _complete)


async def serve(app: MockApp, req: Request, conn: Connection, params: ChatParams, stream: Any, complete: Any) -> None:
    """The LLM-call pipeline of every API: admission, then ``stream`` or ``complete``, then the slot back."""
    call = await app.begin_llm(req, conn)
    if call is None:
        return
    params.use_prefix_cache(app)
    params.decide_tool(app, call)
    try:
        if params.stream:
            await stream(app, req, conn, call, params)
        else:
            await complete(app, req, conn, call, params)
    except asyncio.CancelledError:
        app.stats.client_disconnects += 1
        raise
    finally:
        app.end_llm(call)


class Generated:
    """What a non-streamed call generated: its texts, token counts and finish reason."""

    __slots__ = ("content", "finish", "reasoning", "reasoning_text", "tool_call", "total")

    def __init__(self, content: str, reasoning_text: str | None, reasoning: int, total: int, finish: str) -> None:
        self.content = content
        self.reasoning_text = reasoning_text
        self.reasoning = reasoning
        self.total = total
        self.finish = finish
        self.tool_call: dict[str, Any] | None = None


async def generate_answer(
    app: MockApp, req: Request, conn: Connection, call: LlmCall, params: ChatParams, reasoning: int
) -> Generated | None:
    """Wait as long as the answer takes, then its texts; None when a fault already ended the exchange."""
    n, finish = app.latency.output_tokens(params.max_tokens, call.rng)
    total = reasoning + n
    if not await app.generate(req, conn, call, params.prefill_tokens, total):
        return None
    offset = call.rng.randrange(SEQUENCE_LENGTH)
    words = app.words
    content = words.text(offset + reasoning, n)
    if params.prefix is not None:
        app.prefix_cache.remember_answer(params.prefix, content)
    out = Generated(content, words.text(offset, reasoning) if reasoning else None, reasoning, total, finish)
    if params.tool is not None:
        out.finish = "tool_calls"
        args = chunks.dumps({"text": content}).decode()
        out.tool_call = {
            "id": f"call_mock{call.index:x}",
            "type": "function",
            "function": {"name": params.tool, "arguments": args},
        }
    return out


async def _complete(app: MockApp, req: Request, conn: Connection, call: LlmCall, params: ChatParams) -> None:
    reasoning = app.cfg.reasoning_tokens
    g = await generate_answer(app, req, conn, call, params, reasoning)
    if g is None:
        return
    body = chunks.completion_body(
        f"chatcmpl-mock{call.index:x}",
        int(time.time()),
        params.model,
        g.content,
        g.reasoning_text,
        g.finish,
        chunks.usage_object(params.prompt_tokens, g.total, reasoning, params.cached_tokens),
        app.cfg.reasoning_field,
        g.tool_call,
    )
    app.reply_generated(req, conn, call, body, g.total)


async def _stream(app: MockApp, req: Request, conn: Connection, call: LlmCall, params: ChatParams) -> None:
    enc = ChatChunks(
        f"chatcmpl-mock{call.index:x}", int(time.time()), params.model, params.timestamps, app.cfg.reasoning_field
    )
    await run_stream(app, req, conn, call, params, enc, app.cfg.reasoning_tokens)


async def run_stream(
    app: MockApp, req: Request, conn: Connection, call: LlmCall, params: ChatParams, enc: Any, reasoning: int
) -> None:
    """Stream the tokens at their deadlines with the API's encoder ``enc``; ``call.sent`` counts them.

    ``reasoning`` tokens come first (``enc.reasoning``), then the output (``enc.content``, or the pieces of a
    tool call: ``enc.tool_start`` then ``enc.tool_args``), then ``enc.end`` (finish, usage, terminal event).
    """
    fault = call.fault
    kind = fault.kind if fault is not None else ""
    if kind == "wrong_content_type":
        app.reply(req, conn, 200, HTML_PAGE, b"text/html; charset=utf-8", call.headers)
        return
    n, finish = app.latency.output_tokens(params.max_tokens, call.rng)
    total = reasoning + n
    tool = params.tool
    if tool is not None:
        finish = "tool_calls"
    fault_at = -1
    if fault is not None and kind in _TOKEN_FAULTS:
        fault_at = 0 if kind == "invalid_json" else fault.at_token(total)
    app.start_stream(req, conn, 200, _SSE, call.headers)
    conn.write_chunk(enc.start())
    if kind == "oversized":
        assert fault is not None
        conn.write_chunk(enc.raw_content("x" * int(fault.value() or 0)))
    schedule = app.schedule(call, params.prefill_tokens)
    offset = call.rng.randrange(SEQUENCE_LENGTH)
    seq = app.words.seq
    stats = app.stats
    perf = time.perf_counter
    sleep_until = app.sleep_until
    deadline = schedule.next_deadline
    batch: list[bytes] = []  # framed chunks already due, written together before the next wait
    for i in range(total):
        if i == fault_at:
            conn.write_framed(b"".join(batch))
            batch = []
            if await _stream_fault(conn, enc, kind, fault):
                return
        if i:
            deadline = schedule.advance()
        if deadline > perf():
            if batch:
                conn.write_framed(b"".join(batch))
                batch = []
            await sleep_until(deadline)
            if conn.closed:
                return
        elif len(batch) >= _BATCH_MAX:
            conn.write_framed(b"".join(batch))
            batch = []
            await asyncio.sleep(0)  # behind schedule: let the other streams have their turn
            if conn.closed:
                return
        word = seq[(offset + i) % SEQUENCE_LENGTH]
        if i < reasoning:
            batch.append(frame(enc.reasoning(word)))
        elif tool is None:
            batch.append(frame(enc.content(word)))
        else:
            if i == total - 1:
                word += _ARGS_CLOSE
            if i == reasoning:
                batch.append(frame(enc.tool_start(f"call_mock{call.index:x}", tool, _ARGS_OPEN + word)))
            else:
                batch.append(frame(enc.tool_args(word)))
        if not i:
            stats.observe_ttft(perf() - call.arrived)
        call.sent += 1
        stats.tokens_served += 1
        if conn.write_paused:
            conn.write_framed(b"".join(batch))
            batch = []
            await conn.drain()
    if fault_at == total:
        conn.write_framed(b"".join(batch))
        batch = []
        if await _stream_fault(conn, enc, kind, fault):
            return
    if params.prefix is not None:
        app.prefix_cache.remember_answer(params.prefix, app.words.text(offset + reasoning, n))
    include = params.include_usage and app.cfg.usage_chunk
    tail = enc.end(finish, include, params.prompt_tokens, total, reasoning, params.cached_tokens)
    conn.end_stream(tail, before=b"".join(batch))
    stats.completed_streams += 1


async def _stream_fault(conn: Connection, enc: Any, kind: str, fault: Any) -> bool:
    """Inject a mid-stream fault; True when the stream is over."""
    if kind == "disconnect":
        conn.close()
        return True
    if kind == "reset":
        conn.reset()
        return True
    if kind in ("malformed", "invalid_json"):
        conn.write_chunk(chunks.MALFORMED)
        return False
    if kind == "sse_error":
        conn.end_stream(enc.error("injected mid-stream error"))
        return True
    if kind == "stall":
        await asyncio.sleep(fault.value() or 0.0)
        conn.close()
        return True
    return False


ROUTES: list[tuple[str, str, Handler, str]] = [
    ("GET", "/v1/models", models, "plain"),
    ("GET", "/v1/version", version, "plain"),
    ("POST", "/v1/chat/completions", chat_completions, "llm"),
]
