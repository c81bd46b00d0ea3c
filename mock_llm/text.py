"""Token text: a fixed vocabulary of words, a seeded word sequence, and prompt token counting.

A token is a vocabulary word followed by a space. A generation reads the precomputed sequence from a
random offset, so producing a token costs one index, never a random draw or a JSON escape.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable
from typing import Any

VOCABULARY = [
    "the",
    "of",
    "and",
    "to",
    "in",
    "is",
    "that",
    "for",
    "it",
    "as",
    "with",
    "was",
    "on",
    "be",
    "by",
    "at",
    "this",
    "are",
    "from",
    "or",
    "an",
    "have",
    "not",
    "which",
    "but",
    "they",
    "one",
    "all",
    "we",
    "can",
    "were",
    "there",
    "been",
    "has",
    "more",
    "their",
    "if",
    "will",
    "would",
    "about",
    "so",
    "what",
    "when",
    "up",
    "out",
    "into",
    "than",
    "them",
    "time",
    "only",
    "some",
    "could",
    "other",
    "these",
    "two",
    "may",
    "then",
    "do",
    "first",
    "any",
    "like",
    "now",
    "such",
    "make",
    "over",
    "also",
    "after",
    "new",
    "most",
    "used",
    "where",
    "well",
    "way",
    "because",
    "each",
    "even",
    "many",
    "between",
    "those",
    "through",
    "while",
    "model",
    "token",
    "system",
    "request",
    "answer",
    "latency",
    "stream",
    "server",
    "client",
    "value",
    "result",
    "data",
    "number",
    "first",
    "second",
    "step",
    "reason",
    "check",
    "test",
    "load",
    "queue",
    "rate",
    "limit",
    "budget",
    "gateway",
    "policy",
    "market",
    "price",
    "trade",
    "risk",
    "order",
    "cash",
    "bond",
    "stock",
    "yield",
    "growth",
    "signal",
    "trend",
    "balance",
    "review",
    "plan",
    "report",
]

SEQUENCE_LENGTH = 4096
_TOKEN_RE = re.compile(r"\w+|[^\w\s]")


def word_sequence(seed: int, length: int = SEQUENCE_LENGTH) -> list[bytes]:
    """The token texts (``word + " "``, as bytes safe inside a JSON string) in a seeded order."""
    rng = random.Random(seed)
    tokens = [(w + " ").encode() for w in VOCABULARY]
    return [rng.choice(tokens) for _ in range(length)]


def count_tokens(text: str) -> int:
    """Prompt tokens as the mock counts them: ``\\w+|[^\\w\\s]`` matches."""
    return len(_TOKEN_RE.findall(text))


def _texts(content: Any) -> Iterable[str]:
    if isinstance(content, str):
        yield content
    elif isinstance(content, list):  # OpenAI content parts: [{"type": "text", "text": ...}]
        for part in content:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                yield part["text"]


def count_message_tokens(messages: list[Any]) -> int:
    """Prompt tokens over all message contents."""
    total = 0
    for msg in messages:
        if isinstance(msg, dict):
            for text in _texts(msg.get("content")):
                total += count_tokens(text)
    return total


class Words:
    """The seeded word sequence; ``take(offset, n)`` yields n token texts cyclically from ``offset``."""

    __slots__ = ("seq",)

    def __init__(self, seed: int) -> None:
        self.seq = word_sequence(seed)

    def token(self, offset: int, i: int) -> bytes:
        return self.seq[(offset + i) % SEQUENCE_LENGTH]

    def text(self, offset: int, n: int) -> str:
        seq = self.seq
        return b"".join(seq[(offset + i) % SEQUENCE_LENGTH] for i in range(n)).decode()
