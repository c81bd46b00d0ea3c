"""Decoding of an OpenAI-compatible chat-completions answer into the facts one call is timed by.

Pure: no sockets, no Locust. The caller hands over each SSE event's data with the time it was parsed
(`time.perf_counter()` seconds); the accumulator keeps what design.md section 3 needs: the first token event of
any kind (TTFT), the time of every token event, the end (``[DONE]``), the usage counts, and the first error found.

Token events: a delta with non-empty ``content`` or a ``tool_calls`` piece is an *output* event; a delta with
non-empty ``reasoning_content`` or ``reasoning`` (the field name several servers send instead) is a *reasoning*
event. Both are in ``chunk_times``; ``first_output`` (TTFO) and ``first_reasoning`` are kept apart, and
reasoning events are counted. Role-only and keep-alive events are not token events. ``StreamState``,
``StreamError`` and ``JsonAnswer``, shared by the decoders of every API, are in ``decoding``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from llm_users.client.decoding import (
    JsonAnswer,
    StreamDecoder,
    StreamError,
    feed_pairs,
    load_body,
    load_event,
    reasoning_tokens_of,
)
from llm_users.client.event_shapes import SHAPES, STR_MARKERS, learn, match, plain, text_chunk, tokenless
from llm_users.client.sse import text_events

_loads = json.loads
_dumps = json.dumps


class _Template:
    """A parsed content chunk with a hole where its content string is: ``prefix + text + suffix``; ``line`` is
    ``data: `` + prefix, the start of the event's text (``feed_texts``), or None when the chunk spans lines."""

    __slots__ = ("line", "lp", "ls", "n", "prefix", "suffix")

    def __init__(self, prefix: str, suffix: str) -> None:
        self.prefix = prefix
        self.suffix = suffix
        self.lp = len(prefix)
        self.ls = len(suffix)
        self.n = self.lp + self.ls
        self.line = None if "\n" in prefix or "\n" in suffix else "data: " + prefix


_OTHER_TOKEN_KEYS = ("reasoning_content", "reasoning", "tool_calls")
_TEMPLATE_TRIES = 4  # content chunks parsed in full before giving up on a template for this stream
_SHAPE_TRIES = 6  # events parsed in full offered to event_shapes.learn per stream


def _make_template(core: str, obj: Any, text: str) -> _Template | None:
    """A template from a parsed content chunk, or None when its content's place cannot be proved.

    The hole is the only place of ``"text"`` in ``core``; it is proved to be the delta content (and nothing
    else) by parsing the chunk again with a marker in the hole: the result must be the same object with the
    marker as content. Then any ``prefix + t + suffix`` with a ``plain`` t parses to that object with content
    t, which is what ``feed`` takes from it.
    """
    if not plain(text) or not text:
        return None
    delta0 = obj["choices"][0]["delta"]
    if any(k in delta0 for k in _OTHER_TOKEN_KEYS):  # not a plain content chunk: a template would miscount
        return None
    needle = '"' + text + '"'
    i = core.find(needle)
    if i < 0 or core.find(needle, i + 1) >= 0:
        return None
    prefix, suffix = core[: i + 1], core[i + 1 + len(text) :]
    marker = next((m for m in STR_MARKERS if m not in core), None)
    if marker is None:
        return None
    try:
        probe = _loads(prefix + marker + suffix)
        delta = probe["choices"][0]["delta"]
        if delta["content"] != marker:
            return None
        delta["content"] = text
    except (ValueError, LookupError, TypeError):
        return None
    if probe != obj:
        return None
    return _Template(prefix, suffix)


def _split_stamp(data: str) -> tuple[str, int | None]:
    """``{...,"mock_sent_ns":N}`` -> (``{...}``, N) when the stamp is the last member, as the mock writes it."""
    i = data.rfind(_STAMP_KEY)
    if i < 0 or not data.endswith("}"):
        return data, None
    digits = data[i + len(_STAMP_KEY) : -1]
    if not digits.isdigit() or not digits.isascii() or (digits[0] == "0" and len(digits) > 1):
        return data, None
    return data[:i] + "}", int(digits)


