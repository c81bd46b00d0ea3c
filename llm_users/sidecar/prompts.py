"""The trade-proposal prompts of the sidecar suite: ``conf/prompts.json`` (seed 002's editable ``prompts.json``).

Pure: no Locust. Accepted shapes (the file stays editable by hand, as in the seed)::

    ["Rebalance a tech-heavy portfolio", "Hedge an oil position"]
    [{"prompt": "Rebalance ...", "risk": "low", "max_tokens": 64}, ...]
    {"prompts": [ ...either of the above... ]}

Each entry becomes the JSON body of one ``POST /propose_trade_adjustments/``: a string ``s`` is sent as
``{"prompt": s}``, an object as it is (its ``prompt`` must be a non-empty string, ``max_tokens`` when present a
positive integer; other keys are passed through). A missing or malformed file, an empty list or a bad entry
raises ``PromptFileError`` naming the file and the entry (``conf/prompts.json: [2].prompt: ...``).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llm_metrics.engine.config import parse_json, read_text

__all__ = ["PromptFileError", "TradePrompts", "load_trade_prompts"]

_SHAPE = 'a list of prompts (strings or objects with a "prompt" string), or an object with "prompts"'


class PromptFileError(ValueError):
    """A prompts file or entry that cannot be used; the message names the file and the entry."""


@dataclass
class TradePrompts:
    """The request bodies read from the file, handed out in file order, round and round."""

    source: str
    bodies: list[dict[str, Any]]
    _cycle: Iterator[dict[str, Any]] | None = field(default=None, repr=False)

    def next(self) -> dict[str, Any]:
        """The next body (a fresh copy, so a caller may add keys)."""
        if self._cycle is None:
            self._cycle = itertools.cycle(self.bodies)
        return dict(next(self._cycle))

    def __len__(self) -> int:
        return len(self.bodies)


def _type_name(v: object) -> str:
    if v is None:
        return "null"
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}.get(type(v), type(v).__name__)


def _entry(value: Any, where: str) -> dict[str, Any]:
    if isinstance(value, str):
        if not value.strip():
            raise PromptFileError(f"{where}: expected a non-empty prompt, got an empty string")
        return {"prompt": value}
    if not isinstance(value, dict):
        raise PromptFileError(
            f'{where}: expected a string or an object with a "prompt" string, got {_type_name(value)}'
        )
    if "prompt" not in value:
        raise PromptFileError(f'{where}: expected a "prompt" key (keys found: {", ".join(sorted(value)) or "none"})')
    prompt = value["prompt"]
    if not isinstance(prompt, str):
        raise PromptFileError(f"{where}.prompt: expected a string, got {_type_name(prompt)}")
    if not prompt.strip():
        raise PromptFileError(f"{where}.prompt: expected a non-empty prompt, got an empty string")
    mt = value.get("max_tokens")
    if "max_tokens" in value and (not isinstance(mt, int) or isinstance(mt, bool) or mt < 1):
        raise PromptFileError(f"{where}.max_tokens: expected a positive integer, got {mt!r}")
    return dict(value)


def load_trade_prompts(path: str | Path) -> TradePrompts:
    """Read and check the prompts file; raise ``PromptFileError`` naming the file and the entry."""
    p = Path(path)
    src = str(path)
    if p.is_dir():
        raise PromptFileError(f"{src}: expected a JSON file, found a directory")
    text = read_text(p, PromptFileError, source=src, missing="prompts file")
    data = parse_json(text, src, PromptFileError)
    prefix = ""
    if isinstance(data, dict):
        unknown = sorted(set(data) - {"prompts"})
        if unknown:
            raise PromptFileError(f"{src}: {unknown[0]}: unknown key (expected: prompts)")
        if "prompts" not in data:
            raise PromptFileError(f"{src}: prompts: missing key (expected {_SHAPE})")
        data = data["prompts"]
        prefix = "prompts"
        if not isinstance(data, list):
            raise PromptFileError(f"{src}: prompts: expected a list of prompts, got {_type_name(data)}")
    if not isinstance(data, list):
        raise PromptFileError(f"{src}: expected {_SHAPE}, got {_type_name(data)}")
    if not data:
        raise PromptFileError(
            f"{src}: {prefix + ': ' if prefix else ''}expected at least one prompt, got an empty list"
        )
    bodies = [_entry(item, f"{src}: {prefix}[{i}]") for i, item in enumerate(data)]
    return TradePrompts(src, bodies)
