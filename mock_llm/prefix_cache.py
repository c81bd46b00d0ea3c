"""A server's prefix (KV) cache, modelled at message granularity and bounded in memory.

A chat prompt is a list of messages. The key of its first k messages is a chained hash of their roles and
texts, so two prompts share a key exactly when they start with the same k messages: the earlier turns of a
conversation (and a shared system prompt). ``lookup`` finds the longest leading run of messages already
seen, says how many prompt tokens it holds (``cached_tokens``), then remembers every prefix of this prompt.
``remember_answer`` also remembers the prompt followed by the generated answer, as a real server keeps the
KV of the decoded tokens: a client that appends the answer verbatim and asks a next question finds the
whole previous exchange cached.

The prefill of a call then costs ``prefill_ms_per_token * (prompt_tokens - discount * cached_tokens)``.
Entries are kept in least-recently-used order, at most ``max_entries`` (about 100 bytes each); keys live in
this process only (Python's string hash). Token counts use the mock's rule (``text.count_tokens``).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from mock_llm.text import count_tokens

_ROOT = 0x5EED


def _parts(content: Any) -> tuple[str, ...]:
    if isinstance(content, str):
        return (content,)
    if isinstance(content, list):  # OpenAI content parts: [{"type": "text", "text": ...}]
        return tuple(p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ()


@dataclass(slots=True)
class PrefixHit:
    """The outcome of one lookup: the prompt's tokens, how many of them were cached, the prompt's key."""

    prompt_tokens: int
    cached_tokens: int
    key: int


class PrefixCache:
    """Prefixes seen, as key -> tokens in the prefix, least recently used first."""

    __slots__ = ("_entries", "cached_tokens", "hits", "lookups", "max_entries")

    def __init__(self, max_entries: int = 10000) -> None:
        self.max_entries = max(1, max_entries)
        self._entries: OrderedDict[int, int] = OrderedDict()
        self.lookups = 0
        self.hits = 0
        self.cached_tokens = 0

    def __len__(self) -> int:
        return len(self._entries)

    def _put(self, key: int, tokens: int) -> None:
        entries = self._entries
        entries[key] = tokens
        entries.move_to_end(key)
        while len(entries) > self.max_entries:
            entries.popitem(last=False)

    def lookup(self, messages: Iterable[Any]) -> PrefixHit:
        """The cached share of this prompt; every prefix of it is remembered (or refreshed) afterwards."""
        entries = self._entries
        key = _ROOT
        total = 0
        cached = 0
        seen: list[tuple[int, int]] = []
        for msg in messages:
            if not isinstance(msg, dict):
                continue
            parts = _parts(msg.get("content"))
            key = hash((key, str(msg.get("role", "")), parts))
            total += sum(count_tokens(p) for p in parts)
            if key in entries:
                cached = total
            seen.append((key, total))
        for k, tokens in seen:
            self._put(k, tokens)
        self.lookups += 1
        if cached:
            self.hits += 1
            self.cached_tokens += cached
        return PrefixHit(total, cached, key)

    def remember_answer(self, hit: PrefixHit, answer: str) -> None:
        """Remember the prompt followed by the assistant message ``answer`` (the text the client received)."""
        key = hash((hit.key, "assistant", (answer,)))
        self._put(key, hit.prompt_tokens + count_tokens(answer))

    def clear(self) -> None:
        self._entries.clear()
        self.lookups = self.hits = self.cached_tokens = 0

    def snapshot(self) -> dict[str, int]:
        return {
            "lookups": self.lookups,
            "hits": self.hits,
            "cached_tokens": self.cached_tokens,
            "entries": len(self._entries),
        }