_STAMP_KEY = ',"mock_sent_ns":'


class ChatStreamAccumulator(StreamDecoder):
    """Feed SSE event data strings in arrival order; read the result from ``state``.

    Speed (bench/RESULTS.md): ``json.loads`` of every chunk was a fifth of the CPU of a streamed call. Chunks of
    one stream differ mostly in their content, so the first content chunks are parsed in full and, when the
    place of their content string is proved (``_make_template``), later chunks that are the same bytes around
    a different plain content string are read without parsing: they are exactly that chunk with another
    content. Any other chunk (usage, finish, error, escapes in the text, another shape) is parsed in full.

    Across streams (issue 19, session 5): the events of every answer differ from the last answer's only in
    ``id``, ``created`` (and ``system_fingerprint``), which are never read. ``event_shapes`` proves, once per
    process, an event's shape with holes there; a later event of that shape (role, first content, reasoning
    chunks, finish, usage) is then read without a parse, and this stream's template follows from its first
    content chunk (``feed_texts`` reads the rest of that network read with it).
    """

    __slots__ = ("_chunk_times", "_line", "_shape_tries", "_shapes", "_tpl", "_tries", "shape_hits", "template_hits")

    def __init__(self, collect_server_stamps: bool = False) -> None:
        super().__init__(collect_server_stamps)
        self._chunk_times = self.state.chunk_times
        self._tpl: _Template | None = None
        self._line: tuple[str, str] | None = None  # feed_texts' reading of the template
        self._tries = _TEMPLATE_TRIES
        self._shapes = True
        self._shape_tries = _SHAPE_TRIES
        self.template_hits = 0
        self.shape_hits = 0

    def disable_template(self) -> None:
        """Parse every chunk in full (the reference behaviour, for tests and benchmarks): no template, no
        shape matched or learnt."""
        self._tpl = self._line = None
        self._tries = 0
        self._shapes = False

    def feed(self, data: str, t: float) -> bool:
        """Take one event's data parsed at time ``t``; return True when the stream is finished."""
        st = self.state
        st.events += 1
        if self._mock:
            core, sent = _split_stamp(data)
        else:
            core, sent = data, None
        tpl = self._tpl
        if tpl is not None and len(core) >= tpl.n and core.startswith(tpl.prefix) and core.endswith(tpl.suffix):
            text = core[tpl.lp : len(core) - tpl.ls]
            if '"' not in text and "\\" not in text and text.isprintable():
                self.template_hits += 1
                if text:
                    # first_content and first_output are set: the template was learnt from an output event
                    if st.texts is not None:
                        st.texts.append(text)
                    self._chunk_times.append(t)
                    if sent is not None:
                        st.mock_sent_ns.append(sent)  # type: ignore[union-attr]
                        st.read_delays_ms.append(t * 1000.0 - sent / 1e6)  # type: ignore[union-attr]
                return False
        if data == "[DONE]":
            st.done_at = t
            return True
        if self._shapes and SHAPES:
            known, start, end, reasoning = match(core)
            if known is not None:
                self.shape_hits += 1
                return self._take(known, t, sent, None)
            if end:
                self.shape_hits += 1
                self._shaped(core, start, end, t, sent, reasoning)
                return False
        obj = load_event(st, data)
        if obj is None:
            return True
        if self._shapes and self._shape_tries > 0:
            self._learn_shape(core, obj)
        return self._take(obj, t, obj.get("mock_sent_ns") if self._mock else None, data)

    def _take(self, obj: dict[str, Any], t: float, sent: Any, data: str | None) -> bool:
        """One event's object (not an error object), its mock stamp ``sent``; ``data`` its text when it was
        parsed (a content chunk may then teach this stream's template)."""
        st = self.state
        choices = obj.get("choices")
        if choices:
            if not isinstance(choices, list):
                st.error = StreamError("unexpected SSE event", "choices is not a list")
                return True
            ch = choices[0]
            delta = ch.get("delta") if isinstance(ch, dict) else None
            if delta:
                if not isinstance(delta, dict):
                    st.error = StreamError("unexpected SSE event", "delta is not an object")
                    return True
                content = delta.get("content")
                reasoning = delta.get("reasoning_content") or delta.get("reasoning")
                reasoning = isinstance(reasoning, str) and reasoning != ""
                tools = delta.get("tool_calls")
                output = bool(content) or (isinstance(tools, list) and bool(tools))
                if output or reasoning:
                    st.token(t, reasoning, output)
                    if st.texts is not None:
                        st.texts += [
                            p
                            for p in (delta.get("reasoning_content") or delta.get("reasoning"), content)
                            if isinstance(p, str)
                        ]
                    if self._mock:
                        st.stamp(sent, t)
                    if data is not None and self._tries and self._tpl is None and output and not reasoning:
                        self._learn(data, obj, ch, delta)
            fr = ch.get("finish_reason") if isinstance(ch, dict) else None
            if fr:
                st.finish_reason = fr
        usage = obj.get("usage")
        if isinstance(usage, dict):
            ct = usage.get("completion_tokens")
            pt = usage.get("prompt_tokens")
            if isinstance(ct, int):
                st.completion_tokens = ct
            if isinstance(pt, int):
                st.prompt_tokens = pt
            rt = reasoning_tokens_of(usage, "completion_tokens_details")
            if rt is not None:
                st.reasoning_tokens = rt
        return False

    def _shaped(self, core: str, start: int, end: int, t: float, sent: int | None, reasoning: bool) -> None:
        """A text chunk of a proved shape (``event_shapes.match``), its text ``core[start:end]``: what ``_take``
        does with it (an output or a reasoning event); a content chunk's text gives this stream's template."""
        text = core[start:end]
        if text:  # an empty text is no token event (and gives no template: its hits take TTFT as set)
            st = self.state
            st.token(t, reasoning, not reasoning, text)
            if self._mock:
                st.stamp(sent, t)
            if self._tpl is None and not reasoning:
                self._use(_Template(core[:start], core[end:]))

    def _learn_shape(self, core: str, obj: dict[str, Any]) -> None:
        """Offer an event parsed in full to ``event_shapes.learn`` (plain text chunks and tokenless events); a
        content chunk whose shape is proved gives this stream's template."""
        if self._mock:
            obj = {k: v for k, v in obj.items() if k != "mock_sent_ns"}
        chunk = text_chunk(obj)
        if chunk is None and not tokenless(obj):
            return
        self._shape_tries -= 1
        at = learn(core, obj, chunk)
        if at is not None and self._tpl is None and chunk is not None and chunk[0] == "content":
            self._use(_Template(core[: at[0]], core[at[1] :]))

    def feed_texts(self, texts: list[str], perf: Callable[[], float]) -> int:
        """``StreamDecoder.feed_texts`` with the template read straight from an event's text: an event that is
        one line ``data: `` + prefix + text + suffix, text plain (``event_shapes.plain``, inlined here), is that
        chunk with content text, as ``feed`` takes it (no mock stamps: those go through ``feed``). Its time is
        ``perf()`` when it is read."""
        fast = self._line
        if fast is None:
            return self._until_template(texts, perf)
        line, suffix = fast
        hits = 0
        for ev in texts:
            # prefix, suffix and a printable text hold no newline: the event is that one data line. The text is what
            # removeprefix and removesuffix leave, each a new string only when it removed (line and suffix are
            # never empty), one argument each (startswith and endswith parse an argument tuple; bench/RESULTS.md)
            rest = ev.removeprefix(line)
            text = rest.removesuffix(suffix)
            if rest is not ev and text is not rest and '"' not in text and "\\" not in text and text.isprintable():
                hits += 1
                if text:
                    if self.state.texts is not None:
                        self.state.texts.append(text)
                    self._chunk_times.append(perf())
                continue
            # any other event, and the rest of this read, as feed takes them (an equal text before it was a hit)
            self.template_hits += hits
            self.state.events += hits
            return StreamDecoder.feed_texts(self, texts[texts.index(ev) :], perf)
        self.template_hits += hits
        self.state.events += hits
        return 0

    def _until_template(self, texts: list[str], perf: Callable[[], float]) -> int:
        """``StreamDecoder.feed_texts`` event by event until this stream's template is known (``_line``), then
        the rest of the read by ``feed_texts``: with the shape of the first content chunk proved in an earlier
        stream, the template comes with it, and the content chunks after it in the same read are read from the
        text. A one-line ``data: `` event is ``("message", data)`` (``sse.text_events``), fed directly."""
        for i, ev in enumerate(texts):
            if ev.startswith("data: ") and "\n" not in ev:
                if self.feed(ev[6:], perf()):
                    return 1
            else:
                done = feed_pairs(self, self.state, text_events([ev]), perf)
                if done:
                    return done
            if self._line is not None:
                return self.feed_texts(texts[i + 1 :], perf) if i + 1 < len(texts) else 0
        return 0

    def feed_text(self, ev: str, perf: Callable[[], float]) -> int:
        """``feed_texts`` of a read that is one event (paced tokens): the same template reading, no list."""
        fast = self._line
        if fast is not None:
            line, suffix = fast
            rest = ev.removeprefix(line)  # as in feed_texts
            text = rest.removesuffix(suffix)
            if rest is not ev and text is not rest and '"' not in text and "\\" not in text and text.isprintable():
                self.template_hits += 1
                self.state.events += 1
                if text:
                    if self.state.texts is not None:
                        self.state.texts.append(text)
                    self._chunk_times.append(perf())
                return 0
        return StreamDecoder.feed_texts(self, [ev], perf)

    def _learn(self, data: str, obj: dict[str, Any], ch: Any, delta: Any) -> None:
        """Try to make a template of a content chunk (see ``_make_template``)."""
        self._tries -= 1
        text = delta.get("content")
        if not isinstance(text, str) or not isinstance(delta, dict) or ch.get("finish_reason"):
            return
        if obj.get("usage") is not None or "error" in obj:
            return
        core = data
        if self._mock:  # the template is of the chunk without its stamp, which feed takes apart first
            core, _sent = _split_stamp(data)
            obj = {k: v for k, v in obj.items() if k != "mock_sent_ns"}
            if "mock_sent_ns" in core:
                return
        tpl = _make_template(core, obj, text)
        if tpl is not None:
            self._use(tpl)

    def _use(self, tpl: _Template) -> None:
        """Read this stream's content chunks with ``tpl`` (``feed_texts`` from the event text too)."""
        self._tpl = tpl
        if tpl.line is not None and not self._mock:
            self._line = (tpl.line, tpl.suffix)


def parse_chat_json(body: bytes) -> JsonAnswer:
    """Parse a non-streamed chat-completions body; raise StreamError with a reason when it is not one."""
    obj = load_body(body)
    choices = obj.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise StreamError("no choices in body")
    msg = choices[0].get("message") or {}
    if not isinstance(msg, dict):
        raise StreamError("unexpected JSON body", "choices[0].message is not an object")
    content = msg.get("content") or msg.get("reasoning_content") or msg.get("reasoning") or ""
    if not content and isinstance(msg.get("tool_calls"), list) and msg["tool_calls"]:
        content = _dumps(msg["tool_calls"])  # a tool call is the answer: its size stands for the text
    usage = obj.get("usage")
    if not isinstance(usage, dict):
        usage = {}
    ct = usage.get("completion_tokens")
    pt = usage.get("prompt_tokens")
    return JsonAnswer(
        content_chars=len(content) if isinstance(content, str) else 0,
        prompt_tokens=pt if isinstance(pt, int) else None,
        completion_tokens=ct if isinstance(ct, int) else None,
        finish_reason=choices[0].get("finish_reason"),
        reasoning_tokens=reasoning_tokens_of(usage, "completion_tokens_details"),
    )
